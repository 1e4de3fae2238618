#!/usr/bin/env bash
# The fast test target (`npm run test:fast`): the node tests that run on
# tiny generated models only, with no model download, no Redis, no browser
# and no deployment tools. `npm test` (scripts/test.sh) stays the full suite
# and the CI target.
#
# The rule: every __test__/*.test.ts runs except the files listed below,
# each with the reason it is left out; and the models directory is an empty
# one, so the real-model cases inside the remaining files report as skipped
# (node's summary counts them) instead of running. A new test that needs a
# real model without skipping fails here loudly: list it below.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> [test:fast %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$(date +%s)

declare -A excluded=(
  [answer-eval.test.ts]="answers with the default LLM and BGE retrieval (downloaded models)"
  [cache.test.ts]="the semantic cache on the real MiniLM embedder (downloaded model)"
  [shared-redis.test.ts]="two replicas on a real Redis with MiniLM (redis-server, downloaded model)"
  [web.test.ts]="the page in chromium on SmolLM2 and MiniLM (browser, downloaded models)"
  [deploy-prometheus.test.ts]="a real Prometheus scraping Candela (tools installed by scripts/test-deploy.sh)"
  [soak.test.ts]="200 clients for 60 s (slow by design)"
  [leak.test.ts]="3000 engine cycles (slow by design)"
)

step "setup without models (npm packages, native engine, web page)"
CANDELA_SKIP_MODELS=1 bash scripts/setup.sh

files=()
for f in __test__/*.test.ts; do
  name="$(basename "$f")"
  if [ -n "${excluded[$name]:-}" ]; then
    printf '  left out: %-28s %s\n' "$name" "${excluded[$name]}" >&2
  else
    files+=("$f")
  fi
done

# No models: an empty directory, and no CANDELA_REQUIRE_MODELS/REDIS, so
# real-model and Redis cases skip (and are counted as skipped).
models_dir="$(mktemp -d -t candela-no-models-XXXXXX)"
trap 'rm -rf "$models_dir"' EXIT
unset CANDELA_REQUIRE_MODELS CANDELA_REQUIRE_REDIS
step "node tests on tiny models (${#files[@]} files; models dir: empty)"
tests_start=$(date +%s)
CANDELA_MODELS_DIR="$models_dir" bash scripts/node.sh --test --test-concurrency=1 "${files[@]}"
now=$(date +%s)
echo "test:fast passed in $(( now - start ))s (node tests $(( now - tests_start ))s)" >&2
