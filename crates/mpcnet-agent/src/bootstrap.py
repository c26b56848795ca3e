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
# MPyC and the agent meet on Unix sockets in the run's private directory (owner only), never
# on TCP: each -P is SOCKET_PATH:PORT, the port nominal. MPyC connects to a party with
# loop.create_connection(factory, host, port) and listens for lower-numbered parties with
# loop.create_server(factory, port=P) and no host, which would bind every interface. This
# bootstrap installs an event loop policy whose loops take a -P socket path as host to mean that
# Unix socket, and listen on this party's own socket instead of its nominal port; any other
# server a program opens without a host binds 127.0.0.1 only. Then it runs the program
# unchanged.
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

# The -P entries as (socket path, nominal port), this party's own at -I.
_options = _parser.parse_known_args(sys.argv[2:])[0]
_parties = [party.rpartition(":")[::2] for party in _options.parties]
_socket_paths = {path for path, _ in _parties}
_own_socket, _own_port = _parties[_options.index]

_base_policy = type(asyncio.get_event_loop_policy())
_base_loop = type(_base_policy().new_event_loop())


class _AgentSocketLoop(_base_loop):
    async def create_server(self, protocol_factory, host=None, port=None, **kwargs):
        if host is None and str(port) == _own_port:
            return await super().create_unix_server(protocol_factory, _own_socket, **kwargs)
        return await super().create_server(
            protocol_factory, host or "127.0.0.1", port, **kwargs
        )

    async def create_connection(self, protocol_factory, host=None, port=None, **kwargs):
        if host in _socket_paths:
            return await super().create_unix_connection(protocol_factory, host, **kwargs)
        return await super().create_connection(protocol_factory, host, port, **kwargs)


class _AgentSocketPolicy(_base_policy):
    def new_event_loop(self):
        return _AgentSocketLoop()


asyncio.set_event_loop_policy(_AgentSocketPolicy())

_program = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(_program)))
runpy.run_path(_program, run_name="__main__")
