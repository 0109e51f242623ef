"""The still background plate: the framed portrait with the person removed and the hole filled.

When the head turns or the shoulders rise, a sliver of background behind the person shows; it comes from
this plate, so the background itself never moves. The hole is filled by push-pull interpolation (a
pyramid of masked averages): smooth, deterministic, and fast enough to run at every portrait change.
"""

from __future__ import annotations

import cv2
import numpy as np


def fill_holes(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill where ``known`` is low with colours spread from where it is high.

    Args:
        rgb: uint8 ``[H, W, 3]`` image.
        known: float32 ``[H, W]`` weight 0..1 of each pixel's colour (1 = keep, 0 = fill).

    Returns:
        uint8 ``[H, W, 3]``: ``rgb`` where ``known`` is 1, the filled colour where it is 0, blended between.
    """
    weight = known.astype(np.float32)
    colour = rgb.astype(np.float32) * weight[..., None]
    levels = [(colour, weight)]
    while min(levels[-1][1].shape) > 2:
        c, w = levels[-1]
        levels.append((cv2.pyrDown(c), cv2.pyrDown(w)))
    filled = levels[-1][0] / np.maximum(levels[-1][1], 1e-6)[..., None]
    for c, w in reversed(levels[:-1]):
        up = cv2.resize(filled, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        mean = c / np.maximum(w, 1e-6)[..., None]
        trust = np.clip(w * 4.0, 0.0, 1.0)[..., None]  # a level's own average wins where it saw enough pixels
        filled = mean * trust + up * (1.0 - trust)
    out = rgb.astype(np.float32) * known[..., None] + filled * (1.0 - known[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def background_plate(rgb: np.ndarray, person: np.ndarray, grow: float) -> np.ndarray:
    """``rgb`` with the person (mask ``person`` 0..1, grown by ``grow`` pixels) replaced by filled background."""
    radius = max(1, int(round(grow)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate((person > 0.02).astype(np.uint8), kernel)
    return fill_holes(rgb, 1.0 - grown.astype(np.float32))
