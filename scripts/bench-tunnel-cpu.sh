#!/usr/bin/env bash
# The CPU each candidate's own processes (mpcnet's agents, the VPNs' daemons) spend per MPyC
# round trip, measured side by side in one run (as root): 3 parties at LAN speed, one behind a
# home NAT and two public, ping_pong.py with 2000 and with 200 rounds per pair; the difference
# over the 5400 extra round trips leaves out start-up and session set-up. On 2 shared cores
# this CPU is what the tunnel adds to each round trip's latency. Prints one line per candidate
# (`failed` where a run did not give the right answer). Usage: bench-tunnel-cpu.sh [CANDIDATE…]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-lab-packages.sh
source scripts/python-env.sh
cargo build --release --locked -p e3 -p mpcnet
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Each candidate's own per-party programs (plain has none: MPyC's own cost is the baseline).
declare -A programs=(
    [plain]=python [mpcnet]=mpcnet [wireguard]=wireguard-go [nebula]=nebula
    [tinc]=tincd [n2n]=edge [openvpn]=openvpn
)
# CPU seconds of `program` during one e3 run of `candidate` with `rounds` rounds per pair;
# fails if the run did not succeed.
cpu_of() {
    local candidate=$1 program=$2 rounds=$3
    local scenario="$work/$candidate-$rounds.toml"
    cat > "$scenario" <<EOF
name = "tunnel-cpu"
candidates = ["$candidate"]
[[workload]]
program = "$PWD/examples/ping_pong.py"
args = ["$rounds"]
timeout_s = 120
[[network]]
name = "home+public"
site = [ { profile = "home" }, { profile = "none" }, { profile = "none" } ]
EOF
    python3 scripts/tunnel_cpu.py "$program" > "$work/cpu" &
    local sampler=$!
    target/release/e3 run "$scenario" --out "$work/out-$candidate-$rounds" >/dev/null 2>&1 || true
    kill -TERM "$sampler"
    wait "$sampler"
    grep -q '"success":true' "$work/out-$candidate-$rounds/records.jsonl" || return 1
    awk '{print $2}' "$work/cpu"
}

echo "candidate   process        CPU per round trip (all 3 parties), us"
candidates=("$@")
[ "${#candidates[@]}" -gt 0 ] || candidates=(plain mpcnet wireguard nebula tinc n2n openvpn)
for candidate in "${candidates[@]}"; do
    program=${programs[$candidate]}
    if ! long=$(cpu_of "$candidate" "$program" 2000) || ! short=$(cpu_of "$candidate" "$program" 200); then
        printf "%-11s %-14s %6s\n" "$candidate" "$program" failed
        continue
    fi
    awk -v c="$candidate" -v p="$program" -v l="$long" -v s="$short" \
        'BEGIN { printf "%-11s %-14s %6.0f\n", c, p, (l - s) / 5400 * 1e6 }'
done
