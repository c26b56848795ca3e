#!/usr/bin/env bash
# Where the CPU of one MPyC message goes through mpcnet (as root, on loopback): real MPyC
# sessions (3 parties, ping_pong.py) through `mpcnet serve` and three `mpcnet run`, with
# `perf stat` attached to the agents and, for reference, to the Python parties (CPU and context
# switches; in separate runs, every syscall), for ROUNDS and for ROUNDS/10 rounds per pair: the
# difference, over the extra messages, leaves out start-up and session set-up. A run under
# `perf record -g` (cpu-clock) sorts the agents' and Python's samples into kernel TCP loopback,
# kernel UDP/IP, crypto, QUIC, iroh, tokio, the agent, allocation... The agents log their
# carriers' UDP datagrams and frames at the end (`mpcnet_agent::link=info`).
#
# Usage: perf-breakdown.sh [ROUNDS]     (default 2000)
#   PERF_REPEATS=N        CPU runs per size and binary (default 3; medians are printed)
#   PERF_BINS="a=PATH b=PATH"  compare mpcnet binaries side by side, interleaved run by run
#                         (default: this tree's release build, as "this")
#   PERF_OUT=DIR          keep the runs' files there (default: a temporary directory)
#   PERF_QUIET_WAIT=S     wait at most S seconds for a quiet machine before each session
#                         (default 60; 0 for the test's tiny run, which checks the script only)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "skipped: perf-breakdown.sh needs root (perf attaches to the agents' processes)"
    exit 0
fi
if ! command -v perf >/dev/null || ! perf stat -e task-clock -- true >/dev/null 2>&1; then
    echo "skipped: perf is missing or cannot count here"
    exit 0
fi
rounds=${1:-2000}
short=$((rounds / 10))
repeats=${PERF_REPEATS:-3}
source scripts/python-env.sh
if [ -z "${PERF_BINS:-}" ]; then
    cargo build --release --locked -p mpcnet
    PERF_BINS="this=${CARGO_TARGET_DIR:-target}/release/mpcnet"
fi
out=${PERF_OUT:-$(mktemp -d)}
mkdir -p "$out"
[ -n "${PERF_OUT:-}" ] || trap 'rm -rf "$out"' EXIT
names=(alice bob carol)
# Counting every syscall's tracepoint slows each syscall and context switch down (the agents'
# CPU per message came out 3.7 times as high), so the CPU is counted in runs of its own.
cpu_events="task-clock,context-switches,cpu-migrations"
syscall_events="syscalls:sys_enter_*"

# Waits until file $1 has a line matching $2 (at most $3 seconds).
wait_for() {
    local deadline=$((SECONDS + $3))
    until grep -q "$2" "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "no '$2' in $1 after $3 s" >&2; return 1; }
        sleep 0.05
    done
}

# The share of both cores busy over the next second (other work on the machine skews the
# CPU per message: shared caches, more context switches).
busy_share() {
    local before after
    before=$(head -n1 /proc/stat)
    sleep 1
    after=$(head -n1 /proc/stat)
    echo "$before" "$after" | awk '{
        for (i = 2; i <= 11; i++) { a += $i; if (i == 5 || i == 6) ai += $i }
        for (i = 13; i <= 22; i++) { b += $i; if (i == 16 || i == 17) bi += $i }
        printf "%.2f\n", 1 - (bi - ai) / (b - a) }'
}

# Waits, for at most PERF_QUIET_WAIT seconds, until the machine is quiet (under 15 % busy);
# writes the last share seen to $1.
wait_quiet() {
    local share deadline=$((SECONDS + ${PERF_QUIET_WAIT:-60}))
    while share=$(busy_share) && awk -v s="$share" 'BEGIN { exit !(s >= 0.15) }'; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "   (the machine stays $share busy)" >&2; break; }
    done
    echo "$share" >"$1"
}

# Starts perf in mode $1 (cpu, syscalls: perf stat; record: perf record) on the comma-separated
# pids $2, writing $3; adds its pid to the caller's `perfs`.
attach() {
    case $1 in
        cpu) perf stat -x, -e "$cpu_events" -p "$2" -o "$3" >/dev/null 2>&1 & ;;
        syscalls) perf stat -x, -e "$syscall_events" -p "$2" -o "$3" >/dev/null 2>&1 & ;;
        record) perf record -e cpu-clock -g -p "$2" -o "$3" >/dev/null 2>&1 & ;;
    esac
    perfs+=($!)
}

