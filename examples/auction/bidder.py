"""Sealed-bid auction, a bidder's program (every party but 0): learns only whether it won.

Usage:  bidder.py [BID]

BID is this party's private bid; without it party i bids 100 + (37 i mod 100). The auctioneer
(party 0) runs auctioneer.py.
"""

import sys

from mpyc.runtime import mpc

from sealed_bid import auction, default_bid


async def main():
    bid = int(sys.argv[1]) if len(sys.argv) > 1 else default_bid(mpc.pid)
    await mpc.start()
    won = await auction(bid)
    await mpc.shutdown()
    print(f"RESULT won={won}")


if __name__ == "__main__":
    mpc.run(main())
