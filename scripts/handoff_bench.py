"""What an in-process link could save: one hop of MPyC's path, as a thread hand-off or a Unix socket.

The question (issue 15, docs/performance.md): would running the link inside MPyC's process (a
native module whose own thread runs QUIC) make a message cheaper than today's hop, a Unix
stream socket to the agent process? Both are measured here side by side, without QUIC, from an
asyncio loop in Python (as MPyC's is) to a native thread (as the agent's tokio thread is) and
back:

- unix: the loop writes the message to a Unix stream socket; a native thread in another
  process reads it and writes it back; the loop's protocol receives it (today's hop, both ways);
- thread: the loop puts the message in shared memory and wakes a native thread of its own
  process with an eventfd; that thread copies it and wakes the loop through a second eventfd
  the loop watches (the least a native module's hand-off needs: one wake-up each way);
- inline: the loop calls the native copy itself and schedules the next message (a link whose
  QUIC is driven by MPyC's own event loop: no hand-off, no wake-up).

The native side is a few lines of C, built here with cc and loaded with ctypes. Printed per
mode: the round trip (median and p90) and the CPU per round trip of both sides together (for
unix less the CPU its echo process takes to start and end with no message, measured right after
each run). Modes run interleaved, REPEATS times each, once on an idle machine and once with one
busy process per core (as MPyC's parties keep the cores busy), since a wake-up's cost depends on
it.

Usage:  handoff_bench.py [ROUND_TRIPS] [REPEATS]    (defaults 20000 and 3)
"""
import asyncio
import ctypes
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MESSAGE = b"m" * 64
NATIVE_SOURCE = r"""
/* The native side of handoff_bench.py: an echo over a stream socket, and a hand-off thread. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* Reads what arrives on fd and writes it back, until the peer closes. */
int echo_stream(int fd) {
    char buffer[65536];
    for (;;) {
        ssize_t got = read(fd, buffer, sizeof buffer);
        if (got <= 0) return (int)got;
        for (ssize_t sent = 0; sent < got;) {
            ssize_t wrote = write(fd, buffer + sent, got - sent);
            if (wrote < 0) return -1;
            sent += wrote;
        }
    }
}

struct handoff { int wake_thread, wake_loop; char *inbox, *outbox; size_t size; };
static struct handoff shared;

/* Waits for the loop's wake-up, copies the inbox to the outbox, wakes the loop; a zero-length
   message ends it. */
static void *handoff_thread(void *unused) {
    (void)unused;
    for (;;) {
        uint64_t count;
        if (read(shared.wake_thread, &count, sizeof count) != sizeof count) return NULL;
        memcpy(shared.outbox, shared.inbox, shared.size);
        uint64_t one = 1;
        if (write(shared.wake_loop, &one, sizeof one) != sizeof one) return NULL;
        if (shared.size == 0) return NULL;
    }
}

static pthread_t thread;

int start_handoff(int wake_thread, int wake_loop, char *inbox, char *outbox, size_t size) {
    shared = (struct handoff){wake_thread, wake_loop, inbox, outbox, size};
    return pthread_create(&thread, NULL, handoff_thread, NULL);
}

/* Ends the thread started last, which must be waiting for a wake-up, and waits for it. */
int stop_handoff(void) {
    uint64_t one = 1;
    shared.size = 0;
    if (write(shared.wake_thread, &one, sizeof one) != sizeof one) return -1;
    return pthread_join(thread, NULL);
}

/* The same copy, called by the loop's own thread. */
void copy_inline(char *inbox, char *outbox, size_t size) { memcpy(outbox, inbox, size); }
"""


def build_native(directory):
    """Compiles the native side into directory; None (with the reason printed) without cc."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("skipped: no C compiler (cc) to build the native side")
        return None
    source = os.path.join(directory, "handoff.c")
    library = os.path.join(directory, "handoff.so")
    with open(source, "w") as file:
        file.write(NATIVE_SOURCE)
    subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-pthread", source, "-o", library], check=True
    )
    return library


class Pinger(asyncio.Protocol):
    """Sends MESSAGE, waits for the same bytes back, records the round trip, sends the next."""

    def __init__(self, round_trips, done):
        self.left, self.done = round_trips, done
        self.times, self.sent_at = [], 0.0

    def connection_made(self, transport):
        self.transport = transport
        self.send()

    def send(self):
        self.received, self.sent_at = bytearray(), time.perf_counter()
        self.transport.write(MESSAGE)

    def data_received(self, data):
        self.received += data
        if len(self.received) < len(MESSAGE):
            return
        if self.received != MESSAGE:
            self.done.set_exception(RuntimeError("the echo returned other bytes"))
            return
        self.times.append(time.perf_counter() - self.sent_at)
        self.left -= 1
        if self.left > 0:
            self.send()
        elif not self.done.done():
            self.done.set_result(self.times)


async def start_echo(library):
    """A native echo in another process, on a Unix stream socket; returns (our end, process)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    echo = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        f"import ctypes; ctypes.CDLL({library!r}).echo_stream({theirs.fileno()})",
        pass_fds=[theirs.fileno()],
    )
    theirs.close()
    return ours, echo


async def unix_round_trips(library, round_trips):
    """Round trips over a Unix stream socket to a native echo in another process."""
    ours, echo = await start_echo(library)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, _ = await loop.create_unix_connection(lambda: Pinger(round_trips, done), sock=ours)
    times = await done
    transport.close()  # the echo process sees the end of the stream and exits
    if await asyncio.wait_for(echo.wait(), 10) != 0:
        raise RuntimeError(f"the echo process exited with {echo.returncode}")
    return times


