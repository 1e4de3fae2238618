#!/usr/bin/env bash
# Builds the native engine (release: debug candle is unusably slow) and the
# generated binding types. `CANDELA_FEATURES=cuda` builds the CUDA backend.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v cargo >/dev/null || { echo "candela: cargo (Rust) is required to build the engine: https://rustup.rs" >&2; exit 1; }
features=()
[ -n "${CANDELA_FEATURES:-}" ] && features=(--features "$CANDELA_FEATURES")
bash scripts/node.sh node_modules/@napi-rs/cli/dist/cli.js build \
  --release \
  --manifest-path native/node/Cargo.toml \
  --package-json-path package.json \
  --output-dir native/node \
  --dts binding.d.ts \
  "${features[@]}"
