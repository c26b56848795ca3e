#!/usr/bin/env bash
# The benchmarks (release build): what one forward adds to plain TCP on loopback, and real
# MPyC over mpcnet against MPyC over plain TCP, and the lobby server under load (creates, joins,
# relayed pairs, an honest client's latency under attacks).
# Each prints its figures next to their targets. MPCNET_BENCH_ROUNDS and MPCNET_BENCH_MEGABYTES
# set the forward's sizes; MPCNET_BENCH_REPEATS and MPCNET_BENCH_STEPS the session's (3 and 8
# parties); MPCNET_BENCH_LOBBIES, MPCNET_BENCH_PAIRS, MPCNET_BENCH_PAIR_BYTES,
# MPCNET_BENCH_SAMPLES the server's. `cargo test` runs the same benchmarks at a tiny size.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
cargo bench --locked -p mpcnet-agent --bench forward
cargo bench --locked -p mpcnet --bench session
cargo bench --locked -p mpcnet --bench server_load
