"""What audio devices and virtual cameras this machine has.

Nothing here raises on a machine without a sound card or camera driver: the
functions return empty lists, and :func:`audio_backend_problem` /
:func:`virtual_camera_problem` say in words what is missing and how to fix it.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

V4L2LOOPBACK_FIX = (
    "install the v4l2loopback driver: sudo apt install v4l2loopback-dkms && "
    "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Podium "
    "(or run installer/virtual_camera.sh)"
)


@dataclass(frozen=True)
class AudioDevice:
    """One PortAudio device."""

    index: int
    name: str
    hostapi: str
    inputs: int
    outputs: int
    default_samplerate: float
    is_default_input: bool = False
    is_default_output: bool = False


def _sounddevice():  # noqa: ANN202 - the module, imported lazily (PortAudio may be missing)
    import sounddevice

    return sounddevice


def audio_backend_problem() -> str | None:
    """None if PortAudio loads, else what is wrong and how to fix it."""
    try:
        _sounddevice()
    except OSError as exc:
        return f"the PortAudio library is missing ({exc}); install it: sudo apt install libportaudio2"
    return None


def list_audio_devices() -> list[AudioDevice]:
    """Every audio device PortAudio sees (empty when there is none or PortAudio is missing)."""
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except Exception as exc:  # noqa: BLE001 - PortAudio reports "no device" in many ways
        log.debug("no audio devices: %s", exc)
        return []
    out = []
    for i, d in enumerate(devices):
        out.append(
            AudioDevice(
                index=i,
                name=str(d["name"]),
                hostapi=str(hostapis[d["hostapi"]]["name"]),
                inputs=int(d["max_input_channels"]),
                outputs=int(d["max_output_channels"]),
                default_samplerate=float(d["default_samplerate"]),
                is_default_input=i == default_in,
                is_default_output=i == default_out,
            )
        )
    return out


def list_microphones() -> list[AudioDevice]:
    return [d for d in list_audio_devices() if d.inputs > 0]


def list_speakers() -> list[AudioDevice]:
    return [d for d in list_audio_devices() if d.outputs > 0]


@dataclass(frozen=True)
class VirtualCamera:
    """A virtual camera device (a v4l2loopback node on Linux)."""

    device: str
    name: str


def list_virtual_cameras() -> list[VirtualCamera]:
    """v4l2loopback devices on Linux; empty elsewhere or when the driver is not loaded."""
    cams = []
    for node in sorted(glob.glob("/dev/video*")):
        name_file = Path("/sys/class/video4linux") / os.path.basename(node) / "name"
        try:
            name = name_file.read_text().strip()
        except OSError:
            continue
        driver_link = Path("/sys/class/video4linux") / os.path.basename(node) / "device" / "driver"
        driver = os.path.basename(os.path.realpath(driver_link)) if driver_link.exists() else ""
        if "loopback" in name.lower() or "v4l2loopback" in driver or name.lower().startswith("podium"):
            cams.append(VirtualCamera(device=node, name=name))
    return cams


def virtual_camera_problem() -> str | None:
    """None if a virtual camera is usable, else what is missing and how to get it."""
    import sys

    if sys.platform.startswith("linux"):
        if not list_virtual_cameras():
            return f"no v4l2loopback virtual camera is loaded; {V4L2LOOPBACK_FIX}"
        return None
    return None  # Windows/macOS: the OBS virtual camera is detected when the camera starts
