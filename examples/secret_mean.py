"""Secret mean: every party brings one private integer; all learn only the sum and the mean.

Usage:  secret_mean.py [VALUE]

VALUE is this party's private input; without it party i uses 10 * (i + 1), so three parties
get sum 60 and mean 20, and m parties get sum 5 * m * (m + 1). Also prints the seconds the
computation took after every party connected.
"""
import sys
import time

from mpyc.runtime import mpc


async def main():
    await mpc.start()
    connected_unix = time.time()  # when every party was connected
    started = time.perf_counter()
    value = int(sys.argv[1]) if len(sys.argv) > 1 else 10 * (mpc.pid + 1)
    secint = mpc.SecInt(32)
    inputs = mpc.input(secint(value))  # one secret-shared input per party
    total = await mpc.output(mpc.sum(inputs))
    seconds = time.perf_counter() - started
    await mpc.shutdown()
    parties = len(mpc.parties)
    print(f"RESULT sum={total} mean={total / parties:g} parties={parties} seconds={seconds:.3f} connected_unix={connected_unix:.3f}")


mpc.run(main())
