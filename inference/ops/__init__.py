"""Podium's custom ops for ONNX Runtime (domain ``ai.podium``): ``BlockSparseAttention`` and
``SplitHeadsNorm``. Find the library, say whether it can be used, and register it on session options.

The library (``inference/ops/lib/``, built by ``installer/build_ops.sh``) carries CPU kernels and,
when built with nvcc, CUDA kernels, so one ONNX file runs under the CPU and the CUDA execution
providers. The contract (inputs, CSR block mask, checks) is in ``docs/ops.md``; the CSR helpers are
in :mod:`inference.ops.csr` and the float64 reference in :mod:`inference.ops.reference`.

Set ``PODIUM_OPS_LIBRARY`` to use a library from another place.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import CustomOpError

OP_DOMAIN = "ai.podium"
OP_NAME = "BlockSparseAttention"
SPLIT_HEADS_OP_NAME = "SplitHeadsNorm"
#: The ai.podium opset version this Podium implements: 1 has BlockSparseAttention, 2 adds SplitHeadsNorm.
OP_VERSION = 2
LIBRARY_ENV = "PODIUM_OPS_LIBRARY"
MIN_ORT_VERSION = (1, 21)

_BUILD_FIX = "run installer/build_ops.sh (installer/setup.sh runs it too)"


@dataclass(frozen=True)
class _LibraryInfo:
    op_version: int
    has_cuda: bool
    build: str


def _library_file_name() -> str:
    if sys.platform == "win32":
        return "podium_ops.dll"
    if sys.platform == "darwin":
        return "libpodium_ops.dylib"
    return "libpodium_ops.so"


def _expected_path() -> Path:
    override = os.environ.get(LIBRARY_ENV)
    return Path(override) if override else Path(__file__).resolve().parent / "lib" / _library_file_name()


def library_path() -> Path | None:
    """The op library's path, or None when it has not been built."""
    path = _expected_path()
    return path if path.is_file() else None


_probed: dict[tuple[str, int], _LibraryInfo] = {}


def _probe(path: Path) -> _LibraryInfo:
    """Loads the library (without ONNX Runtime) and asks what it is; raises OSError."""
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _probed:
        lib = ctypes.CDLL(str(path))
        lib.PodiumOpsBuildInfo.restype = ctypes.c_char_p
        _probed[key] = _LibraryInfo(op_version=int(lib.PodiumOpsOpVersion()), has_cuda=bool(lib.PodiumOpsHasCuda()),
                                    build=lib.PodiumOpsBuildInfo().decode())
    return _probed[key]


def _onnxruntime_problem() -> str | None:
    try:
        import onnxruntime
    except ImportError as exc:
        return f"onnxruntime is not installed ({exc}): run installer/setup.sh"
    version = tuple(int(part) for part in onnxruntime.__version__.split(".")[:2] if part.isdigit())
    if version < MIN_ORT_VERSION:
        return (f"onnxruntime {onnxruntime.__version__} is older than {MIN_ORT_VERSION[0]}.{MIN_ORT_VERSION[1]}, "
                f"which the custom op needs: pip install -U onnxruntime")
    return None


def availability() -> tuple[bool, str]:
    """(True, what is available) or (False, one line: why not, and the fix)."""
    path = library_path()
    if path is None:
        return False, f"custom op not built ({_expected_path()} is missing): {_BUILD_FIX}"
    try:
        info = _probe(path)
    except (OSError, AttributeError) as exc:
        return False, f"custom op library {path} cannot be loaded ({exc}): {_BUILD_FIX}"
    if info.op_version != OP_VERSION:
        return False, (f"custom op library {path} implements the {OP_DOMAIN} ops version {info.op_version}, this "
                       f"Podium needs version {OP_VERSION}: {_BUILD_FIX}")
    problem = _onnxruntime_problem()
    if problem:
        return False, problem
    kernels = "CPU and CUDA kernels" if info.has_cuda else "CPU kernels only, built without nvcc"
    return True, f"{OP_DOMAIN} ops v{OP_VERSION} ({kernels}; {info.build}) from {path}"


def has_cuda_kernel() -> bool:
    """True when the built library carries the CUDA kernels (it still needs a CUDA GPU to use them)."""
    path = library_path()
    if path is None:
        return False
    try:
        return _probe(path).has_cuda
    except (OSError, AttributeError):
        return False


def register(session_options: Any) -> None:
    """Registers the op library on an ``onnxruntime.SessionOptions``; raises CustomOpError."""
    ok, reason = availability()
    if not ok:
        raise CustomOpError(reason)
    path = library_path()
    try:
        session_options.register_custom_ops_library(str(path))
    except Exception as exc:  # onnxruntime raises its own Fail/RuntimeError types
        raise CustomOpError(f"ONNX Runtime refused the custom op library {path} ({exc}): {_BUILD_FIX}") from exc
