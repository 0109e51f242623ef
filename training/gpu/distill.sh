#!/usr/bin/env bash
# Issue 7 on a GPU machine, one stage per device call: sparse fine-tune, ODE pairs + regression, DMD (with and
# without the region loss), and the ablation. Run from the repo root:  bash training/gpu/distill.sh STAGE
#
# Stages (each fits one call of at most 9 minutes; run them back to back: $WORK lives on the machine's disk
# only while it stays warm, about 30 s between calls):
#   stage     copy what the call carried ($CARRY) into $WORK/inputs: teacher_ema.*.ckpt, autoencoder_weights.*.ckpt,
#             motion_train.npz, motion_heldout.npz, ablation_eval.npz, ORT wheel parts (part*, name, sha) or the
#             unpacked wheel as an xz tarball in parts (ortx.part*, ortx.sha: tar -cJ onnxruntime*/), ort-headers
#   finetune  the teacher fine-tuned with the local (global + region) mask and, beside it, with the global mask
#             (on different GPUs when there are several, else one after the other); back: the local teacher's
#             weights, both metrics and sample sheets
#   student   ODE pairs from the local teacher, then the pack-sized student's regression on them (all GPUs)
#   dmd       DMD alone (lambda 0) and DMD + region loss ($LAMBDA_REGION), side by side on the GPUs (one after
#             the other on one GPU, DMD_MINUTES split between them; ROWS=dmd or ROWS=region runs one row alone,
#             so each can have a whole call)
#   ablation  needs onnxruntime-gpu (staged parts) and builds the custom op: exports both students as packs and
#             runs bench/ablation.py with the five rows; back: figures, sheet, face crops, side-by-side clips
#   fetch RUN any run's weights and metrics (RUN: sparse-local, sparse-global, regress, dmd, region)
# What a stage returns goes to $OUT through training/gpu/outbox.py (most important first, within the device
# tool's limits: 8 files of at most 16 MiB, two folders deep; weights travel as 15 MiB checkpoint parts).
#
# Prepare on the dev machine: put the inputs in a git-excluded folder named in the call's carry (64 MiB a call:
# the 43 MB teacher and the 8.5 MB autoencoder in one call, the banks and the evaluation set in another), e.g.
#   echo /.distill-carry/ >> .git/info/exclude; mkdir -p .distill-carry
#   cp runs/teacher/teacher_ema.p*.ckpt runs/ae/autoencoder_weights.p*.ckpt .distill-carry/     # call 1: stage
#   python main.py bench ablation prepare --out out/ablation_eval.npz                           # (needs pocketsphinx)
#   then call 2 carries out/ (motion banks, evaluation set) and runs `stage && finetune`.
# Environment: WORK (/tmp/podium-distill), CARRY (.distill-carry), OUT ($OUT of the device call, else $WORK/out),
# FT_MINUTES (5), PAIRS_MINUTES (2), REGRESS_MINUTES (4), DMD_MINUTES (6.5), ROWS ("dmd region"), LAMBDA_REGION (1.0),
# STUDENT_SIZE (pack), TEACHER_STEPS (25), REGION_ARGS (more arguments of the region row's `distill dmd`, e.g.
# "--lambda-mouth 2"), TIMESTEPS (the student's schedule, "0,0.5"; "0" makes a 1-step student), REAL_GUIDANCE (1: DMD's
# real score unguided), TEACHER_GUIDANCE (1: the ablation's teacher rows unguided; 2 as MimicMotion samples). The two
# guidances need a teacher trained with pose dropout (session 7 on).
set -uo pipefail

stage="${1:-}"
work="${WORK:-/tmp/podium-distill}"
carry="${CARRY:-.distill-carry}"
out="${OUT:-$work/out}"
inputs="$work/inputs"
runs="$work/runs"
mkdir -p "$inputs" "$runs" "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
gpus="$(nvidia-smi -L 2>/dev/null | wc -l)"
[ "$gpus" -ge 1 ] || { echo "error: no GPU here (nvidia-smi lists none)"; exit 1; }
cores="$(nproc)"
step() { echo; echo "=== $* ==="; }
need() { for f in "$@"; do ls $f >/dev/null 2>&1 || { echo "error: $f is missing: run the stage that makes it first (see the header)"; exit 1; }; done; }

teacher="$inputs/teacher_ema"
ae="$inputs/autoencoder_weights"
bank="$inputs/motion_train.npz"
heldout="$inputs/motion_heldout.npz"

