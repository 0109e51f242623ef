#!/usr/bin/env bash
# One device call of the teacher toolchain: [train the autoencoder further] → train the teacher → evaluate,
# then copy what must come back into $OUT within the device tool's limits (training/gpu/outbox.py).
# How to call it, what to carry and what comes back: training/README.md, "On the GPU machine".
#
#   bash training/gpu/teacher.sh                 # from the repository root, on the GPU machine
#
# Settings (environment variables; defaults in brackets):
#   TEACHER_MINUTES   teacher training time in this call [6; 0: train only the autoencoder]
#   AE_MINUTES        autoencoder training time before it [0: use AE_WEIGHTS as they are]
#   AE_WEIGHTS        autoencoder weights, FOLDER/NAME [RUN/ae/autoencoder_weights on a warm machine that has them,
#                     else the carried out/ckpt/autoencoder_weights]; with AE_MINUTES > 0 the autoencoder continues
#                     from them when present (else it starts from scratch)
#   TEACHER_INIT      carried teacher EMA weights to continue from, when present [out/ckpt/teacher_ema]
#   SCHEDULE_MINUTES  teacher minutes the learning-rate cosine spans over all calls [this call's end]
#   BATCH [16] clips per GPU, REUSE [2], COMPILE [1], EVAL_CLIPS [32], EVAL_STEPS [25,1], VIDEO_SEGMENTS [2],
#   SEED [0], PRESET [teacher], AE_PRESET [bundled], FRAMES [16]
#   AE_CHANNELS       latent channels of an autoencoder started from scratch [16: 38.1 dB against 32.2 with the
#                     bundled pack's 4, training/runs.md session 7]; one that continues keeps its own
#   RUN               work folder on the machine [/tmp/podium-train]: it survives while the machine stays warm,
#                     and a call that finds a resume state there continues exactly (optimiser included)
#   ALLOW_CPU=1       run without a GPU (a smoke test of this script with PRESET=tiny on a laptop)
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${OUT:?OUT is not set: the device tool sets it; elsewhere give a folder for the results}"
TEACHER_MINUTES=${TEACHER_MINUTES:-6}
AE_MINUTES=${AE_MINUTES:-0}
TEACHER_INIT=${TEACHER_INIT:-out/ckpt/teacher_ema}
BATCH=${BATCH:-16}
REUSE=${REUSE:-2}
COMPILE=${COMPILE:-1}
EVAL_CLIPS=${EVAL_CLIPS:-32}
EVAL_STEPS=${EVAL_STEPS:-25,1}
VIDEO_SEGMENTS=${VIDEO_SEGMENTS:-2}
SEED=${SEED:-0}
PRESET=${PRESET:-teacher}
AE_PRESET=${AE_PRESET:-bundled}
AE_CHANNELS=${AE_CHANNELS:-16}
FRAMES=${FRAMES:-16}
RUN=${RUN:-/tmp/podium-train}
if [ -z "${AE_WEIGHTS:-}" ]; then  # a warm machine keeps the autoencoder an earlier call trained
  AE_WEIGHTS=out/ckpt/autoencoder_weights
  compgen -G "$RUN/ae/autoencoder_weights.p*of*.ckpt" >/dev/null && AE_WEIGHTS=$RUN/ae/autoencoder_weights
fi
PY=${PYTHON:-python3}
BANK=out/motion_train.npz
HELDOUT=out/motion_heldout.npz
export PYTHONUNBUFFERED=1

fail() { echo "error: $*" >&2; exit 1; }
has_checkpoint() { compgen -G "$1.p*of*.ckpt" >/dev/null || [ -f "$1" ]; }
minutes_over() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }

# Python packages the machine lacks may travel as wheels in .whl/ (training/README.md).
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || fail "installing the carried wheels in .whl/ failed"
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" - "${ALLOW_CPU:-0}" <<'EOF' || exit 1
import importlib.util, sys
missing = [m for m in ("torch", "cv2", "numpy") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"error: this machine's Python lacks {', '.join(missing)}: carry wheels in .whl/ (training/README.md)")
import torch
if not torch.cuda.is_available() and sys.argv[1] != "1":
    sys.exit("error: no CUDA GPU here (set ALLOW_CPU=1 for a smoke run on the CPU)")
