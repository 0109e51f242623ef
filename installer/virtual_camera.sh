#!/usr/bin/env bash
# Set up a virtual camera on Linux (v4l2loopback) so Zoom, Meet or Teams can pick "Podium".
# Needs root (sudo) and a kernel whose headers Debian/Ubuntu can build the module against.
# On Windows and macOS, install OBS Studio once instead: Podium uses its virtual camera.
set -euo pipefail
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
if ! modinfo v4l2loopback >/dev/null 2>&1; then
  echo "Installing v4l2loopback-dkms (builds a kernel module; this can take a minute)..."
  $sudo apt-get install -y v4l2loopback-dkms v4l2loopback-utils
fi
if lsmod | grep -q '^v4l2loopback'; then
  echo "v4l2loopback is already loaded:"; ls /sys/devices/virtual/video4linux/ 2>/dev/null || true
else
  $sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Podium
fi
echo "To load it at every boot:"
echo "  echo v4l2loopback | sudo tee /etc/modules-load.d/podium.conf"
echo "  echo 'options v4l2loopback devices=1 exclusive_caps=1 card_label=Podium' | sudo tee /etc/modprobe.d/podium.conf"
.venv/bin/python main.py devices 2>/dev/null | sed -n '/Virtual cameras:/,$p' || true
