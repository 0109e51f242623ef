"""ONNX Runtime's CUDA execution provider: making its libraries loadable, and checking that it really starts.

onnxruntime-gpu lists ``CUDAExecutionProvider`` whenever it was built with it, but the provider only starts
when the CUDA, cuBLAS and cuDNN libraries load. The installer brings them as PyPI packages (``nvidia-*``),
which are not on the loader's path: :func:`cuda_problem` first lets ONNX Runtime preload them
(``onnxruntime.preload_dlls``), then starts the provider once on a one-node model and says why not when it
does not. A session asked for CUDA whose provider fails to start silently runs on the CPU instead, so
engines check :func:`runs_on_cuda` after building one.
"""

from __future__ import annotations

import functools
import logging

from inference.errors import first_line

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
FIX = "run installer/setup.sh --gpu (it installs onnxruntime-gpu with its CUDA and cuDNN libraries)"


def cuda_status() -> tuple[bool, str]:
    """(True, "CUDA") when ONNX Runtime's CUDA execution provider starts here, else (False, why, then the fix)."""
    problem = cuda_problem()
    return (True, "CUDA") if problem is None else (False, f"{problem}: {FIX}")


@functools.cache
def cuda_problem() -> str | None:
    """None when ONNX Runtime's CUDA execution provider starts here, else why not (without the fix, :data:`FIX`).
    Computed once per process (it loads the CUDA libraries and creates a CUDA context)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return f"onnxruntime is not installed ({exc})"
    if CUDA_PROVIDER not in ort.get_available_providers():
        return f"this ONNX Runtime ({ort.__version__}) was built without CUDA"
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
        except Exception as exc:  # a library it tried and failed to load: the check below says what it means
            log.info("onnxruntime.preload_dlls: %s", exc)
    from inference.render.student.device_copy import copy_model

    options = ort.SessionOptions()
    options.log_severity_level = 4  # the failure is reported below, in one line
    try:
        session = ort.InferenceSession(copy_model(1), options, providers=[CUDA_PROVIDER, "CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        return f"ONNX Runtime's CUDA execution provider failed to start ({first_line(exc)})"
    if not runs_on_cuda(session):
        return ("ONNX Runtime's CUDA execution provider did not start (no NVIDIA GPU or driver, or the CUDA or cuDNN "
                "libraries did not load)")
    return None


def runs_on_cuda(session: object) -> bool:
    """Whether an ``onnxruntime.InferenceSession`` got the CUDA execution provider it asked for."""
    return CUDA_PROVIDER in session.get_providers()
