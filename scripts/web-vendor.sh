#!/usr/bin/env bash
# The lobby web pages' one third-party script (uqr, QR code encoding) comes from npm, pinned by
# crates/mpcnet-server/web/package-lock.json, and is committed under web/vendor/ so `cargo build`
# needs no npm. This script fetches it again with `npm ci`; with --check it only compares
# (CI runs that, so the committed copy is provably the locked package's own file).
set -euo pipefail
web="$(cd "$(dirname "$0")/../crates/mpcnet-server/web" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$web/package.json" "$web/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fetched="$work/node_modules/uqr"
if [ "${1:-}" = "--check" ]; then
    cmp "$fetched/dist/index.mjs" "$web/vendor/uqr.mjs"
    cmp "$fetched/LICENSE" "$web/vendor/uqr.LICENSE"
    echo "web vendor: uqr matches package-lock.json"
else
    cp "$fetched/dist/index.mjs" "$web/vendor/uqr.mjs"
    cp "$fetched/LICENSE" "$web/vendor/uqr.LICENSE"
    echo "web vendor: uqr copied to $web/vendor"
fi
