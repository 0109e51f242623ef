"""Podium's small error tree.

Every error a user can cause (a bad file, a missing device, a broken pack) is a
:class:`PodiumError` whose message says what happened and what to do. The CLI and
the GUI print ``str(error)`` as is, so messages are full sentences.
"""

from __future__ import annotations

import enum
from pathlib import Path


class PodiumError(Exception):
    """Base of every error Podium raises on purpose."""


class ConfigError(PodiumError, ValueError):
    """A setting or argument has a value Podium cannot use."""


class InputFileError(PodiumError):
    """An input file (audio, portrait, keypoints) is missing, unreadable or malformed."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}. {fix}")


class OutputFileError(PodiumError):
    """An output file cannot be written."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}. {fix}")


class DeviceError(PodiumError):
    """A microphone, speaker or camera is missing, busy or was unplugged."""


class ModelLoadError(PodiumError):
    """A model pack or ONNX file cannot be loaded."""


class CustomOpError(PodiumError):
    """The BlockSparseAttention custom-op library is unavailable or failed to load."""


class StopReason(enum.Enum):
    """Why a sink (recorder, virtual camera) stopped."""

    SUCCESS = "success"
    CANCELLED = "cancelled"
    BAD_PATH = "bad path"
    NO_SPACE = "no space left"
    DEVICE_LOST = "device lost"
    ENCODE_ERROR = "encode error"
    UNSUPPORTED = "unsupported"


class SinkError(PodiumError):
    """A sink failed; ``reason`` says how."""

    def __init__(self, message: str, reason: StopReason) -> None:
        self.reason = reason
        super().__init__(message)


class PipelineCancelled(PodiumError):
    """The pipeline was stopped before its input ended (user cancel)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (ONNX Runtime's often run to many lines), else its type's name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
