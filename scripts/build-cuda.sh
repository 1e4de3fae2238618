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
# 0.19 knows.
CUDA_WHEELS=(
  nvidia-cuda-nvcc==13.4.92
  nvidia-cuda-crt==13.4.92
  nvidia-cuda-runtime==13.4.92
  nvidia-nvvm==13.4.92
  nvidia-cuda-cccl==13.3.5.0.6
  # cudarc links these at build time (dynamic linking); the runtime image provides them at run time.
  nvidia-cuda-nvrtc==13.4.92
  nvidia-curand==10.4.4.72
  nvidia-cublas==13.5.1.27
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
    # The wheels ship only versioned sonames; the linker looks for the plain names.
    for so in "$CUDA_HOME"/lib/lib*.so.*; do
      plain="${so%%.so.*}.so"
      [ -e "$plain" ] || ln -s "$(basename "$so")" "$plain"
    done
    ln -sfn lib "$CUDA_HOME/lib64"
    # The driver (libcuda.so.1) comes with the NVIDIA driver, not a wheel: link against a
    # stub that defines every driver entry point cuda.h declares, as the toolkit's stubs do.
    mkdir -p "$CUDA_HOME/lib/stubs"
    python3 - "$CUDA_HOME/include/cuda.h" >"$tools/cuda-stub.c" <<'PY'
import re, sys
h = open(sys.argv[1]).read()
names = set(re.findall(r"CUDAAPI\s+(cu[A-Z]\w*)\s*\(", h)) | set(re.findall(r"#define\s+cu[A-Z]\w*\s+(cu[A-Z]\w*)", h))
print("\n".join(f"void {n}(void) {{}}" for n in sorted(names)))
PY
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA_HOME/lib/stubs/libcuda.so" "$tools/cuda-stub.c"
    echo "${CUDA_WHEELS[*]}" >"$tools/.pins"
    echo "    done in $(( $(date +%s) - t ))s" >&2
  fi
fi
export CUDA_HOME CUDA_PATH="$CUDA_HOME" PATH="$CUDA_HOME/bin:$PATH"
export LIBRARY_PATH="$CUDA_HOME/lib64:$CUDA_HOME/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}" LD_LIBRARY_PATH="$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvcc --version | tail -2 >&2

if [ "${CANDELA_CUDA_CHECK:-0}" = "1" ]; then
  step "cargo check --features cuda (compute capability $CUDA_COMPUTE_CAP)"
  host="$(rustc -vV | sed -n 's/^host: //p')"
  cargo check --release --target "$host" -p candela-engine --features cuda
else
  step "native addon with CUDA for compute capability $CUDA_COMPUTE_CAP (scripts/setup.sh, CANDELA_FEATURES=cuda)"
  CANDELA_SKIP_MODELS="${CANDELA_SKIP_MODELS:-1}" CANDELA_FEATURES=cuda bash scripts/setup.sh
fi
