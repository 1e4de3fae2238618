#!/usr/bin/env bash
# Builds the native addon with the `cuda` feature, without a GPU. nvcc comes
# from CUDA_HOME or PATH when a CUDA toolkit is installed (the Dockerfile.gpu
# devel stage); otherwise NVIDIA's CUDA wheels from PyPI (pinned) are
# installed into .tools/cuda (git-ignored) and arranged as a toolkit tree.
#   CUDA_COMPUTE_CAP  one compute capability: 80 (A100), 86, 89, 90 (H100/H200; default)
#   CANDELA_CUDA_CHECK=1  only `cargo check --features cuda` (fast; no kernels compiled)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> [build-cuda %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
case "$CUDA_COMPUTE_CAP" in
  *,*) echo "build-cuda: CUDA_COMPUTE_CAP takes one capability (got $CUDA_COMPUTE_CAP); build once per capability" >&2; exit 2 ;;
esac

# CUDA 12.9 from PyPI: the compiler, headers and libcudart the build links. cuBLAS,
# cuRAND and NVRTC are loaded at run time (nvidia-cublas-cu12, nvidia-curand-cu12,
# nvidia-cuda-nvrtc-cu12, or the CUDA runtime image): the build does not need them.
CUDA_WHEELS=(
  nvidia-cuda-nvcc-cu12==12.9.86
  nvidia-cuda-runtime-cu12==12.9.79
  nvidia-cuda-cccl-cu12==12.9.27
)

if [ -z "${CUDA_HOME:-}" ] && command -v nvcc >/dev/null 2>&1; then
  CUDA_HOME="$(cd "$(dirname "$(command -v nvcc)")/.." && pwd)"
fi
if [ -z "${CUDA_HOME:-}" ] || [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
  tools="$root/.tools/cuda"
  CUDA_HOME="$tools/home"
  if [ "$(cat "$tools/.pins" 2>/dev/null)" != "${CUDA_WHEELS[*]}" ]; then
    step "CUDA toolkit from PyPI wheels into .tools/cuda: ${CUDA_WHEELS[*]}"
    t=$(date +%s)
    rm -rf "$tools"
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install -q --disable-pip-version-check --target "$tools/site" "${CUDA_WHEELS[@]}"
    # One toolkit tree (bin, include, lib64, nvvm) of symbolic links into the wheels.
    mkdir -p "$CUDA_HOME/lib64"
    for pkg in "$tools"/site/nvidia/*/; do
      cp -rs "$pkg". "$CUDA_HOME"/ 2>/dev/null || true
    done
    if [ -d "$CUDA_HOME/lib" ]; then cp -rs "$CUDA_HOME/lib/." "$CUDA_HOME/lib64/"; fi
    # The wheels ship only versioned sonames: add the unversioned names the linker looks for.
    for so in "$CUDA_HOME"/lib64/lib*.so.*; do
      base="${so%%.so.*}.so"
      [ -e "$base" ] || ln -s "$(basename "$so")" "$base"
    done
    echo "${CUDA_WHEELS[*]}" >"$tools/.pins"
    echo "    done in $(( $(date +%s) - t ))s" >&2
  fi
fi
export CUDA_HOME CUDA_PATH="$CUDA_HOME" PATH="$CUDA_HOME/bin:$PATH"
export LIBRARY_PATH="$CUDA_HOME/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}"
nvcc --version | tail -2 >&2

if [ "${CANDELA_CUDA_CHECK:-0}" = "1" ]; then
  step "cargo check --features cuda (compute capability $CUDA_COMPUTE_CAP)"
  host="$(rustc -vV | sed -n 's/^host: //p')"
  cargo check --release --target "$host" -p candela-engine --features cuda
else
  step "native addon with CUDA for compute capability $CUDA_COMPUTE_CAP (scripts/setup.sh, CANDELA_FEATURES=cuda)"
  CANDELA_SKIP_MODELS="${CANDELA_SKIP_MODELS:-1}" CANDELA_FEATURES=cuda bash scripts/setup.sh
fi