print(f"torch {torch.__version__}, {torch.cuda.device_count()} GPU(s)"
      + (f": {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
EOF
for bank in "$BANK" "$HELDOUT"; do
  [ -f "$bank" ] || fail "$bank is missing: carry out/motion_train.npz and out/motion_heldout.npz (training/README.md)"
done
minutes_over "$(awk -v a="$AE_MINUTES" -v b="$TEACHER_MINUTES" 'BEGIN { print a + b }')" 7.5 \
  && fail "AE_MINUTES + TEACHER_MINUTES is over 7.5: start-up, compilation, evaluation and copying need the rest of a 9-minute call"

GPUS=$("$PY" -c "import torch; print(max(1, torch.cuda.device_count()))")
CORES=$(nproc)
WORKERS=$(( CORES / GPUS - 2 ))
(( WORKERS < 1 )) && WORKERS=1
launch() {
  if (( GPUS > 1 )); then torchrun --standalone --nproc-per-node "$GPUS" -m "$@"; else "$PY" -m "$@"; fi
}
mkdir -p "$RUN"
LOG="$RUN/log.txt"
echo "== $(date -u +%FT%TZ) teacher.sh: $GPUS GPU(s), $CORES cores, $WORKERS loader workers per GPU" | tee -a "$LOG"

# What comes back, most important first (weights, figures, pictures, then the log); also after a failure.
AE_TRAINED=0
TEACHER_RAN=0
collect() {
  local status=$?
  local requests=()
  (( TEACHER_RAN )) && requests+=("teacher=$RUN/teacher/teacher_ema.p*.ckpt")
  (( AE_TRAINED )) && requests+=("ae=$RUN/ae/autoencoder_weights.p*.ckpt")
  (( TEACHER_RAN )) && requests+=("teacher=$RUN/teacher/metrics.json")
  (( AE_TRAINED )) && requests+=("ae=$RUN/ae/metrics.json")
  (( TEACHER_RAN )) && requests+=("teacher=$RUN/teacher/samples.png" "teacher=$RUN/teacher/sample.mp4"
                                  "teacher=$RUN/teacher/sample_video.npz")
  (( AE_TRAINED )) && requests+=("ae=$RUN/ae/samples.png")
  requests+=(".=$LOG")
  "$PY" -m training.gpu.outbox "$OUT" "${requests[@]}" || true
  (( status )) && echo "teacher.sh stopped with status $status (what was there came back)" >&2
  exit "$status"
}
trap collect EXIT

# 1. The autoencoder: trained further in this call, or carried in.
if minutes_over "$AE_MINUTES" 0; then
  ae_start=()
  if [ -f "$RUN/ae/autoencoder.pt" ]; then ae_start=(--resume "$RUN/ae/autoencoder.pt")
  elif has_checkpoint "$AE_WEIGHTS"; then ae_start=(--resume "$AE_WEIGHTS")
  else ae_start=(--latent-channels "$AE_CHANNELS"); fi
  echo "== autoencoder: $AE_MINUTES min ${ae_start[*]}" | tee -a "$LOG"
  AE_TRAINED=1
  launch training.train_autoencoder --bank "$BANK" --heldout-bank "$HELDOUT" --out "$RUN/ae" --preset "$AE_PRESET" \
    --minutes "$AE_MINUTES" --batch-clips 32 --workers "$WORKERS" --seed "$SEED" "${ae_start[@]}" 2>&1 | tee -a "$LOG"
  AE="$RUN/ae/autoencoder_weights"
else
  AE="$AE_WEIGHTS"
  has_checkpoint "$AE" || fail "no autoencoder weights at $AE: carry them (AE_WEIGHTS) or set AE_MINUTES"
fi

# 2. The teacher: resumed exactly on a warm machine, continued from carried weights, or started afresh
#    (TEACHER_MINUTES=0: an autoencoder-only call).
if minutes_over "$TEACHER_MINUTES" 0; then
  TEACHER_RAN=1
  teacher_start=()
  if has_checkpoint "$RUN/teacher/resume/teacher_resume"; then teacher_start=(--resume "$RUN/teacher/resume/teacher_resume")
  elif has_checkpoint "$TEACHER_INIT"; then teacher_start=(--init "$TEACHER_INIT"); fi
  extra=()
  [ "$COMPILE" = 1 ] && extra+=(--compile)
  [ -n "${SCHEDULE_MINUTES:-}" ] && extra+=(--schedule-minutes "$SCHEDULE_MINUTES")
  echo "== teacher: $TEACHER_MINUTES min ${teacher_start[*]:-(from scratch)}" | tee -a "$LOG"
  launch training.train_teacher --bank "$BANK" --heldout-bank "$HELDOUT" --autoencoder "$AE" --out "$RUN/teacher" \
    --preset "$PRESET" --frames "$FRAMES" --minutes "$TEACHER_MINUTES" --batch-clips "$BATCH" --reuse "$REUSE" \
    --workers "$WORKERS" --eval-clips "$EVAL_CLIPS" --eval-steps "$EVAL_STEPS" --video-segments "$VIDEO_SEGMENTS" \
    --seed "$SEED" "${teacher_start[@]}" "${extra[@]}" 2>&1 | tee -a "$LOG"
fi
