#!/usr/bin/env bash
# The benchmarks (release build): what one forward adds to plain TCP on loopback, and real
# MPyC over mpcnet against MPyC over plain TCP. Each prints its figures and targets.
# MPCNET_BENCH_REPEATS, MPCNET_BENCH_ROUNDS and MPCNET_BENCH_MEGABYTES set the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
cargo bench --locked -p mpcnet-agent --bench forward
cargo bench --locked -p mpcnet --bench session
