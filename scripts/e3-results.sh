#!/usr/bin/env bash
# Regenerates the committed E3 results (results/nat-matrix, results/wan, results/mixed): release build,
# the lab packages, a venv with mpyc, then both scenarios and their reports. Needs root
# (network namespaces) and takes about 12 minutes on this project's 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-lab-packages.sh
source scripts/python-env.sh
cargo build --release --locked -p e3 -p mpcnet
for scenario in nat-matrix wan mixed; do
    rm -rf "results/$scenario"
    target/release/e3 run "scenarios/$scenario.toml" --out "results/$scenario"
done