# train NAME GPU_LIST MODULE ARGS...: one run on the given GPUs (torchrun when several), log in $runs/NAME.log
train() {
  local name="$1" list="$2"; shift 2
  local count; count="$(echo "$list" | tr ',' '\n' | wc -l)"
  local workers=$(( cores / gpus - 1 ))
  local port=$(( 29500 + RANDOM % 1000 ))
  if [ "$count" -gt 1 ]; then
    CUDA_VISIBLE_DEVICES="$list" python3 -m torch.distributed.run --nproc-per-node "$count" --master-port "$port" \
      -m "$@" --workers "$workers" 2>&1 | tee "$runs/$name.log"
  else
    CUDA_VISIBLE_DEVICES="$list" python3 -m "$@" --workers "$workers" 2>&1 | tee "$runs/$name.log"
  fi
  return "${PIPESTATUS[0]}"
}
all_gpus="$(seq -s, 0 $((gpus - 1)))"
first_half="$(seq -s, 0 $(( (gpus + 1) / 2 - 1 )))"
second_half="$( [ "$gpus" -gt 1 ] && seq -s, $(( (gpus + 1) / 2 )) $((gpus - 1)) || echo 0)"
back() { python3 -m training.gpu.outbox "$out" "$@"; }  # FOLDER=PATTERN ..., most important first, within limits

