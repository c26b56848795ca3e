"""Many rounds: a secret counter climbs towards a secret ceiling, one secure comparison per step.

Usage:  many_rounds.py [STEPS]    (default 300)

Each party brings a private amount (party i brings i + 1); the ceiling is their sum. Every step
compares the counter with the ceiling and adds one only while it is below, so each step waits
for the previous one: STEPS sequential rounds of small messages, the shape that latency hurts
most. The answer is min(STEPS, ceiling): for three parties, 6. Also prints the seconds the
steps took (after every party has connected), for benchmarks.
"""
import sys
import time

from mpyc.runtime import mpc


async def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    await mpc.start()
    connected_unix = time.time()  # when every party was connected
    secint = mpc.SecInt(16)
    ceiling = mpc.sum(mpc.input(secint(mpc.pid + 1)))
    counter = secint(0)
    started = time.perf_counter()
    for _ in range(steps):
        counter = counter + (counter < ceiling)
    result = await mpc.output(counter)
    seconds = time.perf_counter() - started
    await mpc.shutdown()
    print(f"RESULT counter={result} steps={steps} seconds={seconds:.3f} connected_unix={connected_unix:.3f}")


mpc.run(main())