# One session of ping_pong.py with $3 rounds per pair run by binary $1, perf in mode $2 (see
# `attach`) on the agents and on the Python parties, files in $4. Fails (having stopped what
# it started) if a step or the computation failed.
session() {
    local bin=$1 mode=$2 n=$3 dir=$4
    mkdir -p "$dir"
    wait_quiet "$dir/busy-before"
    started=()
    "$bin" serve --listen 127.0.0.1:0 --metrics-listen off --data "$dir/server" \
        >"$dir/serve.out" 2>"$dir/serve.err" &
    started+=($!)
    local server=$! waited=0
    run_parties "$bin" "$mode" "$n" "$dir"
    local ok=$?
    # What was waited for already is not ours any more (its pid may be anyone's by now).
    [ "$waited" = 1 ] && started=("$server")
    kill "${started[@]}" 2>/dev/null
    wait "${started[@]}" 2>/dev/null
    [ "$ok" = 0 ] && grep -q "correct=True" "$dir/alice.out" && return 0
    echo "the session in $dir failed" >&2
    return 1
}

# The parties of a session (see `session`): creates it on the lobby whose address the server
# printed, runs every party, attaches perf once MPyC starts, waits until all are done. Adds
# every process it starts to the caller's `started`, and sets its `waited` once it waited for
# all of them.
run_parties() {
    local bin=$1 mode=$2 n=$3 dir=$4 invite name agent
    wait_for "$dir/serve.out" . 10 || return 1
    invite=$(MPCNET_HOME="$dir/alice" "$bin" create --server "$(head -n1 "$dir/serve.out")" \
        --parties 3 --party-name alice --program examples/ping_pong.py -- "$n" \
        2>"$dir/create.err") || return 1
    local agents=() pythons=() perfs=()
    for name in "${names[@]}"; do
        MPCNET_HOME="$dir/$name" "$bin" run "$invite" --yes --name "$name" \
            --bind 127.0.0.1:0 --python "$MPCNET_PYTHON" \
            --log warn,mpcnet_agent::link=info \
            >"$dir/$name.out" 2>"$dir/$name.err" </dev/null &
        agents+=($!)
        started+=($!)
    done
    for name in "${names[@]}"; do
        wait_for "$dir/$name.err" "starting ping_pong.py" 60 || return 1
    done
    for agent in "${agents[@]}"; do pythons+=("$(pgrep -P "$agent" | head -n1)"); done
    attach "$mode" "$(IFS=,; echo "${agents[*]}")" "$dir/agents.$mode"
    attach "$mode" "$(IFS=,; echo "${pythons[*]}")" "$dir/python.$mode"
    started+=("${perfs[@]}")
    local failed=0
    for agent in "${agents[@]}"; do wait "$agent" || failed=1; done
    kill -INT "${perfs[@]}" 2>/dev/null
    wait "${perfs[@]}" 2>/dev/null
    waited=1
    return "$failed"
}

# A session, once more if it failed (kept as DIR.failed-N): MPyC has been seen to fail at its
# start once in about 60 sessions here ("'NoneType' object has no attribute 'send'").
attempt() {
    local try
    for try in 1 2; do
        session "$@" && return 0
        mv "$4" "$4.failed-$try"
    done
    return 1
}

read -ra bins <<<"$PERF_BINS"
# Runs every binary in mode $1 for both sizes, into directory $2 of each binary's.
both_sizes() {
    local entry label n
    for entry in "${bins[@]}"; do
        label=${entry%%=*}
        for n in "$rounds" "$short"; do
            echo "== $label, $2, $n rounds per pair" >&2
            attempt "${entry#*=}" "$1" "$n" "$out/$label/$2/$n"
        done
    done
}
for repeat in $(seq "$repeats"); do both_sizes cpu "cpu-$repeat"; done
both_sizes syscalls syscalls
for entry in "${bins[@]}"; do
    label=${entry%%=*}
    echo "== $label, profile, $rounds rounds per pair" >&2
    attempt "${entry#*=}" record "$rounds" "$out/$label/profile"
done
python3 scripts/perf_breakdown.py "$out" "$rounds" "$short" "${#names[@]}"
