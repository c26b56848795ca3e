#!/usr/bin/env bash
# The README's main command, until `mpcnet run` lands: a lobby round trip on this machine.
# A lobby server on loopback, three parties in three homes: one creates a session, two join,
# the creator seals it, and every party shows the same verified manifest and fingerprint.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -q -p mpcnet
mpcnet="$PWD/target/debug/mpcnet"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/mean.py" <<'PY'
"""Placeholder program for the lobby demo: every party gets this file, checked by its SHA-256."""
print("mean of private inputs")
PY

"$mpcnet" serve --listen 127.0.0.1:0 --metrics-listen off --data "$work/server" \
    > "$work/server.out" 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/server.out" ] && break; sleep 0.1; done
server="$(head -n 1 "$work/server.out")"
[ -n "$server" ] || { echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
echo "lobby server: $server"

party() { local home="$1"; shift; MPCNET_HOME="$work/$home" "$mpcnet" "$@"; }

invite="$(party alice create --server "$server" --parties 3 --program "$work/mean.py" \
    --party-name alice --name "salary survey" -- --rounds 3 2>/dev/null)"
echo "invite:       $invite"
echo "bob joins as party $(party bob join "$invite" --name bob 2>/dev/null)"
echo "carol joins as party $(echo "$invite" | party carol join - --name carol 2>/dev/null)"
echo
echo "== alice (the creator) checks the session, which seals it:"
party alice status "$invite"
for name in bob carol; do
    echo
    echo "== $name sees:"
    party "$name" status "$invite"
done
