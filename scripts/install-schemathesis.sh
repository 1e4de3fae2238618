#!/usr/bin/env bash
# Installs schemathesis (the property-based OpenAPI fuzzer the API contract
# test drives), pinned, into its own venv at .tools/schemathesis/ (git-ignored),
# so a rerun is instant. Prints what it does and how long it took.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> [schemathesis %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

SCHEMATHESIS_VERSION=4.32.5

venv="$root/.tools/schemathesis"
pins="schemathesis==$SCHEMATHESIS_VERSION"
if [ "$(cat "$venv/.pins" 2>/dev/null)" = "$pins" ] && [ -x "$venv/bin/schemathesis" ]; then
  step "$pins already in .tools/schemathesis"
  exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "install-schemathesis: python3 is required" >&2; exit 1; }
step "$pins from PyPI into .tools/schemathesis (its own venv)"
t=$(date +%s)
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "$pins"
echo "$pins" >"$venv/.pins"
echo "    $("$venv/bin/schemathesis" --version) ready in $(( $(date +%s) - t ))s" >&2
