#!/usr/bin/env bash
# Set up Podium on this machine: system packages, a virtual environment (.venv), the pinned Python
# packages, and the BlockSparseAttention custom op. Safe to run again: it only does what is missing.
#
# Usage: installer/setup.sh [--dev] [--train] [--gpu|--cpu] [--no-system]
#   --dev        also install the test tools and what the tests need (PulseAudio, Xvfb, espeak-ng)
#   --train      also install PyTorch and the ONNX exporter (training and export only)
#   --gpu/--cpu  force onnxruntime-gpu or onnxruntime (default: gpu when an NVIDIA driver is present)
#   --no-system  skip system packages (apt)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
req="$root/installer/requirements"

dev=0; train=0; system=1; ort="auto"
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --train) train=1 ;;
    --gpu) ort="gpu" ;;
    --cpu) ort="cpu" ;;
    --no-system) system=0 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- 1. system packages ---------------------------------------------------------------------
apt_packages=(cmake g++ libportaudio2 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libegl1 libgl1
              pocketsphinx-testdata)
if [ "$dev" = 1 ]; then
  apt_packages+=(pulseaudio pulseaudio-utils libasound2-plugins xvfb xauth espeak-ng)
fi
if [ "$system" = 1 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
      if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "setup.sh: please install these packages as root, then run me again: ${missing[*]}" >&2; exit 1
      fi
    fi
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/podium-apt.log 2>&1; then
      $sudo apt-get update -q >/tmp/podium-apt.log 2>&1 || true
      $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/podium-apt.log 2>&1 || {
        echo "setup.sh: apt-get failed; see /tmp/podium-apt.log" >&2; exit 1; }
    fi
  fi
fi

# --- 2. virtual environment -------------------------------------------------------------------
python_bin="${PODIUM_PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python_bin="$candidate"; break
    fi
  done
fi
if [ -z "$python_bin" ]; then
  echo "setup.sh: Podium needs Python 3.11 (python3.11 not found). Install it, or set PODIUM_PYTHON." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$python_bin" --version)"
  "$python_bin" -m venv .venv
fi
py="$root/.venv/bin/python"

# --- 3. Python packages -----------------------------------------------------------------------
if [ "$ort" = auto ]; then
  if [ -e /proc/driver/nvidia/version ] || command -v nvidia-smi >/dev/null 2>&1; then ort=gpu; else ort=cpu; fi
fi
files=("$req/runtime.txt" "$req/onnxruntime-$ort.txt")
[ "$dev" = 1 ] && files+=("$req/dev.txt")
[ "$train" = 1 ] && files+=("$req/train.txt")
stamp=".venv/.podium-requirements"
want="$(cat "${files[@]}" | sha256sum | cut -c1-64) ${files[*]##*/}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  other=$([ "$ort" = gpu ] && echo onnxruntime || echo onnxruntime-gpu)
  if "$py" -m pip show -q "$other" >/dev/null 2>&1; then
    say "removing $other (onnxruntime and onnxruntime-gpu must never be installed together)"
    "$py" -m pip uninstall -y -q "$other"
  fi
  say "installing Python packages (${files[*]##*/})"
  "$py" -m pip install -q --disable-pip-version-check --upgrade "pip>=24" 2>&1 | grep -v "^WARNING: Location" || true
  args=()
  for f in "${files[@]}"; do args+=(-r "$f"); done
  "$py" -m pip install -q --disable-pip-version-check --no-deps "${args[@]}" 2>&1 | grep -v "^WARNING: Location" || true
  "$py" -c "import numpy, onnxruntime, av, PySide6, mediapipe, pocketsphinx" || {
    echo "setup.sh: the Python packages did not install correctly (see the messages above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# --- 4. the custom op -------------------------------------------------------------------------
# CPU kernel always; CUDA kernels too when nvcc is found (it falls back to CPU-only by itself).
installer/build_ops.sh

# --- 5. measurement models (dev) ---------------------------------------------------------------
if [ "$dev" = 1 ]; then
  installer/fetch_face_landmarker.sh || say "FaceLandmarker model not fetched; bench photo_rig falls back to the face mesh"
fi

say "ready. Start Podium with: .venv/bin/python main.py   (tests: .venv/bin/python -m pytest)"
