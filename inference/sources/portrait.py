"""Loading a reference portrait from any common image file.

Whatever the file holds (JPEG with an EXIF rotation, PNG with alpha, 16-bit
TIFF, grayscale, CMYK, palette, a 40-megapixel photo), the result is an upright
8-bit RGB array no larger than ``max_side`` on its long side. Anything that is
not a usable image raises :class:`InputFileError` with what to do.

When the user has chosen no portrait, :func:`default_reference` says what a
renderer shows instead: its own portrait if it has one, else the bundled default.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from inference.errors import InputFileError
from inference.paths import default_portrait
from inference.stages import Renderer

log = logging.getLogger(__name__)

#: Long side of a loaded portrait; larger photos are reduced (renderers work at ≤ 1024 px).
DEFAULT_MAX_SIDE = 2048
#: Portraits smaller than this on their short side cannot show a face in useful detail.
MIN_SIDE = 64
#: Background a transparent portrait is composed over (neutral studio grey).
ALPHA_BACKGROUND = (128, 128, 128)

_FIX = "Use a JPEG, PNG, WebP, BMP or TIFF photo"


def load_portrait(path: str | Path, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Load ``path`` as an upright RGB uint8 ``[H, W, 3]`` array.

    Raises:
        InputFileError: missing, not an image, corrupt, or too small.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path).expanduser()
    if not path.exists():
        raise InputFileError(path, "no such file", "Check the path and try again")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not an image", "Give the path of a photo")
    try:
        with Image.open(path) as img:
            img.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced size, fast for huge photos
            img = ImageOps.exif_transpose(img)
            img.load()
            rgb = _to_rgb(img)
    except UnidentifiedImageError as exc:
        raise InputFileError(path, "is not an image Podium can read", _FIX) from exc
    except Image.DecompressionBombError as exc:
        raise InputFileError(path, "is too large to decode safely (over 180 megapixels)",
                             "Reduce the photo below 100 megapixels") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputFileError(path, f"the image is damaged or truncated ({exc})", "Export or download the photo again") from exc
    if min(rgb.size) < MIN_SIDE:
        raise InputFileError(path, f"is only {rgb.size[0]}x{rgb.size[1]} pixels",
                             f"Use a photo at least {MIN_SIDE} pixels on each side (512 or more looks best)")
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8).copy()


def default_reference(renderer: Renderer) -> np.ndarray:
    """The portrait ``renderer`` shows when the user has chosen none: its own (a student pack's presenter), else
    the bundled default portrait (:func:`inference.paths.default_portrait`).

    Raises:
        InputFileError: the bundled default portrait is missing or damaged (reinstall Podium).
    """
    own = renderer.default_portrait()
    return own if own is not None else load_portrait(default_portrait())


def _to_rgb(img):  # noqa: ANN001, ANN202 - PIL types stay internal
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 1.0
        arr = arr / (65535.0 if hi > 255 else 255.0) * 255.0
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo + 1e-12) * 255.0
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return img.copy()
    return img.convert("RGB")  # L, P, CMYK, YCbCr, LAB, 1
