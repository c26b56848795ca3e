#!/usr/bin/env bash
# The project's test command (the README's second command; CI runs it through .ci/run):
# formatting, lints, a short fuzz run of every fuzz target, then every test of the workspace.
# Needs a Rust toolchain and python3; cargo-fuzz (crates.io) and a venv with mpyc (PyPI) are
# installed on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${MPCNET_FUZZ_SECONDS:-15}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== fuzz smoke: ${FUZZ_SECONDS}s per target"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# cargo-fuzz needs nightly-only sanitizer flags; the stable compiler accepts them with RUSTC_BOOTSTRAP.
for target in invite seat_list lobby_snapshot create_lobby join_lobby seal_lobby announcement run_report stream_header bundle; do
    seeds="fuzz/seeds/${target}"
    corpus="fuzz/corpus/${target}"
    mkdir -p "$corpus"
    [ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
    (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 2>&1 | grep -E "^Done|ERROR|panicked" )
done

# E3's lab tests need root and Debian's network tools: install them when root can (apt), else
# the lab tests say "skipped" with the reason.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v nft >/dev/null; then
    echo "== installing E3's lab packages (root, nft missing)"
    bash scripts/install-lab-packages.sh || echo "could not install E3's lab packages: its tests will say skipped"
fi

source scripts/python-env.sh
echo "== cargo test (MPyC from $MPCNET_PYTHON)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
# --no-fail-fast: one failing test binary must not keep the others from running.
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The per-message breakdown at a tiny size, so the script cannot break unnoticed (root and perf;
# it says skipped otherwise, which fails when MPCNET_REQUIRE_PERF=1, as in CI). Its figures
# need the release build and a quiet machine.
echo "== perf-breakdown.sh, tiny run"
PERF_BINS="debug=${CARGO_TARGET_DIR:-target}/debug/mpcnet" PERF_REPEATS=1 PERF_QUIET_WAIT=0 \
    bash scripts/perf-breakdown.sh 40 >"$log.perf" 2>&1
perf_status=$?
tail -n 3 "$log.perf"
if [ "${MPCNET_REQUIRE_PERF:-}" = 1 ] && grep -q "^skipped" "$log.perf"; then
    perf_status=1
fi
rm -f "$log.perf"
echo "perf-breakdown.sh tiny run: exit ${perf_status}"
# The hand-off benchmark (docs/performance.md, the in-process link) at a tiny size: every echo
# is checked, so one that breaks fails the run.
echo "== handoff_bench.py, tiny run"
python3 scripts/handoff_bench.py 200 1
handoff_status=$?
[ "$perf_status" = 0 ] && perf_status=$handoff_status
set -e
# One total line, so the run does not close on a doc-test binary that has no test.
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{sum += $4} END {print sum + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{sum += $1} END {print sum + 0}')
echo "tests: ${passed} passed, ${failed} failed"
[ "$status" = 0 ] && status=$perf_status
exit "$status"
