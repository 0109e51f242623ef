"""Keypoint streams on disk: save and load DWPose-134 motion as ``.npz`` or ``.json``.

A :class:`KeypointStream` is a ``[T, 134, 3]`` float32 array (x, y normalised,
confidence; see :mod:`inference.keypoints`), its frame rate and free-form
metadata (style, source audio, seed, ...). Both formats carry a format tag and
version so a file can be recognised and upgraded:

* ``.npz``: arrays ``keypoints`` (float32 ``[T, 134, 3]``), ``fps`` (float64
  scalar) and ``header`` (a JSON string with ``format``, ``version``,
  ``layout`` and ``metadata``); loaded without pickle.
* ``.json``: ``{"format": "podium-keypoints", "version": 1, "layout":
  "dwpose-134", "fps": 25.0, "metadata": {...}, "frames": [[[x, y, c] x 134]
  x T]}``, values rounded to 5 decimals; easy to edit by hand or by script.

Saving writes a temporary file next to the target and renames it into place,
so an interrupted save never leaves a half-written file; loading checks
everything and raises :class:`InputFileError` saying what is wrong and what to
do.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.errors import ConfigError, InputFileError, OutputFileError
from inference.keypoints import NUM_KEYPOINTS, validate_sequence
from inference.sinks.mp4 import check_output_path
from inference.types import KeypointFrame

FORMAT = "podium-keypoints"
VERSION = 1
LAYOUT = "dwpose-134"
SUFFIXES = (".npz", ".json")
_FIX_FILE = "Choose a .npz or .json keypoint file saved by Podium (or re-save the motion)"


@dataclass(frozen=True)
class KeypointStream:
    """A whole keypoint motion.

    Attributes:
        keypoints: float32 ``[T, 134, 3]``.
        fps: frames per second (> 0).
        metadata: JSON-serialisable information about the motion.
    """

    keypoints: np.ndarray
    fps: float
    metadata: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keypoints", validate_sequence(self.keypoints))
        if not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps) or not 0 < self.fps <= 1000:
            raise ConfigError(f"keypoint stream fps must be a number from 0 to 1000, got {self.fps!r}")
        object.__setattr__(self, "fps", float(self.fps))

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self) / self.fps

    def frames(self) -> list[KeypointFrame]:
        """The stream as :class:`KeypointFrame` s numbered from 0."""
        return [KeypointFrame(k, index=i, fps=self.fps) for i, k in enumerate(self.keypoints)]

    @staticmethod
    def from_frames(frames: Sequence[KeypointFrame], metadata: dict[str, object] | None = None) -> KeypointStream:
        """Collect frames (in order, one rate) into a stream.

        Raises:
            ConfigError: no frames, mixed frame rates, or frames out of order.
        """
        if not frames:
            raise ConfigError("there are no keypoint frames to save")
        fps = frames[0].fps
        for i, f in enumerate(frames):
            if f.fps != fps:
                raise ConfigError(f"frame {f.index} has {f.fps} fps but the stream has {fps} fps")
            if f.index != frames[0].index + i:
                raise ConfigError(f"keypoint frames are out of order at position {i} (index {f.index})")
        return KeypointStream(np.stack([f.keypoints for f in frames]), fps, dict(metadata or {}))


def save_keypoints(path: str | Path, stream: KeypointStream) -> Path:
    """Write ``stream`` to ``path`` (``.npz`` or ``.json``, chosen by the suffix); returns the path.

    Raises:
        OutputFileError: bad suffix, missing or read-only folder, disk full.
        ConfigError: metadata that is not JSON-serialisable.
    """
    path = check_output_path(path, SUFFIXES)
    try:
        header = {"format": FORMAT, "version": VERSION, "layout": LAYOUT, "metadata": stream.metadata}
        header_text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the keypoint metadata cannot be saved as JSON ({exc})") from exc
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if path.suffix.lower() == ".npz":
                np.savez_compressed(fh, keypoints=stream.keypoints, fps=np.float64(stream.fps),
                                    header=np.array(header_text))
            else:
                body = dict(header, fps=stream.fps, frames=np.round(stream.keypoints.astype(np.float64), 5).tolist())
                fh.write(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputFileError(path, f"could not be written ({exc.strerror or exc})",
                              "Check the free disk space and that the folder is writable") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_keypoints(path: str | Path) -> KeypointStream:
    """Read a keypoint stream saved by :func:`save_keypoints`.

    Raises:
        InputFileError: missing, empty, not a keypoint file, damaged, or holding invalid keypoints.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputFileError(path, "no such file", "Check the path and try again")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a keypoint file", _FIX_FILE)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputFileError(path, f"has the unsupported type {suffix or '(none)'}", _FIX_FILE)
    if path.stat().st_size == 0:
        raise InputFileError(path, "the file is empty (0 bytes)", _FIX_FILE)
    header, keypoints, fps = _read_npz(path) if suffix == ".npz" else _read_json(path)
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InputFileError(path, "its metadata is not a JSON object", _FIX_FILE)
    try:
        return KeypointStream(keypoints, fps, metadata)
    except ConfigError as exc:
        raise InputFileError(path, f"holds invalid keypoints ({exc})", _FIX_FILE) from exc


