"""Two sessions in one run: the parties connect, compute, disconnect, and connect again.

Usage:  two_sessions.py

Session one: the sum of the private inputs (party i brings i + 1). Session two: their maximum.
For three parties: sum 6, max 3. The second session reconnects every pair, which a forwarder
must allow.
"""
from mpyc.runtime import mpc

secint = mpc.SecInt(16)


async def secure_sum():
    await mpc.start()
    total = await mpc.output(mpc.sum(mpc.input(secint(mpc.pid + 1))))
    await mpc.shutdown()
    return total


async def secure_max():
    await mpc.start()
    largest = await mpc.output(mpc.max(mpc.input(secint(mpc.pid + 1))))
    await mpc.shutdown()
    return largest


total = mpc.run(secure_sum())
largest = mpc.run(secure_max())
print(f"RESULT sum={total} max={largest}")
