#!/usr/bin/env bash
# On a GPU machine: build the custom op with nvcc, run its CUDA-EP correctness tests (on Hopper
# with both kernel families) and the attention benchmark, in one command. Run from the repo root.
#
# onnxruntime-gpu must be importable, or staged as wheel parts in $STAGE (default /tmp/stage):
# part0..partN + name + sha from ../shared/tools/ort-gpu-parts.sh-style splitting; extra wheels
# (pytest and its dependencies, for machines without it) in $STAGE/.whl; the ONNX Runtime headers in
# $STAGE/ort-headers when this machine cannot fetch them. Everything lands in /tmp/site.
#
# Environment: OUT (results folder; default bench/results), PODIUM_OPS_CUDA_ARCHS (default: this
# GPU's compute capability). Prints a summary last; logs and result files go to $OUT.
set -uo pipefail

stage="${STAGE:-/tmp/stage}"
out="${OUT:-bench/results}"
mkdir -p "$out"
site=/tmp/site
export PYTHONUNBUFFERED=1

step() { echo; echo "=== $* ==="; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 --version

if [ -f "$stage/name" ]; then
  step "onnxruntime-gpu from the staged parts"
  wheel="/tmp/$(cat "$stage/name")"
  cat "$stage"/part* >"$wheel" && echo "$(cat "$stage/sha")  $wheel" | sha256sum -c - || exit 1
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheel" || exit 1
fi
if [ -d "$stage/.whl" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$stage"/.whl/*.whl || exit 1
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import onnxruntime as o; o.preload_dlls(); print('onnxruntime', o.__version__, o.get_available_providers())"

step "build"
if [ -d "$stage/ort-headers" ] && [ ! -d build/ort-headers ]; then
  mkdir -p build && cp -r "$stage/ort-headers" build/ort-headers
fi
capability="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d '.')"
PODIUM_OPS_CUDA_ARCHS="${PODIUM_OPS_CUDA_ARCHS:-$capability}" installer/build_ops.sh --force || {
  cat build/ops-cuda/build.log
  exit 1
}
python3 -c "from inference import ops; print(ops.availability()[1])"

step "CUDA correctness (default kernel)"
python3 -m pytest -q -p no:cacheprovider tests/ops 2>&1 | tee "$out/tests-default.log"
status_default=${PIPESTATUS[0]}
status_mma=0
if [ "$capability" = 90 ]; then
  step "CUDA correctness (portable mma.sync kernel, PODIUM_BSA_KERNEL=mma)"
  PODIUM_BSA_KERNEL=mma python3 -m pytest -q -p no:cacheprovider tests/ops/test_op_cuda.py 2>&1 |
    tee "$out/tests-mma.log"
  status_mma=${PIPESTATUS[0]}
fi

step "benchmark"
python3 -m bench.attention --device cuda --out "$out" 2>&1 | tee "$out/bench.log"
if [ "$capability" = 90 ]; then
  PODIUM_BSA_KERNEL=mma python3 -m bench.attention --device cuda --shapes 16384x16384 --runs 10 --out "$out" 2>&1 |
    tee "$out/bench-mma.log"
fi

step "summary"
cat "$out/gpu.txt"
tail -n 1 "$out/tests-default.log"
[ -f "$out/tests-mma.log" ] && tail -n 1 "$out/tests-mma.log"
grep -E '^\|' "$out/bench.log"
[ -f "$out/bench-mma.log" ] && grep -E '^\|' "$out/bench-mma.log" | tail -n 4
exit $((status_default || status_mma))
