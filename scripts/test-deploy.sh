#!/usr/bin/env bash
# Checks the deployment files with the real tools (installed by
# scripts/install-deploy-tools.sh): promtool on the Prometheus config and
# alert rules (with their unit tests), hadolint on both Dockerfiles, the Compose
# file through compose-go (the loader docker compose uses) and the Compose
# JSON schema, and the Helm chart (lint, template with default and with
# GPU + Redis + autoscaling values, manifests against Kubernetes' JSON schemas,
# values that must be refused). Dashboards are checked by
# __test__/deploy-prometheus.test.ts against a live Prometheus.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> [test-deploy %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bash scripts/install-deploy-tools.sh
tools="$root/.tools"
KUBE_VERSION=1.37.0
chart=deploy/helm/candela
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

step "promtool: config, rules, rule unit tests"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml

step "hadolint: Dockerfile, Dockerfile.gpu"
"$tools/venv/bin/hadolint" Dockerfile Dockerfile.gpu && echo "hadolint: clean" >&2

step "Compose: compose-go loader (as docker compose config) and the Compose JSON schema"
(cd deploy/compose && "$tools/bin/compose-spec" --format json compose.yaml >"$out/compose.json")
# What the model loader leaves to `up`: references between services and volumes, and the GPU profile.
python3 - "$out/compose.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
services, volumes = c["services"], set(c.get("volumes", {}))
for name, s in services.items():
    for dep in s.get("depends_on", {}):
        assert dep in services, f"{name} depends on unknown service {dep}"
    for v in s.get("volumes", []):
        assert v["type"] != "volume" or v["source"] in volumes, f"{name} mounts undeclared volume {v['source']}"
gpu = services["candela-gpu"]
assert gpu.get("profiles") == ["gpu"], "candela-gpu is not in the gpu profile"
assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"], "no GPU reservation"
assert all(services[s]["depends_on"]["redis"]["condition"] == "service_healthy" for s in ("candela", "candela-gpu"))
print(f"compose: {len(services)} services, references and GPU profile consistent", file=sys.stderr)
PY
"$tools/venv/bin/check-jsonschema" --schemafile "$tools/compose-spec.json" deploy/compose/compose.yaml

step "Helm: lint and template (default; GPU + Redis + autoscaling), manifests against Kubernetes $KUBE_VERSION schemas"
helm="$tools/bin/helm"
"$helm" lint --strict "$chart" --kube-version "$KUBE_VERSION"
"$helm" lint --strict "$chart" --kube-version "$KUBE_VERSION" -f "$chart/ci/gpu-redis-autoscaling-values.yaml"
"$helm" template candela "$chart" --kube-version "$KUBE_VERSION" >"$out/default.yaml"
"$helm" template candela "$chart" --kube-version "$KUBE_VERSION" -f "$chart/ci/gpu-redis-autoscaling-values.yaml" >"$out/gpu.yaml"
"$tools/venv/bin/kubernetes-validate" --strict --quiet -k "$KUBE_VERSION" "$out/default.yaml" "$out/gpu.yaml"
for kind in Deployment Service ConfigMap Secret PersistentVolumeClaim; do
  grep -q "^kind: $kind$" "$out/default.yaml" || { echo "default render lacks a $kind" >&2; exit 1; }
done
for kind in HorizontalPodAutoscaler PodDisruptionBudget StatefulSet ServiceMonitor; do
  grep -q "^kind: $kind$" "$out/gpu.yaml" || { echo "GPU + Redis + autoscaling render lacks a $kind" >&2; exit 1; }
done
grep -q 'nvidia.com/gpu: "1"' "$out/gpu.yaml" || { echo "GPU render requests no nvidia.com/gpu" >&2; exit 1; }
# Every setting the chart and the Compose file pass must be one the server reads (src/config.ts).
python3 - "$out/gpu.yaml" "$out/compose.json" src/config.ts <<'PY'
import json, re, sys
known = set(re.findall(r"^\s+(\w+): '\w+',$", open(sys.argv[3]).read(), re.M))
assert "CANDELA_PORT" in known and "REDIS_URL" in known, "could not read ENV_KEYS from src/config.ts"
render = open(sys.argv[1]).read()
names = set()
for doc in render.split("\n---"):
    if re.search(r"^kind: (ConfigMap|Secret)$", doc, re.M):
        body = doc.split("\ndata:\n" if "kind: ConfigMap" in doc else "\nstringData:\n", 1)[1]
        names |= set(re.findall(r"^  (\w+):", body, re.M))
for s in json.load(open(sys.argv[2]))["services"].values():
    names |= {k for k in (s.get("environment") or {}) if k.startswith(("CANDELA_", "REDIS_"))}
unknown = sorted(names - known)
assert not unknown, f"settings the server does not read: {unknown}"
print(f"{len(names)} settings passed by the chart and Compose, all read by src/config.ts", file=sys.stderr)
PY
echo "rendered manifests valid" >&2

step "Helm: values that would break several replicas or the drain are refused"
refuse() {
  local why="$1"; shift
  if "$helm" template candela "$chart" --kube-version "$KUBE_VERSION" "$@" >/dev/null 2>"$out/err"; then
    echo "helm template accepted: $*" >&2; exit 1
  fi
  grep -q "$why" "$out/err" || { echo "refused for another reason than '$why':" >&2; cat "$out/err" >&2; exit 1; }
  echo "refused ($why): $*" >&2
}
refuse "through Redis" --set replicaCount=2
refuse "ReadWriteOnce" --set autoscaling.enabled=true --set redis.enabled=true
refuse "terminationGracePeriodSeconds" --set terminationGracePeriodSeconds=20
refuse "redis:// or rediss://" --set redis.externalUrl=http://redis:6379
