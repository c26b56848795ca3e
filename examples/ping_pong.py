"""Ping-pong: tiny messages bounce between every pair of parties, one at a time.

Usage:  ping_pong.py [ROUNDS]    (default 50)

For each pair (i, j) with i < j in turn, party i sends a counter to party j and j sends it back
plus one, ROUNDS times. Each round trip waits for the previous one, so it measures the latency
MPyC sees between the two parties, not bandwidth. Party i prints the median round trip to each
higher party as rtt_ms=i-j:MS,...; every party checks each counter it got back.
"""
import statistics
import sys
import time

from mpyc.runtime import mpc


async def bounce(me, low, high, rounds):
    """Runs the rounds of pair (low, high); returns the round trips low measured, in ms.

    Every party takes part in every transfer (the others send and receive nothing), so all
    parties' message counters stay in step."""
    trips = []
    correct = True
    for counter in range(rounds):
        sent_at = time.perf_counter()
        got = await mpc.transfer(counter, senders=[low], receivers=[high])
        reply = got[0] + 1 if me == high else None
        back = await mpc.transfer(reply, senders=[high], receivers=[low])
        if me == low:
            trips.append((time.perf_counter() - sent_at) * 1000)
            correct = correct and back == [counter + 1]
        if me == high:
            correct = correct and got == [counter]
    return trips, correct


async def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    await mpc.start()
    connected_unix = time.time()  # when every party was connected
    started = time.perf_counter()
    me, parties = mpc.pid, len(mpc.parties)
    medians = []
    correct = True
    for low in range(parties):
        for high in range(low + 1, parties):
            trips, pair_correct = await bounce(me, low, high, rounds)
            correct = correct and pair_correct
            if trips:
                medians.append(f"{low}-{high}:{statistics.median(trips):.3f}")
    seconds = time.perf_counter() - started
    await mpc.shutdown()
    rtts = ",".join(medians) or "none"
    print(f"RESULT rounds={rounds} correct={correct} rtt_ms={rtts} seconds={seconds:.3f} connected_unix={connected_unix:.3f}")


mpc.run(main())
