"""`main.py doctor`: what this machine can do, and a fix for every problem."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from inference import devices, paths

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def _check_python() -> Check:
    v = sys.version_info
    ok = (v.major, v.minor) == (3, 11)
    return Check("Python", "ok" if ok else "warn", f"{platform.python_implementation()} {platform.python_version()}",
                 "" if ok else "Podium is tested on Python 3.11; run installer/setup.sh to make its virtual environment")


def _nvidia_gpu() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError):
            return None
    if os.path.exists("/proc/driver/nvidia/version"):
        return "NVIDIA driver present"
    return None


def _check_gpu() -> Check:
    gpu = _nvidia_gpu()
    if gpu:
        return Check("GPU", "ok", gpu)
    return Check("GPU", "warn", "no NVIDIA GPU found",
                 "the photo rig runs on the CPU; the IASA student needs an NVIDIA GPU with a CUDA 13 driver (R580+)")


def _check_onnxruntime() -> Check:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return Check("ONNX Runtime", "fail", f"not installed ({exc})", "run installer/setup.sh")
    from inference.gpu import CUDA_PROVIDER, FIX, cuda_problem

    providers = ort.get_available_providers()
    detail = f"{ort.__version__}, providers: {', '.join(providers)}"
    if CUDA_PROVIDER in providers:
        problem = cuda_problem()
        if problem is None:
            return Check("ONNX Runtime", "ok", detail + " (CUDA starts)")
        return Check("ONNX Runtime", "warn", f"{detail}; {problem}", FIX)
    if _nvidia_gpu():
        return Check("ONNX Runtime", "warn", detail + " (CPU build on a GPU machine)",
                     "run installer/setup.sh --gpu to install onnxruntime-gpu")
    return Check("ONNX Runtime", "ok", detail)


def _check_custom_op() -> Check:
    try:
        from inference import ops
    except ImportError as exc:
        return Check("Custom op", "fail", f"inference.ops cannot be imported ({exc})", "run installer/setup.sh")
    ok, reason = ops.availability()
    return Check("Custom op (BlockSparseAttention)", "ok" if ok else "warn", reason,
                 "" if ok else "run installer/setup.sh to build it; without it the student uses dense attention")


def _check_audio() -> Check:
    problem = devices.audio_backend_problem()
    if problem:
        return Check("Audio", "fail", problem, "sudo apt install libportaudio2")
    mics = devices.list_microphones()
    speakers = devices.list_speakers()
    if not mics:
        return Check("Audio", "warn", f"no microphone found ({len(speakers)} outputs)",
                     "plug in a microphone, or check that PulseAudio/PipeWire runs; offline rendering still works")
    default = next((m.name for m in mics if m.is_default_input), mics[0].name)
    return Check("Audio", "ok", f"{len(mics)} microphone(s), default: {default}; {len(speakers)} output(s)")


def _check_virtual_camera() -> Check:
    problem = devices.virtual_camera_problem()
    if problem:
        return Check("Virtual camera", "warn", problem.split(";")[0], devices.V4L2LOOPBACK_FIX)
    cams = devices.list_virtual_cameras()
    names = ", ".join(f"{c.device} ({c.name})" for c in cams) or "OBS virtual camera (checked when started)"
    return Check("Virtual camera", "ok", names)


def _check_display() -> Check:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return Check("Display", "warn", "no display (DISPLAY and WAYLAND_DISPLAY are unset)",
                     "the window needs a desktop session; `main.py render` works without one")
    return Check("Display", "ok", os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or sys.platform)


def _check_packs() -> Check:
    try:
        from inference.packs import find_packs
    except ImportError:
        return Check("Model packs", "warn", "model-pack support is not installed", "run installer/setup.sh")
    found = find_packs()
    if not found:
        return Check("Model packs", "warn", "no model pack found",
                     f"the photo rig needs none; put packs in {paths.user_packs_dir()}")
    return Check("Model packs", "ok", ", ".join(f"{p.name} ({p.status})" for p in found))


def _check_face_tracking() -> Check:
    try:
        import mediapipe as mp

        ok = hasattr(mp, "solutions")
    except Exception as exc:  # noqa: BLE001 - any import failure is reported
        return Check("Face tracking", "fail", f"mediapipe cannot be imported ({exc})", "run installer/setup.sh")
    if not ok:
        return Check("Face tracking", "fail", f"mediapipe {mp.__version__} lacks its bundled models",
                     "install mediapipe 0.10.21: run installer/setup.sh")
    return Check("Face tracking", "ok", f"mediapipe {mp.__version__}")


def _check_disk() -> Check:
    folder = paths.data_dir()
    probe = folder if folder.exists() else folder.parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 2**30
    if free < 1:
        return Check("Disk", "warn", f"{free:.1f} GiB free for recordings in {probe}", "free some disk space")
    return Check("Disk", "ok", f"{free:.0f} GiB free in {probe}")


CHECKS: tuple[Callable[[], Check], ...] = (
    _check_python, _check_gpu, _check_onnxruntime, _check_custom_op, _check_face_tracking,
    _check_packs, _check_audio, _check_virtual_camera, _check_display, _check_disk,
)


def run_checks() -> list[Check]:
    """Run every check; a check that crashes is reported, not raised."""
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        except Exception as exc:  # noqa: BLE001 - the doctor must always finish its report
            results.append(Check(check.__name__.removeprefix("_check_"), "fail", f"check crashed: {exc}"))
    return results


def format_report(checks: list[Check]) -> str:
    marks = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"[{marks[c.status]}] {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"       {'':<{width}}  fix: {c.fix}")
    return "\n".join(lines)
