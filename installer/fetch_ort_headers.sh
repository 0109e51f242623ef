#!/usr/bin/env bash
# Fetch the ONNX Runtime C/C++ headers that the custom op compiles against.
#
# PyPI's onnxruntime wheels ship no headers, so we take them from Debian's
# `libonnxruntime-dev` package (trixie, ORT API 21). apt runs against a private
# state folder, so the system's package lists and sources stay untouched.
# Nothing fetched here is committed: it lands in build/ort-headers (git-ignored).
#
# Usage: installer/fetch_ort_headers.sh [DEST]      (default: build/ort-headers)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/build/ort-headers}"
marker="$dest/include/onnxruntime/onnxruntime_cxx_api.h"
if [ -f "$marker" ]; then
  echo "ONNX Runtime headers already present in $dest"
  exit 0
fi

work="$root/build/ort-apt"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"

uri=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  uri=$(awk '/^URIs:/{print $2; exit}' "$f")
  [ -n "$uri" ] && break
done
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
fi
if [ -z "$uri" ]; then
  echo "error: no Debian mirror found in /etc/apt; cannot fetch libonnxruntime-dev." >&2
  echo "fix: put the ONNX Runtime 1.21+ headers in $dest/include/onnxruntime by hand." >&2
  exit 1
fi

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] $uri trixie main" > "$work/trixie.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/trixie.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
          -o "APT::Sandbox::User=root" -qq)
echo "Fetching libonnxruntime-dev headers from Debian trixie ($uri)..."
apt-get "${apt_opts[@]}" update
(cd "$work/debs" && apt-get "${apt_opts[@]}" download libonnxruntime-dev)
deb=$(ls "$work"/debs/libonnxruntime-dev_*.deb | head -n 1)
rm -rf "$work/extract"
dpkg-deb -x "$deb" "$work/extract"
mkdir -p "$dest/include"
rm -rf "$dest/include/onnxruntime"
cp -r "$work/extract/usr/include/onnxruntime" "$dest/include/onnxruntime"
basename "$deb" > "$dest/SOURCE"
echo "ONNX Runtime headers: $dest/include/onnxruntime (from $(cat "$dest/SOURCE"))"
