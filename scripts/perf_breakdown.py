"""Reads the runs of scripts/perf-breakdown.sh and prints the cost of one MPyC message.

Usage:  perf_breakdown.py OUT ROUNDS SHORT PARTIES

OUT holds, per binary LABEL, `LABEL/cpu-R/N/` (repeat R of N rounds per pair: perf stat of
the agents' and the Python parties' CPU, the agents' stderr with their carriers' traffic,
MPyC's output), `LABEL/syscalls/N/` (perf stat of their syscalls) and `LABEL/profile/` (perf
record of both). Every count is taken as the difference
between the ROUNDS and the SHORT run of a repeat over the messages between them, and the
median over repeats is printed. The profile's samples are sorted into where the time went.
"""
import bisect
import collections
import os
import re
import statistics
import subprocess
import sys

TRAFFIC = ("datagrams_sent", "stream_frames_sent", "ack_frames_sent", "pings_sent")
CRYPTO = re.compile(r"aes|gcm|ghash|chacha|poly1305|sha\d|x25519|ring_core|aws_lc")
ALLOCATION = re.compile(r"^(__libc_|_int_)?(malloc|free|cfree|realloc|calloc|memalign)|"
                        r"^malloc_|^tcache|^__rust_(alloc|dealloc|realloc)|^__rdl_")
CLOCK = re.compile(r"Instant|clock_gettime|Timespec|Clock::now")
SYSCALL_WRAPPER = re.compile(r"epoll|recv|send|read|write|pthread_(en|dis)able_asynccancel|"
                             r"futex|syscall")
COPY = re.compile(r"^__(memmove|memcpy|memset|memcmp)|^mem(move|cpy|set|cmp)")
CRATES = {
    "crypto": ("ring", "rustls", "aws_lc_rs", "aes", "aes_gcm", "ghash", "chacha20poly1305"),
    "QUIC stack (noq)": ("noq_proto", "noq", "noq_udp"),
    "iroh socket layer": ("iroh", "iroh_relay", "iroh_base", "netwatch", "portmapper"),
    "tokio runtime": ("tokio", "tokio_util", "mio"),
    "our pumps/agent (mpcnet_agent)": ("mpcnet_agent", "mpcnet", "mpcnet_proto"),
    "tracing": ("tracing", "tracing_core", "tracing_subscriber"),
}
UDP_SYSCALLS = tuple(f"__x64_sys_{call}" for call in ("sendmsg", "sendmmsg", "recvmsg", "recvmmsg"))
QUIET = 0.15
STD = {"core", "std", "alloc", "hashbrown"}


def messages(rounds, parties):
    """MPyC messages of a ping_pong run: each pair's rounds, two messages each."""
    return rounds * parties * (parties - 1) // 2 * 2


def perf_stat(path):
    """{event: count} of a `perf stat -x,` file (task-clock in microseconds)."""
    counts = {}
    with open(path) as file:
        for line in file:
            fields = line.strip().split(",")
            if len(fields) < 3 or line.startswith("#"):
                continue
            try:
                value = float(fields[0])
            except ValueError:
                continue  # <not counted>, <not supported>
            event = fields[2].removeprefix("syscalls:sys_enter_")
            counts[event] = counts.get(event, 0.0) + (value * 1000 if fields[1] == "msec" else value)
    return counts


def traffic(run):
    """The agents' carriers' traffic summed over all links, from their stderr."""
    totals = collections.Counter()
    for name in os.listdir(run):
        if name.endswith(".err") and name != "serve.err":
            with open(os.path.join(run, name)) as file:
                for line in file:
                    if "the carrier's traffic" in line:
                        for key in TRAFFIC:
                            found = re.search(rf"\b{key}=(\d+)", line)
                            totals[key] += int(found.group(1)) if found else 0
    totals["ack-only datagrams (est.: datagrams - stream frames)"] = (
        totals["datagrams_sent"] - totals["stream_frames_sent"])
    return totals


def round_trips_ms(run):
    """Every pair's median round trip as MPyC measured it."""
    trips = []
    for name in os.listdir(run):
        if name.endswith(".out") and name != "serve.out":
            with open(os.path.join(run, name)) as file:
                for found in re.finditer(r"rtt_ms=(\S+)", file.read()):
                    trips += [float(pair.split(":")[1]) for pair in found.group(1).split(",")
                              if ":" in pair]
    return trips


def quiet(run):
    """Whether the machine was quiet (under 15 % busy) when the run started."""
    with open(os.path.join(run, "busy-before")) as file:
        return float(file.read()) < QUIET