case "$stage" in
stage)
  step "inputs"
  for f in "$carry"/* out/motion_train.npz out/motion_heldout.npz out/ablation_eval.npz; do
    [ -e "$f" ] && cp -r "$f" "$inputs/" && echo "staged $(basename "$f")"
  done
  ls -la "$inputs"
  ;;
finetune)
  need "$teacher.p1of*.ckpt" "$ae.p1of*.ckpt" "$bank" "$heldout"
  minutes="${FT_MINUTES:-5}"
  common=(--teacher "$teacher" --autoencoder "$ae" --bank "$bank" --heldout-bank "$heldout" --eval-clips 16)
  if [ "$gpus" -gt 1 ]; then
    step "sparse fine-tunes on $gpus GPUs: local on ${all_gpus%,*}, global on ${gpus}th"
    train sparse-global "$((gpus - 1))" training.finetune_sparse "${common[@]}" --mask global --minutes "$minutes" \
      --out "$runs/sparse-global" --skip-before &
    glob=$!
    train sparse-local "$(seq -s, 0 $((gpus - 2)))" training.finetune_sparse "${common[@]}" --mask local \
      --minutes "$minutes" --out "$runs/sparse-local"
    status=$?
    wait "$glob" || status=1
  else
    step "sparse fine-tunes on one GPU, one after the other"
    half="$(python3 -c "print(${minutes} / 2)")"
    train sparse-local 0 training.finetune_sparse "${common[@]}" --mask local --minutes "$half" --out "$runs/sparse-local"
    status=$?
    train sparse-global 0 training.finetune_sparse "${common[@]}" --mask global --minutes "$half" \
      --out "$runs/sparse-global" --skip-before || status=1
  fi
  back "local=$runs/sparse-local/teacher_sparse.p*.ckpt" "local=$runs/sparse-local/metrics.json" \
    "global=$runs/sparse-global/metrics.json" "local=$runs/sparse-local/samples.png" \
    "global=$runs/sparse-global/samples.png"
  exit "$status"
  ;;
student)
  need "$runs/sparse-local/teacher_sparse.p1of*.ckpt" "$ae.p1of*.ckpt" "$bank" "$heldout"
  step "ODE pairs (${PAIRS_MINUTES:-2} min)"
  train pairs "$all_gpus" training.distill ode-pairs --teacher "$runs/sparse-local/teacher_sparse" --autoencoder "$ae" \
    --bank "$bank" --out "$runs/pairs" --minutes "${PAIRS_MINUTES:-2}" --steps 32 --timesteps "${TIMESTEPS:-0,0.5}" || exit 1
  step "regression (${REGRESS_MINUTES:-4} min)"
  train regress "$all_gpus" training.distill regress --pairs "$runs/pairs" --teacher "$runs/sparse-local/teacher_sparse" \
    --autoencoder "$ae" --heldout-bank "$heldout" --out "$runs/regress" --student-size "${STUDENT_SIZE:-pack}" \
    --minutes "${REGRESS_MINUTES:-4}"
  status=$?
  back ".=$runs/regress/student.p*.ckpt" ".=$runs/regress/metrics.json" ".=$runs/regress/samples.png"
  exit "$status"
  ;;
dmd)
  need "$runs/regress/student.p1of*.ckpt" "$runs/sparse-local/teacher_sparse.p1of*.ckpt" "$bank" "$heldout"
  minutes="${DMD_MINUTES:-6.5}"
  rows="${ROWS:-dmd region}"
  common=(--student "$runs/regress/student" --teacher "$runs/sparse-local/teacher_sparse" --autoencoder "$ae"
          --bank "$bank" --heldout-bank "$heldout" --real-guidance "${REAL_GUIDANCE:-1}")
  lambda() { [ "$1" = dmd ] && echo 0 || echo "${LAMBDA_REGION:-1.0}"; }
  read -r -a region_args <<< "${REGION_ARGS:-}"
  extra() { [ "$1" = region ] && echo "${region_args[@]}"; }
  if [ "$gpus" -gt 1 ] && [ "$rows" = "dmd region" ]; then
    step "DMD alone on GPUs $first_half, DMD + region loss on GPUs $second_half ($minutes min)"
    train dmd "$first_half" training.distill dmd "${common[@]}" --lambda-region 0 --minutes "$minutes" --out "$runs/dmd" &
    alone=$!
    train region "$second_half" training.distill dmd "${common[@]}" --lambda-region "$(lambda region)" \
      "${region_args[@]}" --minutes "$minutes" --out "$runs/region"
    status=$?
    wait "$alone" || status=1
  else
    count="$(echo $rows | wc -w)"
    each="$(python3 -c "print(${minutes} / ${count})")"
    status=0
    for row in $rows; do
      step "$row (λ_region $(lambda "$row")) on all GPUs, $each min"
      # shellcheck disable=SC2046 # extra's words are separate arguments
      train "$row" "$all_gpus" training.distill dmd "${common[@]}" --lambda-region "$(lambda "$row")" \
        $(extra "$row") --minutes "$each" --out "$runs/$row" || status=1
    done
  fi
  files=()
  for row in $rows; do files+=("$row=$runs/$row/student.p*.ckpt"); done
  for row in $rows; do files+=("$row=$runs/$row/metrics.json" "$row=$runs/$row/samples.png"); done
  back "${files[@]}"
  exit "$status"
  ;;
ablation)
  need "$teacher.p1of*.ckpt" "$runs/sparse-global/teacher_sparse.p1of*.ckpt" "$runs/sparse-local/teacher_sparse.p1of*.ckpt" \
    "$runs/dmd/student.p1of*.ckpt" "$runs/region/student.p1of*.ckpt" "$inputs/ablation_eval.npz"
  step "onnxruntime-gpu"
  if [ -f "$inputs/ortx.sha" ]; then  # the installed package as an xz tarball in parts (a fifth smaller than the wheel)
    cat "$inputs"/ortx.part* >/tmp/ort.tar.xz && echo "$(cat "$inputs/ortx.sha")  /tmp/ort.tar.xz" | sha256sum -c - \
      && mkdir -p /tmp/site && tar -xJf /tmp/ort.tar.xz -C /tmp/site || exit 1
  elif [ -f "$inputs/name" ]; then
    wheel="/tmp/$(cat "$inputs/name")"
    cat "$inputs"/part* >"$wheel" && echo "$(cat "$inputs/sha")  $wheel" | sha256sum -c - || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$wheel" || exit 1
  fi
  python3 -c "import onnxruntime as o; o.preload_dlls(); assert 'CUDAExecutionProvider' in o.get_available_providers()" \
    || { echo "error: no CUDA EP: stage the onnxruntime-gpu wheel parts (../shared/tools/ort-gpu-parts.sh)"; exit 1; }
  step "custom op"
  if ! python3 -c "import sys; from inference import ops; sys.exit(0 if ops.availability()[0] and ops.has_cuda_kernel() else 1)"; then
    [ -d "$inputs/ort-headers" ] && [ ! -d build/ort-headers ] && mkdir -p build && cp -r "$inputs/ort-headers" build/ort-headers
    capability="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d '.')"
    PODIUM_OPS_CUDA_ARCHS="$capability" installer/build_ops.sh --force || { cat build/ops-cuda/build.log; exit 1; }
  fi
  step "packs"
  for run in dmd region; do
    rm -rf "$work/packs/$run"
    python3 -m training.distill export --student "$runs/$run/student" --autoencoder "$ae" --out "$work/packs/$run" \
      --name "podium-$run" --version 0 --license "ablation only" --size-limit-mb 0 || exit 1
  done
  step "ablation"
  python3 -m bench.ablation run --eval "$inputs/ablation_eval.npz" --autoencoder "$ae" --teacher "$teacher" \
    --teacher-global "$runs/sparse-global/teacher_sparse" --teacher-local "$runs/sparse-local/teacher_sparse" \
    --dmd "$work/packs/dmd" --region "$work/packs/region" --teacher-steps "${TEACHER_STEPS:-25}" \
    --teacher-guidance "${TEACHER_GUIDANCE:-1}" --device cuda \
    --out "$work/ablation" 2>&1 | tee "$work/ablation.log"
  status=${PIPESTATUS[0]}
  back ".=$work/ablation/ablation.json" ".=$work/ablation/sheet.png" ".=$work/ablation/face_crops.npz" \
    ".=$work/ablation/side_by_side_*.avi"
  exit "$status"
  ;;
fetch)
  run="${2:-}"
  need "$runs/$run/metrics.json"
  back "$run=$runs/$run/*.p*of*.ckpt" "$run=$runs/$run/metrics.json"
  ;;
*)
  sed -n '2,34p' "$0"
  exit 2
  ;;
esac
