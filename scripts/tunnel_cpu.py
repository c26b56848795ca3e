"""Adds up the CPU time of the processes of E3's labs until stopped (SIGTERM or SIGINT).

Every 50 ms it reads /proc/PID/stat of each process whose network namespace is one of E3's
(/run/netns/e3-*) and whose program is one of the given names, and keeps the largest CPU time
(user + system) each process reached. On stop it prints one line per program: NAME SECONDS.

Usage:  tunnel_cpu.py NAME [NAME ...]
"""
import os
import signal
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def lab_namespaces():
    """The inodes of E3's named network namespaces."""
    inodes = set()
    if os.path.isdir("/run/netns"):
        for name in os.listdir("/run/netns"):
            if name.startswith("e3-"):
                try:
                    inodes.add(os.stat(f"/run/netns/{name}").st_ino)
                except OSError:
                    pass  # torn down meanwhile
    return inodes


def sample(names, labs, cpu):
    """Updates cpu[(pid, start time)] = (program, seconds) for the matching processes."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as file:
                stat = file.read()
            net = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:
            continue  # exited meanwhile
        program = stat[stat.index("(") + 1 : stat.rindex(")")]
        if program not in names or int(net[net.index("[") + 1 : -1]) not in labs:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICKS
        key = (pid, fields[19])
        cpu[key] = (program, max(seconds, cpu.get(key, (program, 0.0))[1]))


def main():
    names = set(sys.argv[1:])
    stopped = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.append(True))
    cpu = {}
    while not stopped:
        sample(names, lab_namespaces(), cpu)
        time.sleep(0.05)
    totals = {}
    for program, seconds in cpu.values():
        totals[program] = totals.get(program, 0.0) + seconds
    for program in sorted(names):
        print(f"{program} {totals.get(program, 0.0):.3f}")


if __name__ == "__main__":
    main()