def per_message(label_dir, rounds, short, parties):
    """{row: [value per repeat]} of one binary, per message: CPU, traffic and round trips from
    the `cpu-R` runs, syscalls from the `syscalls` run."""
    extra = messages(rounds, parties) - messages(short, parties)
    rows = collections.defaultdict(list)
    runs = sorted(d for d in os.listdir(label_dir) if d.startswith("cpu-") or d == "syscalls")
    for run in runs:
        long_run = os.path.join(label_dir, run, str(rounds))
        short_run = os.path.join(label_dir, run, str(short))
        mode = "syscalls" if run == "syscalls" else "cpu"
        if mode == "cpu" and not (quiet(long_run) and quiet(short_run)):
            continue
        rows[("runs", mode)].append(1)
        for who in ("agents", "python"):
            long_counts = perf_stat(os.path.join(long_run, f"{who}.{mode}"))
            short_counts = perf_stat(os.path.join(short_run, f"{who}.{mode}"))
            for event, count in long_counts.items():
                rows[(who, event)].append((count - short_counts.get(event, 0.0)) / extra)
        if mode == "syscalls":
            continue
        long_traffic, short_traffic = traffic(long_run), traffic(short_run)
        for key, count in long_traffic.items():
            rows[("traffic", key)].append((count - short_traffic[key]) / extra)
        rows[("mpyc", "ping_pong round trip, median of pairs, ms")].append(
            statistics.median(round_trips_ms(long_run)))
    return rows


def category(frames, process):
    """Where a sample's time went, from its call chain (leaf first: (symbol, dso))."""
    symbol, dso = frames[0]
    if "kernel" in dso:
        kernel = [sym for sym, where in frames if "kernel" in where]
        if any(sym.startswith(("__schedule", "finish_task_switch")) for sym in kernel):
            return "kernel: scheduler (context switches)"
        for sym in reversed(kernel):  # from the outermost: the protocol that was entered
            if sym.startswith("tcp_"):
                return "kernel: TCP loopback"
            if sym.startswith("unix_"):
                return "kernel: Unix sockets"
            if sym.startswith(("udp", "__udp")):
                return "kernel: UDP/IP"
        if any(sym.startswith(UDP_SYSCALLS) for sym in kernel):
            return "kernel: UDP/IP"  # noq's own I/O: only the UDP socket takes these
        if any("epoll" in sym for sym in kernel):
            return "kernel: epoll"
        if any("futex" in sym for sym in kernel):
            return "kernel: futex"
        return "kernel: other"
    if CLOCK.search(symbol):
        return "clock (Instant::now, clock_gettime)"
    if "libc" in dso and SYSCALL_WRAPPER.search(symbol):
        return "libc syscall wrappers"
    if ALLOCATION.search(symbol):
        return "allocation (malloc/free)"
    if COPY.search(symbol):
        return "memcpy/memset (libc)"
    if process == "python":
        return "python interpreter" if "python" in dso else f"python: {os.path.basename(dso)}"
    for crate in re.findall(r"(?:^|[<&\s(,*])(?:dyn |mut |const )*([A-Za-z_]\w*)::", symbol):
        if crate in STD:
            continue
        for name, crates in CRATES.items():
            if crate in crates:
                return name
        return f"other ({crate})"
    if CRYPTO.search(symbol):
        return "crypto"
    return "other"


class Symbols:
    """Names of addresses in executables perf could not read symbols of (its libelf refuses
    the lld-linked mpcnet binary), from `nm`."""

    def __init__(self):
        self.tables = {}

    def name(self, dso, offset):
        """The function at `offset` in the file `dso` (perf gives file offsets)."""
        if dso not in self.tables:
            self.tables[dso] = (self.segments(dso), self.table(dso))
        segments, (starts, names) = self.tables[dso]
        address = next((offset + delta for start, size, delta in segments
                        if start <= offset < start + size), offset)
        index = bisect.bisect_right(starts, address) - 1
        return names[index] if index >= 0 else "[unknown]"

    @staticmethod
    def segments(dso):
        """(file offset, size, address minus offset) of each loaded segment."""
        listed = subprocess.run(["readelf", "-lW", dso], capture_output=True, text=True).stdout
        segments = []
        for line in listed.splitlines():
            fields = line.split()
            if fields[:1] == ["LOAD"]:
                offset, address, size = (int(field, 16) for field in fields[1:2] + fields[2:3] + fields[4:5])
                segments.append((offset, size, address - offset))
        return segments

    @staticmethod
    def table(dso):
        listed = subprocess.run(["nm", "-C", "-n", "--defined-only", dso],
                                capture_output=True, text=True).stdout
        starts, names = [], []
        for line in listed.splitlines():
            address, kind, name = (line.split(" ", 2) + ["", ""])[:3]
            if kind in "tTwW" and address:
                starts.append(int(address, 16))
                names.append(name)
        return starts, names


