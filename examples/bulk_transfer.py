"""Bulk transfer: every party secret-shares a long vector; all learn the element-wise sum.

Usage:  bulk_transfer.py [LENGTH]    (default 20000)

Party i's vector is (i + 1) * [0, 1, ..., LENGTH - 1], so element k of the sum is
k * m * (m + 1) / 2 for m parties. Sharing and opening the vectors moves megabytes between
every pair of parties. Prints the checksum of the opened sum, whether every element is right, and
the seconds and bytes this party's MPyC sent after every party connected (for throughput).
"""
import sys
import time

from mpyc.runtime import mpc


async def main():
    length = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    await mpc.start()
    connected_unix = time.time()  # when every party was connected
    started = time.perf_counter()
    secint = mpc.SecInt(32)
    mine = [secint((mpc.pid + 1) * k) for k in range(length)]
    vectors = mpc.input(mine)  # one vector per party
    total = vectors[0]
    for vector in vectors[1:]:
        total = mpc.vector_add(total, vector)
    opened = await mpc.output(total)
    seconds = time.perf_counter() - started
    bytes_sent = sum(peer.protocol.nbytes_sent for peer in mpc.parties if peer.pid != mpc.pid)
    await mpc.shutdown()
    parties = len(mpc.parties)
    factor = parties * (parties + 1) // 2
    correct = all(value == k * factor for k, value in enumerate(opened))
    print(f"RESULT length={length} checksum={sum(opened)} correct={correct} "
          f"seconds={seconds:.3f} connected_unix={connected_unix:.3f} bytes_sent={bytes_sent}")


mpc.run(main())
