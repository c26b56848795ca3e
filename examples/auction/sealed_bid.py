"""The steps of a sealed-bid auction, the same for every role and in the same order.

MPyC parties must take the same secure steps: the roles differ only in their inputs (the
auctioneer, party 0, bids nothing) and in which outputs reach them.
"""

from mpyc.runtime import mpc

secint = mpc.SecInt(32)


def default_bid(party):
    """The bid of a bidder that brings none: distinct for every party, so one wins."""
    return 100 + (37 * party) % 100


async def auction(bid):
    """Runs the auction with this party's `bid` (None for the auctioneer).

    Returns (winner, highest bid) at the auctioneer, and at a bidder whether it won.
    """
    bidders = range(1, len(mpc.parties))
    bids = mpc.input(secint(bid), senders=list(bidders))
    position, highest = mpc.argmax(bids)
    winner = await mpc.output(position + 1, receivers=[0])
    highest = await mpc.output(highest, receivers=[0])
    won = None
    for bidder in bidders:
        answer = await mpc.output(position + 1 == bidder, receivers=[bidder])
        if bidder == mpc.pid:
            won = bool(answer)
    return (winner, highest) if mpc.pid == 0 else won
