"""Secret mean: every party brings one private integer; all learn only the sum and the mean.

Usage:  secret_mean.py [VALUE]

VALUE is this party's private input; without it party i uses 10 * (i + 1), so three parties
get sum 60 and mean 20, and m parties get sum 5 * m * (m + 1).
"""
import sys

from mpyc.runtime import mpc


async def main():
    await mpc.start()
    value = int(sys.argv[1]) if len(sys.argv) > 1 else 10 * (mpc.pid + 1)
    secint = mpc.SecInt(32)
    inputs = mpc.input(secint(value))  # one secret-shared input per party
    total = await mpc.output(mpc.sum(inputs))
    await mpc.shutdown()
    parties = len(mpc.parties)
    print(f"RESULT sum={total} mean={total / parties:g} parties={parties}")


mpc.run(main())
