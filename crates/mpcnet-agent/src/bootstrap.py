# mpcnet's MPyC bootstrap, run as `python -c <this> ARGS_FD PROGRAM -I i -P ...`.
#
# mpcnet passes MPyC's -I/-P on the command line. The program's arguments (the session's
# public ones and the party's private ones) come as a JSON list over the pipe ARGS_FD, so no
# other local user sees them in the process list; they are appended to sys.argv here, before
# MPyC is imported, so MPyC and the program see the same argv as if they had been passed on
# the command line. MPyC parses all of argv, so those arguments could also change
# MPyC's own options: who the parties are, the threshold, ports, the security parameter. They
# are checked here with MPyC's own parser and refused if they touch any of those.
#
# MPyC listens for lower-numbered parties with loop.create_server(port=P) and no host, which
# binds every interface: anyone who can reach this machine could connect to it and send pickled
# data. mpcnet delivers peer connections over loopback, so this bootstrap installs an event loop
# policy whose loops default create_server's host to 127.0.0.1, then runs the program unchanged.
import asyncio
import json
import os
import runpy
import signal
import sys

# MPyC must not outlive the agent that forwards its traffic (a killed agent would leave it
# waiting forever): on Linux, ask the kernel to kill this process when its parent dies.
if sys.platform.startswith("linux"):
    import ctypes

    _PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the agent died before the request took effect
        sys.exit(1)


def _read_program_args(fd):
    with os.fdopen(fd, "rb") as pipe:
        args = json.loads(pipe.read())
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise ValueError("not a list of strings")
    return args


try:
    _program_args = _read_program_args(int(sys.argv[1]))
except (ValueError, OSError) as _error:
    print(f"mpcnet: cannot read the program arguments: {_error}", file=sys.stderr)
    sys.exit(2)
sys.argv = [sys.argv[0]] + sys.argv[2:] + _program_args

import mpyc  # noqa: E402,F401  (applies MPyC's own event loop policy first, e.g. uvloop)

_RESERVED = ("config", "parties", "M", "index", "threshold", "base_port", "ssl", "sec_param")
_parser = mpyc._get_arg_parser()
_defaults = vars(_parser.parse_known_args([])[0])
_given = vars(_parser.parse_known_args(_program_args)[0])
_touched = [name for name in _RESERVED if _given.get(name) != _defaults.get(name)]
if _touched:
    print(
        f"mpcnet: refusing to run: the program arguments {' '.join(_program_args)!r} set MPyC's "
        f"own options ({', '.join(_touched)}), which the session controls",
        file=sys.stderr,
    )
    sys.exit(2)

_base_policy = type(asyncio.get_event_loop_policy())
_base_loop = type(_base_policy().new_event_loop())


class _LoopbackListenerLoop(_base_loop):
    async def create_server(self, *args, host=None, **kwargs):
        return await super().create_server(*args, host=host or "127.0.0.1", **kwargs)


class _LoopbackListenerPolicy(_base_policy):
    def new_event_loop(self):
        return _LoopbackListenerLoop()


asyncio.set_event_loop_policy(_LoopbackListenerPolicy())

_program = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(_program)))
runpy.run_path(_program, run_name="__main__")
