#!/usr/bin/env bash
# Regenerates the committed E3 results (results/nat-matrix, results/wan, results/mixed): the
# lab packages, a venv with mpyc, a release build, then each scenario and its report. Needs
# root (network namespaces) and takes about 15 minutes on this project's 2-core machine. A
# scenario's old results are replaced only once its new run has finished.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-lab-packages.sh
source scripts/python-env.sh
cargo build --release --locked -p e3 -p mpcnet
for scenario in nat-matrix wan mixed; do
    fresh="$(mktemp -d)/$scenario"
    target/release/e3 run "scenarios/$scenario.toml" --out "$fresh"
    rm -rf "results/$scenario"
    mv "$fresh" "results/$scenario"
done
