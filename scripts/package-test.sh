#!/usr/bin/env bash
# The packages, built and used as their users would: the wheel (maturin) installed by pip into
# a fresh venv outside the source tree, running `mpcnet demo` to its known answer and
# `python -m mpcnet --version`; the .deb (cargo-deb) installed by dpkg, its unit checked by
# `systemd-analyze verify`, `mpcnet serve` started from the installed path as the packaged user
# with the packaged options, then purged. Prints sizes and times. A part that cannot run here
# (no root, no dpkg) says `skipped` and why; MPCNET_REQUIRE_PACKAGES=1 (CI) makes that a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

MATURIN_VERSION=1.16.0
CARGO_DEB_VERSION=3.8.0
UV_VERSION=0.9.7
DEMO_ANSWER="RESULT sum=60 mean=20 parties=3"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

skip() {
    echo "package test: skipped: $1"
    if [ "${MPCNET_REQUIRE_PACKAGES:-}" = 1 ]; then
        echo "package test: MPCNET_REQUIRE_PACKAGES=1: a skipped part is a failure" >&2
        exit 1
    fi
}
mib() { awk -v bytes="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MiB", bytes / 1048576 }'; }
now() { date +%s.%N; }
since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f s", end - start }'; }

# Runs `mpcnet demo` with the binary at $1 (and no Python named), and checks that it used the
# Python $2 of the environment it is installed in and computed the answer at every party.
demo_with() {
    env -u MPCNET_PYTHON PATH="/usr/bin:/bin" MPCNET_HOME="$work/home-$3" \
        "$1" demo >"$work/demo-$3.out" 2>"$work/demo-$3.err" ||
        { cat "$work/demo-$3.out" "$work/demo-$3.err"; exit 1; }
    grep -q "demo: Python $2 (the environment mpcnet is installed in)" "$work/demo-$3.err" ||
        { echo "the demo ($3) did not use $2:"; cat "$work/demo-$3.err"; exit 1; }
    [ "$(grep -c "$DEMO_ANSWER" "$work/demo-$3.out")" = 3 ] ||
        { echo "the demo ($3) did not compute '$DEMO_ANSWER' at every party:"; cat "$work/demo-$3.out"; exit 1; }
}

# Installs the .deb, checks what it put where, verifies the unit, runs `serve` as the service
# would (its user, its options file, the installed binary), and purges the package.
deb_test() {
    dpkg -i "$1" >"$work/dpkg.out" || { cat "$work/dpkg.out"; exit 1; }
    trap 'dpkg -P mpcnet >/dev/null 2>&1 || true; cleanup' EXIT
    for path in /usr/bin/mpcnet /usr/lib/systemd/system/mpcnet-serve.service \
        /usr/lib/systemd/system/mpcnet-serve.service.d/packaged.conf /etc/default/mpcnet \
        /usr/lib/sysusers.d/mpcnet.conf; do
        [ -e "$path" ] || { echo "the .deb did not install $path"; exit 1; }
    done
    getent passwd mpcnet >/dev/null || { echo "the .deb made no mpcnet user"; exit 1; }
    [ "$(stat -c '%U %a' /var/lib/mpcnet)" = "mpcnet 700" ] ||
        { echo "/var/lib/mpcnet: $(stat -c '%U %a' /var/lib/mpcnet)"; exit 1; }
    verify_unit
    serve_as_the_service
    dpkg -P mpcnet >/dev/null
    [ ! -e /usr/bin/mpcnet ] && [ ! -e /var/lib/mpcnet ] ||
        { echo "dpkg -P left the binary or /var/lib/mpcnet"; exit 1; }
    echo "package test: the .deb installs, serves as its user and purges cleanly"
}

# `systemd-analyze verify` of the installed unit with its drop-in: failing, or printing any
# line about the unit (an unknown key is only a warning), is a failure. Also prints the unit's exposure score (`systemd-analyze security`).
verify_unit() {
    if ! command -v systemd-analyze >/dev/null; then
        bash scripts/apt-install.sh systemd >/dev/null || true
    fi
    if ! command -v systemd-analyze >/dev/null; then
        skip "no systemd-analyze (Debian's systemd): the unit file is not verified"
        return
    fi
    verified=0
    systemd-analyze verify mpcnet-serve.service >"$work/verify.out" 2>&1 || verified=$?
    if [ "$verified" != 0 ] || grep -i "mpcnet" "$work/verify.out"; then
        cat "$work/verify.out"
        echo "systemd-analyze verify mpcnet-serve.service is not clean (above)"
        exit 1
    fi
    exposure=$(systemd-analyze security --offline=yes mpcnet-serve.service 2>/dev/null |
        grep -o "Overall exposure level.*" || echo "exposure: not shown")
    echo "package test: systemd-analyze verify mpcnet-serve.service: clean; ${exposure}"
}

