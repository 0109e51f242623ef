#!/usr/bin/env bash
# On a GPU machine: the IASA student end to end through ONNX Runtime's CUDA EP, in one command.
# Run from the repo root. Steps:
#   1. onnxruntime-gpu from staged wheel parts ($STAGE/part*, name, sha: ../shared/tools/ort-gpu-parts.sh);
#   2. the custom op: the carried inference/ops/lib if it has CUDA kernels, else built with nvcc
#      (needs build/ort-headers carried when the machine cannot fetch them);
#   3. the packs: random-weight packs carried weightless ($CARRY/<name>/skeleton, bench/gpu/weightless_pack.py)
#      get their weights here; the tiny pack ($CARRY/tiny/pack + student.pt) is checked against torch on
#      the CUDA EP, graph by graph and as a stream (training/export_student.py --verify-pack);
#   4. bench/student.py on each pack (sparse and dense in the same run, --seconds of stream, CUPTI split).
#
# Prepare on the dev machine (no GPU), once:
#   for p in tiny bundled paper; do python -m training.export_student --preset $p --random-weights \
#       --out /tmp/x/$p --precision float16 --graphs encoder,reference,student,student_dense,decoder; \
#     python -m training.pack /tmp/x/$p --out /tmp/x/$p-pack --name random-$p --version 0 \
#       --license "random weights" --training-data none; done
#   python -m bench.gpu.weightless_pack strip /tmp/x/bundled-pack $CARRY/bundled/skeleton   (same for paper)
#   cp -r /tmp/x/tiny-pack $CARRY/tiny/pack; save the tiny state dict as $CARRY/tiny/student.pt
#     (python -m training.export_student ... --save-weights)
# and name $CARRY (git-excluded), inference/ops/lib and build/ort-headers in the device call's carry.
#
# Environment: STAGE (default /tmp/stage), CARRY (default .bench-carry), OUT (results; default bench/results),
# SECONDS_OF_STREAM (default 60), PACKS (default "bundled paper"; empty: none), VERIFY (1: check the tiny pack).
set -uo pipefail

stage="${STAGE:-/tmp/stage}"
carry="${CARRY:-.bench-carry}"
out="${OUT:-bench/results}"
seconds="${SECONDS_OF_STREAM:-60}"
packs="${PACKS-bundled paper}"
verify="${VERIFY:-1}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
step() { echo; echo "=== $* ==="; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

step "onnxruntime-gpu"
if [ -f "$stage/name" ]; then
  wheel="/tmp/$(cat "$stage/name")"
  cat "$stage"/part* >"$wheel" && echo "$(cat "$stage/sha")  $wheel" | sha256sum -c - || exit 1
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$wheel" || exit 1
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import onnxruntime as o; o.preload_dlls(); print('onnxruntime', o.__version__, o.get_available_providers())"

step "custom op"
if ! python3 -c "import sys; from inference import ops; ok, why = ops.availability(); print(why); sys.exit(0 if ok and ops.has_cuda_kernel() else 1)"; then
  capability="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d '.')"
  PODIUM_OPS_CUDA_ARCHS="$capability" installer/build_ops.sh --force || { cat build/ops-cuda/build.log; exit 1; }
fi

step "weights"
for name in $packs; do
  python3 -m bench.gpu.weightless_pack fill "$carry/$name/skeleton" "/tmp/packs/$name" || exit 1
done

status=0
if [ "$verify" = 1 ] && [ -d "$carry/tiny/pack" ]; then
  step "CUDA EP against torch (tiny pack)"
  python3 -m training.export_student --preset tiny --checkpoint "$carry/tiny/student.pt" \
    --verify-pack "$carry/tiny/pack" --provider cuda 2>&1 | grep -v -E "Warning|warn\(" | tee "$out/verify-cuda.log"
  status=${PIPESTATUS[0]}
fi

for name in $packs; do
  step "benchmark $name"
  python3 -m bench.student --pack "/tmp/packs/$name" --device cuda --seconds "$seconds" --profile \
    --name "student-$name" --out "$out" 2>&1 | tee "$out/bench-$name.log"
done

step "summary"
cat "$out/gpu.txt"
[ -f "$out/verify-cuda.log" ] && grep -E "ok|FAILED|agree" "$out/verify-cuda.log"
for name in $packs; do grep -E "^\||sparse / dense|on / off|^random" "$out/bench-$name.log"; done
exit "$status"
