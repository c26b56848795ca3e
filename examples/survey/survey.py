"""Weighted survey, a program bundle: every party answers the same questions in secret; all
learn only the weighted total of every answer. The weights are shared data shipped in the
bundle (data/weights.csv, found next to this file); the answers are each party's own.

Usage:  survey.py [ANSWERS_FILE]

ANSWERS_FILE (a path relative to where the party runs `mpcnet run`) holds one integer per
question; without it party i answers i + 1, i + 2, i + 3. With the weights 1, 2 and 4, three
parties get weighted_total=72.
"""
import os
import sys

from mpyc.runtime import mpc

import scoring  # the bundle's own module, beside this file

BUNDLE = os.path.dirname(os.path.abspath(__file__))


async def main():
    await mpc.start()
    weights = scoring.read_weights(os.path.join(BUNDLE, "data", "weights.csv"))
    if len(sys.argv) > 1:
        answers = scoring.read_answers(sys.argv[1], len(weights))
    else:
        answers = scoring.default_answers(mpc.pid, len(weights))
    secint = mpc.SecInt(32)
    answers_per_party = mpc.input([secint(a) for a in answers])
    total = await mpc.output(scoring.weighted_total(mpc, answers_per_party, weights))
    await mpc.shutdown()
    print(f"RESULT weighted_total={total} questions={len(weights)} parties={len(mpc.parties)}")


mpc.run(main())
