#!/usr/bin/env bash
# Build the BlockSparseAttention custom-op library into inference/ops/lib/ (docs/ops.md).
#
# Idempotent: when the sources, this script, the build mode and the compilers are unchanged since
# the last successful build, it says so and exits. With nvcc ($CUDA_HOME/bin/nvcc, else nvcc on
# PATH) the library gets the CUDA kernels too; without it, the CPU kernel only. If the CUDA build
# fails, it warns and builds the CPU kernel alone, so that setup still completes.
#
# Environment:
#   PODIUM_OPS_CUDA=0                build the CPU kernel only, even where nvcc is present
#   PODIUM_OPS_CUDA_ARCHS="80;90"    compute capabilities to build machine code for
#                                    (default: 75;80;86;89;90;100;120, plus PTX for the last)
# Usage: installer/build_ops.sh [--force]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/inference/ops"
lib_dir="$src/lib"
lib="$lib_dir/libpodium_ops.so"
stamp="$lib_dir/.build-stamp"
force=0
[ "${1:-}" = "--force" ] && force=1

for tool in cmake c++; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool not found; it builds the custom op. Fix: sudo apt install cmake g++ (or build-essential)." >&2
    exit 1
  fi
done

"$root/installer/fetch_ort_headers.sh" >/dev/null
headers="$root/build/ort-headers/include/onnxruntime"

nvcc=""
if [ "${PODIUM_OPS_CUDA:-1}" != "0" ]; then
  if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
    nvcc="$CUDA_HOME/bin/nvcc"
  elif command -v nvcc >/dev/null 2>&1; then
    nvcc="$(command -v nvcc)"
  fi
fi
archs="${PODIUM_OPS_CUDA_ARCHS:-75;80;86;89;90;100;120}"

fingerprint() {  # everything that decides what the build produces
  local mode="$1"
  {
    (cd "$root" && find inference/ops/CMakeLists.txt inference/ops/src -type f | LC_ALL=C sort | xargs sha256sum)
    sha256sum "$0" | cut -d' ' -f1
    echo "mode=$mode archs=$archs"
    c++ --version | head -n 1
    if [ "$mode" = cuda ]; then "$nvcc" --version | tail -n 1; fi
  } | sha256sum | cut -d' ' -f1
}

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)

build() {  # build <mode>: configure and compile into build/ops-<mode>
  local mode="$1" dir="$root/build/ops-$1"
  local options=(-DORT_INCLUDE_DIR="$headers" -DCMAKE_BUILD_TYPE=Release)
  if [ "$mode" = cuda ]; then
    options+=(-DPODIUM_OPS_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" "-DPODIUM_OPS_CUDA_ARCHS=$archs")
  else
    options+=(-DPODIUM_OPS_WITH_CUDA=OFF)
  fi
  mkdir -p "$dir"
  cmake -S "$src" -B "$dir" "${generator[@]}" "${options[@]}" >"$dir/configure.log" 2>&1 &&
    cmake --build "$dir" --parallel "$(nproc 2>/dev/null || echo 2)" >"$dir/build.log" 2>&1
}

mode=cpu
[ -n "$nvcc" ] && mode=cuda
wanted="$(fingerprint "$mode")"
if [ "$force" = 0 ] && [ -f "$lib" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  echo "Custom op up to date: $lib ($mode)"
  exit 0
fi

start=$SECONDS
rm -f "$stamp" "$lib"  # both build folders link to this one file: always relink
if [ "$mode" = cuda ]; then
  echo "Building the custom op with CUDA kernels ($nvcc, compute capabilities $archs)..."
  if ! build cuda; then
    echo "warning: the CUDA build failed (log: build/ops-cuda/configure.log, build/ops-cuda/build.log);" \
         "building the CPU kernel only. Set PODIUM_OPS_CUDA=0 to skip the attempt." >&2
    mode=cpu
    wanted="$(fingerprint cpu)"
  fi
fi
if [ "$mode" = cpu ]; then
  echo "Building the custom op (CPU kernel only)..."
  if ! build cpu; then
    echo "error: the custom-op build failed; see build/ops-cpu/configure.log and build/ops-cpu/build.log." >&2
    exit 1
  fi
fi
echo "$wanted" >"$stamp"
echo "Custom op built in $((SECONDS - start)) s: $lib ($mode)"