async def echo_start_and_end(library):
    """The echo process of unix_round_trips started and ended with no message: its fixed cost."""
    ours, echo = await start_echo(library)
    ours.close()
    await asyncio.wait_for(echo.wait(), 10)


async def thread_round_trips(native, round_trips):
    """Round trips through shared memory to a native thread of this process, eventfd wake-ups."""
    wake_thread, wake_loop = os.eventfd(0), os.eventfd(0)
    inbox = ctypes.create_string_buffer(len(MESSAGE))
    outbox = ctypes.create_string_buffer(len(MESSAGE))
    size = ctypes.c_size_t(len(MESSAGE))
    if native.start_handoff(wake_thread, wake_loop, inbox, outbox, size) != 0:
        raise RuntimeError("the hand-off thread did not start")
    loop = asyncio.get_running_loop()
    done, times, sent_at = loop.create_future(), [], [0.0]

    def send():
        ctypes.memmove(inbox, MESSAGE, len(MESSAGE))
        sent_at[0] = time.perf_counter()
        os.eventfd_write(wake_thread, 1)

    def on_reply():
        os.eventfd_read(wake_loop)
        if outbox.raw != MESSAGE:
            done.set_exception(RuntimeError("the hand-off thread returned other bytes"))
            return
        times.append(time.perf_counter() - sent_at[0])
        if len(times) < round_trips:
            send()
        elif not done.done():
            done.set_result(times)

    loop.add_reader(wake_loop, on_reply)
    send()
    try:
        return await done
    finally:
        loop.remove_reader(wake_loop)
        if native.stop_handoff() != 0:
            raise RuntimeError("the hand-off thread did not stop")
        os.close(wake_thread)
        os.close(wake_loop)


async def inline_round_trips(native, round_trips):
    """Round trips through a native call made by the loop itself, the next one scheduled."""
    inbox = ctypes.create_string_buffer(len(MESSAGE))
    outbox = ctypes.create_string_buffer(len(MESSAGE))
    loop = asyncio.get_running_loop()
    done, times = loop.create_future(), []

    def round_trip():
        sent_at = time.perf_counter()
        ctypes.memmove(inbox, MESSAGE, len(MESSAGE))
        native.copy_inline(inbox, outbox, ctypes.c_size_t(len(MESSAGE)))
        if outbox.raw != MESSAGE:
            done.set_exception(RuntimeError("the inline copy returned other bytes"))
            return
        times.append(time.perf_counter() - sent_at)
        if len(times) < round_trips:
            loop.call_soon(round_trip)
        else:
            done.set_result(times)

    loop.call_soon(round_trip)
    return await done


def cpu_seconds():
    """CPU (user + system) of this process and its waited-for children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cpu_of(coroutine):
    """Runs coroutine in a fresh loop; returns (its result, the CPU seconds it took)."""
    before = cpu_seconds()
    result = asyncio.run(coroutine)
    return result, cpu_seconds() - before


def measure(mode, run, round_trips, fixed_cost=None):
    """One run of one mode: its round trips' median and p90 and CPU per round trip, in us, less
    the CPU of `fixed_cost` (a coroutine function: what the run spends whatever its size)."""
    times, cpu = cpu_of(run(round_trips))
    if fixed_cost is not None:
        cpu -= cpu_of(fixed_cost())[1]
    if len(times) != round_trips:
        raise RuntimeError(f"{mode}: {len(times)} of {round_trips} round trips")
    times.sort()
    return times[len(times) // 2] * 1e6, times[len(times) * 9 // 10] * 1e6, cpu / round_trips * 1e6


def busy_processes(count):
    """count processes that spin until killed: the load MPyC's parties put on the cores."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run_modes(modes, fixed_costs, round_trips, repeats, load):
    """Every mode REPEATS times, interleaved, with `load` busy processes running meanwhile."""
    spinners = busy_processes(load)
    try:
        results = {mode: [] for mode in modes}
        for _ in range(repeats):
            for mode, run in modes.items():
                fixed_cost = fixed_costs.get(mode)
                results[mode].append(measure(mode, run, round_trips, fixed_cost))
        return results
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main():
    round_trips = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as directory:
        library = build_native(directory)
        if library is None:
            return
        native = ctypes.CDLL(library)
        modes = {
            "unix": lambda n: unix_round_trips(library, n),
            "thread": lambda n: thread_round_trips(native, n),
            "inline": lambda n: inline_round_trips(native, n),
        }
        fixed_costs = {"unix": lambda: echo_start_and_end(library)}
        loads = {"idle": 0, "busy": os.cpu_count() or 1}
        results = {
            name: run_modes(modes, fixed_costs, round_trips, repeats, n)
            for name, n in loads.items()
        }
    print(f"{round_trips} round trips of {len(MESSAGE)} B per run, {repeats} runs per mode, "
          f"medians over runs (us); busy: {loads['busy']} spinning processes")
    print(f"{'machine':8} {'mode':8} {'rtt p50':>9} {'rtt p90':>9} {'cpu/rtt':>9}")
    for load, by_mode in results.items():
        for mode, runs in by_mode.items():
            p50, p90, cpu = (statistics.median(column) for column in zip(*runs))
            print(f"{load:8} {mode:8} {p50:9.1f} {p90:9.1f} {cpu:9.1f}")


if __name__ == "__main__":
    main()