def profile(path, process):
    """{category: share of samples} of a perf.data file."""
    script = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym,dso"],
                            capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    symbols = Symbols()
    for sample in script.split("\n\n"):
        frames = []
        for line in sample.splitlines():
            found = re.match(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", line)
            if found:
                address, symbol, dso = found.groups()
                if symbol == "[unknown]" and os.path.isfile(dso):
                    symbol = symbols.name(dso, int(address, 16))
                frames.append((re.sub(r"::h[0-9a-f]{16}$", "", symbol), dso))
        if frames:
            counts[category(frames, process)] += 1
    total = sum(counts.values()) or 1
    return {name: count / total for name, count in counts.items()}, total


def main():
    out, rounds, short, parties = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    labels = sorted(d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d)))
    table = {label: per_message(os.path.join(out, label), rounds, short, parties)
             for label in labels}
    print(f"\nper MPyC message ({parties} parties, ping_pong {rounds} minus {short} rounds per pair;"
          " medians of the repeats; a message crosses the sender's and the receiver's agent)")
    print(f"{'':58}" + "".join(f"{label:>12}" for label in labels))

    def row(title, key, scale=1.0, digits=1):
        values = [table[label].get(key) for label in labels]
        if all(not v or abs(statistics.median(v)) * scale < 0.05 for v in values):
            return
        cells = "".join(f"{statistics.median(v) * scale:12.{digits}f}" if v else f"{'-':>12}"
                        for v in values)
        print(f"{title:58}{cells}")

    print(f"{'repeats counted (machine quiet at their start)':58}"
          + "".join(f"{len(table[label][('runs', 'cpu')]):12}" for label in labels))
    row("agents' CPU, us (both agents)", ("agents", "task-clock"))
    row("  per agent (one side)", ("agents", "task-clock"), 0.5)
    row("  per MPyC round trip (two messages)", ("agents", "task-clock"), 2.0)
    row("Python parties' CPU, us (both)", ("python", "task-clock"))
    for who in ("agents", "python"):
        row(f"{who}: context switches", (who, "context-switches"), digits=2)
        row(f"{who}: cpu migrations", (who, "cpu-migrations"), digits=2)
        events = sorted({event for label in labels for (w, event) in table[label]
                         if w == who and event not in ("task-clock", "context-switches",
                                                       "cpu-migrations")})
        for event in events:
            row(f"{who}: {event}", (who, event), digits=2)
    for key in traffic_keys(table):
        row(f"UDP (agents' carriers): {key}", ("traffic", key), digits=2)
    row("ping_pong round trip, median of pairs, ms",
        ("mpyc", "ping_pong round trip, median of pairs, ms"), digits=3)
    for process in ("agents", "python"):
        print_profile(out, labels, table, process)


def traffic_keys(table):
    keys = []
    for rows in table.values():
        keys += [key for (who, key) in rows if who == "traffic" and key not in keys]
    return keys


def print_profile(out, labels, table, process):
    """The profile of `process` (agents or python) per binary: share and us per message."""
    shares, samples = {}, {}
    for label in labels:
        path = os.path.join(out, label, "profile", f"{process}.record")
        if os.path.exists(path):
            shares[label], samples[label] = profile(path, process)
    if not shares:
        return
    print(f"\n{process}' CPU samples (cpu-clock), share and us per message:")
    print(f"{'':40}" + "".join(f"{label + ' %':>12}{label + ' us':>12}" for label in shares))
    for share in shares.values():  # what is small everywhere goes into "other"
        for name in [n for n in share if n.startswith("other (")]:
            if all(s.get(name, 0) < 0.005 for s in shares.values()):
                share["other"] = share.get("other", 0) + share.pop(name)
    names = sorted({n for s in shares.values() for n in s},
                   key=lambda n: -max(s.get(n, 0) for s in shares.values()))
    for name in names:
        cells = ""
        for label, share in shares.items():
            counted = table[label][(process, "task-clock")]
            cpu = statistics.median(counted) if counted else float("nan")
            cells += f"{share.get(name, 0) * 100:12.1f}{share.get(name, 0) * cpu:12.1f}"
        print(f"{name:40}{cells}")
    print(f"{'(samples)':40}" + "".join(f"{samples[label]:12}{'':12}" for label in shares))


if __name__ == "__main__":
    main()
