#!/usr/bin/env bash
# Installs Debian's chromium for the web page's browser tests (driven by
# playwright-core; no browser download from elsewhere). Idempotent: does
# nothing when /usr/bin/chromium is already there.
set -euo pipefail
step() { printf '\n==> [chromium %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ -x /usr/bin/chromium ]; then
  echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown')" >&2
  exit 0
fi
sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
start=$(date +%s)
step "apt-get update"
$sudo_cmd apt-get update -qq
step "apt-get install chromium (Debian package, no recommends)"
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium installed in $(( $(date +%s) - start ))s: $(/usr/bin/chromium --version 2>/dev/null)" >&2
