#!/usr/bin/env bash
# Regenerates the committed E3 results (results/nat-matrix, speed, wan, mixed): the lab and
# VPN packages, a venv with mpyc, a release build, then each scenario and its report. Needs
# root (network namespaces); takes about an hour on this project's 2-core machine (one
# scenario: `bash scripts/e3-results.sh speed`). A scenario's old results are replaced only
# once its new run has finished.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-lab-packages.sh
source scripts/python-env.sh
cargo build --release --locked -p e3 -p mpcnet
scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(nat-matrix speed wan mixed)
for scenario in "${scenarios[@]}"; do
    fresh="$(mktemp -d)/$scenario"
    target/release/e3 run "scenarios/$scenario.toml" --out "$fresh"
    rm -rf "results/$scenario"
    mv "$fresh" "results/$scenario"
done