# `/usr/bin/mpcnet serve` as the user `mpcnet`, with /etc/default/mpcnet's options (moved to
# loopback and a free port), until it prints its address and answers the lobby API.
serve_as_the_service() {
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    (
        set -a
        . /etc/default/mpcnet
        set +a
        export MPCNET_LISTEN="127.0.0.1:$port" MPCNET_PUBLIC_NAME=127.0.0.1 MPCNET_METRICS_LISTEN=off
        exec setpriv --reuid mpcnet --regid mpcnet --init-groups /usr/bin/mpcnet serve
    ) >"$work/serve.out" 2>"$work/serve.err" &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q "^https://127.0.0.1:$port#sha256=" "$work/serve.out" && break
        sleep 0.2
    done
    grep -q "^https://127.0.0.1:$port#sha256=" "$work/serve.out" ||
        { echo "the installed serve printed no address:"; cat "$work/serve.out" "$work/serve.err"; exit 1; }
    curl --silent --show-error --insecure --max-time 10 "https://127.0.0.1:$port/v1/examples" |
        grep -q secret-mean || { echo "the installed serve did not answer /v1/examples"; exit 1; }
    state=$(find /var/lib/mpcnet -mindepth 1 | wc -l)
    strays=$(find /var/lib/mpcnet -mindepth 1 ! -user mpcnet | wc -l)
    [ "$state" -gt 0 ] && [ "$strays" = 0 ] ||
        { echo "the server's state is not the mpcnet user's:"; ls -laR /var/lib/mpcnet; exit 1; }
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    echo "package test: /usr/bin/mpcnet serve ran as mpcnet with /etc/default/mpcnet: $(head -1 "$work/serve.out")"
}

echo "== tools: maturin ${MATURIN_VERSION} (PyPI), cargo-deb ${CARGO_DEB_VERSION} (crates.io)"
tools="$root/target/package-tools"
if ! "$tools/bin/maturin" --version 2>/dev/null | grep -q " ${MATURIN_VERSION}$"; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check "maturin==${MATURIN_VERSION}"
fi
if ! cargo deb --version 2>/dev/null | grep -q "${CARGO_DEB_VERSION}"; then
    cargo install --quiet --locked cargo-deb --version "${CARGO_DEB_VERSION}"
fi

echo "== the wheel: maturin build (profile dist)"
rm -rf target/wheels
started=$(now)
"$tools/bin/maturin" build --quiet --out target/wheels
wheel=$(ls "$root"/target/wheels/mpcnet-"${version}"-*.whl)
echo "package test: built $(basename "$wheel"): $(mib "$wheel") in $(since "$started")"

echo "== the wheel, as a user installs it: a fresh venv, pip install, mpcnet demo"
cd "$work"   # nothing of the source tree on sys.path
python3 -m venv venv
started=$(now)
venv/bin/pip install --quiet --disable-pip-version-check "$wheel"
echo "package test: pip install (with mpyc from PyPI): $(since "$started")"
demo_with "$work/venv/bin/mpcnet" "$work/venv/bin/python" venv
echo "package test: pip install -> the demo's result: $(since "$started")"
shown=$(venv/bin/python -m mpcnet --version)
[ "$shown" = "mpcnet ${version}" ] || { echo "python -m mpcnet --version: '$shown'"; exit 1; }
echo "package test: the wheel works: 3 x '$DEMO_ANSWER', '$shown', binary $(mib venv/bin/mpcnet)"

echo "== the wheel through uv ${UV_VERSION}: uv tool install (a link in a bin directory), uvx"
venv/bin/pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
export UV_TOOL_DIR="$work/uv-tools" UV_TOOL_BIN_DIR="$work/uv-bin" UV_CACHE_DIR="$work/uv-cache"
venv/bin/uv tool install --quiet "$wheel"
demo_with "$work/uv-bin/mpcnet" "$work/uv-tools/mpcnet/bin/python" uv-tool
shown=$(venv/bin/uvx --quiet --from "$wheel" mpcnet --version)
[ "$shown" = "mpcnet ${version}" ] || { echo "uvx mpcnet --version: '$shown'"; exit 1; }
echo "package test: uv tool install and uvx work: the link found its environment's Python"
cd "$root"

echo "== the Debian package: cargo deb (profile dist)"
if ! command -v dpkg-deb >/dev/null; then
    skip "no dpkg-deb on this machine: the .deb is not built"
    exit 0
fi
rm -rf target/debian
started=$(now)
cargo deb --quiet --locked -p mpcnet --profile dist
deb=$(ls "$root"/target/debian/mpcnet_"${version}"*.deb)
echo "package test: built $(basename "$deb"): $(mib "$deb") in $(since "$started")"
if [ "$(id -u)" != 0 ]; then
    skip "not root: the .deb is built but not installed (dpkg -i needs root)"
    exit 0
fi
deb_test "$deb"
