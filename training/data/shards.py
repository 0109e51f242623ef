"""The dataset format: shards of ``.npz`` holding frames, keypoints, region masks and reference portraits.

One shard (``shard_00000.npz``, ...) holds N frames and R references:

========================  ==========================  ==============================================
array                     shape, dtype                meaning
========================  ==========================  ==============================================
``frames``                ``[N, S, S, 3]`` uint8      RGB frames
``keypoints``             ``[N, 134, 3]`` float32     DWPose-134 of each frame (x, y in 0..1, conf)
``masks``                 ``[N, S, S]`` uint8         region bit fields (``training.synthetic.regions``)
``reference_index``       ``[N]`` int64               which reference portrait belongs to each frame
``clip``                  ``[N]`` int64               frames of one clip share it (consecutive in time)
``frame_index``           ``[N]`` int64               frame number in its source (stream or video)
``references``            ``[R, S, S, 3]`` uint8      reference portraits
``reference_keypoints``   ``[R, 134, 3]`` float32     their keypoints
``identity``              ``[R]`` int64               identity of each reference (seed; -1 if unknown)
``meta``                  JSON string                 format, size, fps, source, split, regions, notes
========================  ==========================  ==============================================

Synthetic clips and personal video use the same format, so the same loader
trains on both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.errors import InputFileError, OutputFileError
from training.synthetic.regions import REGIONS

FORMAT = "podium-shard/1"
_ARRAYS = ("frames", "keypoints", "masks", "reference_index", "clip", "frame_index", "references",
           "reference_keypoints", "identity")


@dataclass
class Shard:
    """The arrays of one shard (see the module docstring) and its metadata."""

    frames: np.ndarray
    keypoints: np.ndarray
    masks: np.ndarray
    reference_index: np.ndarray
    clip: np.ndarray
    frame_index: np.ndarray
    references: np.ndarray
    reference_keypoints: np.ndarray
    identity: np.ndarray
    meta: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def validate(self, where: str | Path = "shard") -> None:
        """Check shapes, dtypes and cross-references.

        Raises:
            ValueError: naming the first problem found.
        """
        n, r = len(self.frames), len(self.references)
        if self.frames.ndim != 4 or self.frames.shape[3] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"{where}: frames must be uint8 [N, S, S, 3], got {self.frames.dtype} {self.frames.shape}")
        size = self.frames.shape[1:3]
        expected = {
            "keypoints": ((n, 134, 3), np.float32), "masks": ((n, *size), np.uint8),
            "reference_index": ((n,), np.int64), "clip": ((n,), np.int64), "frame_index": ((n,), np.int64),
            "references": ((r, *size, 3), np.uint8), "reference_keypoints": ((r, 134, 3), np.float32),
            "identity": ((r,), np.int64),
        }
        for name, (shape, dtype) in expected.items():
            arr = getattr(self, name)
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(f"{where}: {name} must be {np.dtype(dtype)} {list(shape)}, got {arr.dtype} {list(arr.shape)}")
        if n and (self.reference_index.min() < 0 or self.reference_index.max() >= r):
            raise ValueError(f"{where}: reference_index points outside the {r} references")
        if not np.isfinite(self.keypoints).all():
            raise ValueError(f"{where}: keypoints contain NaN or infinite values")


def write_shard(path: str | Path, shard: Shard) -> Path:
    """Validate and write ``shard`` to ``path`` (compressed ``.npz``), via a temporary file renamed into place.

    Raises:
        OutputFileError: the folder cannot be created or written.
    """
    path = Path(path)
    shard.validate(path)
    meta = {"format": FORMAT, "regions": list(REGIONS), **shard.meta}
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as f:
            np.savez_compressed(f, meta=np.array(json.dumps(meta)), **{k: getattr(shard, k) for k in _ARRAYS})
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputFileError(path, f"cannot write the shard ({exc.strerror or exc})",
                              "Check that the folder is writable and the disk has space") from exc
    return path


def read_shard(path: str | Path) -> Shard:
    """Read and validate one shard.

    Raises:
        InputFileError: missing, not a shard, from an unknown format version, or inconsistent.
    """
    path = Path(path)
    fix = "Re-create the dataset (the shard is missing or damaged)"
    if not path.is_file():
        raise InputFileError(path, "no such shard file", fix)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (*_ARRAYS, "meta") if k not in data.files]
            if missing:
                raise InputFileError(path, f"not a Podium shard (missing {', '.join(missing)})", fix)
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in _ARRAYS}
    except InputFileError:
        raise
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise InputFileError(path, f"not a readable shard ({exc})", fix) from exc
    if meta.get("format") != FORMAT:
        raise InputFileError(path, f"unknown shard format {meta.get('format')!r} (expected {FORMAT})", fix)
    shard = Shard(meta=meta, **arrays)
    try:
        shard.validate(path)
    except ValueError as exc:
        raise InputFileError(path, str(exc).split(": ", 1)[-1], fix) from exc
    return shard


def list_shards(folder: str | Path) -> list[Path]:
    """The shard files of a dataset folder, in order.

    Raises:
        InputFileError: the folder is missing or holds no shard.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "no such dataset folder", "Give the folder the dataset was written to")
    shards = sorted(folder.glob("shard_*.npz"))
    if not shards:
        raise InputFileError(folder, "holds no shard_*.npz files", "Give the folder the dataset was written to")
    return shards


