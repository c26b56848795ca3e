"""``python -m mpcnet ARGS``: runs the ``mpcnet`` binary the wheel installed beside this Python."""

import os
import shutil
import subprocess
import sys
import sysconfig


def binary() -> str:
    """The installed binary: the scripts directory of this environment, then the user's, then PATH."""
    name = "mpcnet.exe" if os.name == "nt" else "mpcnet"
    schemes = [sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")]
    for scheme in schemes:
        candidate = os.path.join(sysconfig.get_path("scripts", scheme), name)
        if os.path.isfile(candidate):
            return candidate
    found = shutil.which(name)
    if found is None:
        sys.exit("mpcnet: the mpcnet binary is not installed beside this Python nor on PATH")
    return found


def main() -> None:
    command = [binary(), *sys.argv[1:]]
    if os.name == "nt":
        sys.exit(subprocess.call(command))
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
