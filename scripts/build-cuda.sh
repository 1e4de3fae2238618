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

# CUDA 13.4 from PyPI (the CUDA 13 wheels carry nvcc and install as one toolkit
# tree, nvidia/cu13; the cu12 ones have no nvcc). 13.4: the newest that cudarc
# 0.19 knows. cuBLAS, cuRAND and NVRTC are loaded at run time (the CUDA runtime
# image, or nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc): the build needs none.
CUDA_WHEELS=(
  nvidia-cuda-nvcc==13.4.92
  nvidia-cuda-crt==13.4.92
  nvidia-cuda-runtime==13.4.92
  nvidia-nvvm==13.4.92
  nvidia-cuda-cccl==13.3.5.0.6
)

if [ -z "${CUDA_HOME:-}" ] && command -v nvcc >/dev/null 2>&1; then
  CUDA_HOME="$(cd "$(dirname "$(command -v nvcc)")/.." && pwd)"
fi
if [ -z "${CUDA_HOME:-}" ] || [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
  tools="$root/.tools/cuda"
  CUDA_HOME="$tools/site/nvidia/cu13"
  if [ "$(cat "$tools/.pins" 2>/dev/null)" != "${CUDA_WHEELS[*]}" ]; then
    step "CUDA toolkit from PyPI wheels into .tools/cuda: ${CUDA_WHEELS[*]}"
    t=$(date +%s)
    rm -rf "$tools"
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install -q --disable-pip-version-check --target "$tools/site" "${CUDA_WHEELS[@]}"
    # The wheel ships only the versioned soname; the linker looks for libcudart.so.
    ln -sf libcudart.so.13 "$CUDA_HOME/lib/libcudart.so"
    ln -sfn lib "$CUDA_HOME/lib64"
    echo "${CUDA_WHEELS[*]}" >"$tools/.pins"
    echo "    done in $(( $(date +%s) - t ))s" >&2
  fi
fi
export CUDA_HOME CUDA_PATH="$CUDA_HOME" PATH="$CUDA_HOME/bin:$PATH"
export LIBRARY_PATH="$CUDA_HOME/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}" LD_LIBRARY_PATH="$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvcc --version | tail -2 >&2

if [ "${CANDELA_CUDA_CHECK:-0}" = "1" ]; then
  step "cargo check --features cuda (compute capability $CUDA_COMPUTE_CAP)"
  host="$(rustc -vV | sed -n 's/^host: //p')"
  cargo check --release --target "$host" -p candela-engine --features cuda
else
  step "native addon with CUDA for compute capability $CUDA_COMPUTE_CAP (scripts/setup.sh, CANDELA_FEATURES=cuda)"
  CANDELA_SKIP_MODELS="${CANDELA_SKIP_MODELS:-1}" CANDELA_FEATURES=cuda bash scripts/setup.sh
fi