def _read_npz(path: Path) -> tuple[dict, np.ndarray, float]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"keypoints", "fps", "header"} - set(data.files)
            if missing:
                raise InputFileError(path, f"is not a Podium keypoint file (missing {', '.join(sorted(missing))})",
                                     _FIX_FILE)
            keypoints = data["keypoints"]
            fps_arr = data["fps"]
            header_text = str(data["header"])
    except InputFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputFileError(path, f"is damaged or not an .npz archive ({exc})", _FIX_FILE) from exc
    if fps_arr.shape != () or not np.issubdtype(fps_arr.dtype, np.number):
        raise InputFileError(path, "its fps is not a number", _FIX_FILE)
    try:
        header = json.loads(header_text)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"its header is not valid JSON ({exc.msg})", _FIX_FILE) from exc
    if not isinstance(header, dict):
        raise InputFileError(path, "its header is not a JSON object", _FIX_FILE)
    _check_header(path, header)
    return header, keypoints, float(fps_arr)


def _read_json(path: Path) -> tuple[dict, np.ndarray, float]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputFileError(path, "is not a text file", _FIX_FILE) from exc
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno})", _FIX_FILE) from exc
    if not isinstance(body, dict) or "frames" not in body or "fps" not in body:
        raise InputFileError(path, "is not a Podium keypoint file (no frames or fps)", _FIX_FILE)
    _check_header(path, body)
    fps = body["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)):
        raise InputFileError(path, f"its fps is not a number ({fps!r})", _FIX_FILE)
    try:
        keypoints = np.asarray(body["frames"], dtype=np.float32)
        if keypoints.size == 0:
            keypoints = keypoints.reshape(0, NUM_KEYPOINTS, 3)
    except (TypeError, ValueError) as exc:
        raise InputFileError(path, "its frames are not a [T, 134, 3] array of numbers", _FIX_FILE) from exc
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
        raise InputFileError(path, f"its frames have shape {keypoints.shape}, expected (T, 134, 3)", _FIX_FILE)
    return body, keypoints, float(fps)


def _check_header(path: Path, header: dict) -> None:
    if header.get("format") != FORMAT:
        raise InputFileError(path, f"is not a Podium keypoint file (format {header.get('format')!r})", _FIX_FILE)
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise InputFileError(path, f"was saved by a newer Podium (keypoint format version {version!r})",
                             "Update Podium to open it")
    if header.get("layout", LAYOUT) != LAYOUT:
        raise InputFileError(path, f"uses the keypoint layout {header.get('layout')!r}, not {LAYOUT}", _FIX_FILE)