class ShardWriter:
    """Collects clips and writes ``shard_00000.npz``, ``shard_00001.npz``, ... of about ``frames_per_shard`` frames.

    Args:
        folder: output folder (created).
        meta: metadata stored in every shard (size, fps, source, split, ...).
        frames_per_shard: a shard is written once it holds at least this many frames.
    """

    def __init__(self, folder: str | Path, meta: dict[str, object], frames_per_shard: int = 256) -> None:
        self.folder = Path(folder)
        self.meta = dict(meta)
        self.frames_per_shard = int(frames_per_shard)
        self.paths: list[Path] = []
        self.total_frames = 0
        self._parts: list[dict[str, np.ndarray]] = []
        self._refs: list[tuple[np.ndarray, np.ndarray, int]] = []
        self._pending = 0

    def add_reference(self, image: np.ndarray, keypoints: np.ndarray, identity: int) -> int:
        """Add a reference portrait to the current shard; returns its index for :meth:`add_clip`."""
        self._refs.append((np.asarray(image, np.uint8), np.asarray(keypoints, np.float32), int(identity)))
        return len(self._refs) - 1

    def add_clip(self, frames: np.ndarray, keypoints: np.ndarray, masks: np.ndarray, reference: int, clip: int,
                 frame_index: np.ndarray) -> None:
        """Add consecutive frames of one clip (``reference`` from :meth:`add_reference` of the same shard)."""
        n = len(frames)
        self._parts.append({
            "frames": np.asarray(frames, np.uint8), "keypoints": np.asarray(keypoints, np.float32),
            "masks": np.asarray(masks, np.uint8), "reference_index": np.full(n, reference, np.int64),
            "clip": np.full(n, clip, np.int64), "frame_index": np.asarray(frame_index, np.int64),
        })
        self._pending += n
        self.total_frames += n

    @property
    def full(self) -> bool:
        """Whether the current shard has reached its size (call :meth:`flush` before adding a new reference)."""
        return self._pending >= self.frames_per_shard

    def flush(self) -> Path | None:
        """Write the current shard (if it holds frames); returns its path."""
        if not self._parts:
            return None
        cat = {k: np.concatenate([p[k] for p in self._parts]) for k in self._parts[0]}
        shard = Shard(references=np.stack([r[0] for r in self._refs]),
                      reference_keypoints=np.stack([r[1] for r in self._refs]),
                      identity=np.array([r[2] for r in self._refs], np.int64), meta=self.meta, **cat)
        path = write_shard(self.folder / f"shard_{len(self.paths):05d}.npz", shard)
        self.paths.append(path)
        self._parts, self._refs, self._pending = [], [], 0
        return path
