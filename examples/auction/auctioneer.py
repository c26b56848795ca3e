"""Sealed-bid auction, the auctioneer's program (party 0): learns the winner and its bid only.

Usage:  auctioneer.py

Every other party runs bidder.py with its private bid. With the bidders' default bids and three
parties in all, the auctioneer prints `RESULT winner=2 bid=174`.
"""

from mpyc.runtime import mpc

from sealed_bid import auction


async def main():
    await mpc.start()
    winner, highest = await auction(None)
    await mpc.shutdown()
    print(f"RESULT winner={winner} bid={highest}")


if __name__ == "__main__":
    mpc.run(main())
