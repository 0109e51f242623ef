"""The portrait fit cache: mediapipe's findings saved next to the user's data, keyed by the image's hash.

Detection takes a few hundred milliseconds; with the cache, the next start with the same portrait
skips it. Files live in ``<data dir>/fits/<hash>.npz``. A cache that cannot be read (damaged, from an
older version) is ignored and rewritten; one that cannot be written only costs the next start its speed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from inference.paths import data_dir
from inference.render.photo_rig.detect import PortraitLandmarks

log = logging.getLogger(__name__)

#: Bump when detection changes so old fits are recomputed.
FIT_VERSION = 1


def fits_dir() -> Path:
    """The folder of cached portrait fits."""
    return data_dir() / "fits"


def portrait_key(rgb: np.ndarray) -> str:
    """A hex digest identifying a portrait's pixels (shape included)."""
    digest = hashlib.sha256()
    digest.update(f"{rgb.shape}{rgb.dtype}".encode())
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.hexdigest()[:32]


def cache_path(key: str) -> Path:
    return fits_dir() / f"{key}.npz"


def load_fit(key: str) -> PortraitLandmarks | None:
    """The cached landmarks for ``key``, or None when there are none or they cannot be used."""
    path = cache_path(key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != FIT_VERSION:
                return None
            notes = str(data["notes"])
            return PortraitLandmarks(
                image_size=(int(data["image_size"][0]), int(data["image_size"][1])),
                face=data["face"].astype(np.float32), pose=data["pose"].astype(np.float32),
                mask=data["mask"].astype(np.uint8), mask_scale=float(data["mask_scale"]),
                faces_found=int(data["faces_found"]), notes=tuple(n for n in notes.split("\n") if n),
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring the unreadable portrait fit %s (%s); fitting again", path, exc)
        return None


def save_fit(key: str, fit: PortraitLandmarks) -> Path | None:
    """Write ``fit`` for ``key`` atomically; returns the path, or None if it could not be written."""
    path = cache_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fit-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(
                    f, version=np.int32(FIT_VERSION), image_size=np.array(fit.image_size, dtype=np.int64),
                    face=fit.face, pose=fit.pose, mask=fit.mask, mask_scale=np.float64(fit.mask_scale),
                    faces_found=np.int32(fit.faces_found), notes=np.array("\n".join(fit.notes)),
                )
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        log.warning("could not save the portrait fit to %s (%s); the next start will fit the portrait again", path, exc)
        return None
    return path
