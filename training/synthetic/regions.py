"""Region masks of a rendered presenter: one uint8 bit field per pixel.

A frame's masks are a single ``uint8 [H, W]`` array in which each region owns one
bit, so regions may overlap (the mouth lies inside the face; a hand's margin may
reach over an arm). :func:`region_mask` extracts one region as a boolean image.

* face: the head as drawn and visible (skin, features, hair, ears, glasses).
* mouth: the lips and the mouth opening as visible, plus a small margin.
* left_hand / right_hand: the subject's left / right hand as visible, plus a margin
  (the left hand appears on the image's right side).
* arms: both arms (sleeves and skin), without the hands.
* torso: shirt, neck and collar.
* background: everything else.
"""

from __future__ import annotations

import numpy as np

#: Region names in bit order (bit ``i`` of a mask pixel is region ``REGIONS[i]``).
REGIONS: tuple[str, ...] = ("face", "mouth", "left_hand", "right_hand", "arms", "torso", "background")
REGION_BITS: dict[str, int] = {name: 1 << i for i, name in enumerate(REGIONS)}


def region_mask(masks: np.ndarray, region: str) -> np.ndarray:
    """Boolean ``[..., H, W]`` image of one region from bit-field masks of the same shape.

    Raises:
        ValueError: ``region`` is not one of :data:`REGIONS`.
    """
    if region not in REGION_BITS:
        raise ValueError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
    return (np.asarray(masks) & REGION_BITS[region]) != 0


def masks_to_stack(masks: np.ndarray) -> np.ndarray:
    """Bit-field masks ``[..., H, W]`` as a boolean stack ``[..., len(REGIONS), H, W]`` in :data:`REGIONS` order."""
    masks = np.asarray(masks)
    bits = np.array([REGION_BITS[r] for r in REGIONS], dtype=np.uint8).reshape((len(REGIONS), 1, 1))
    return (masks[..., None, :, :] & bits) != 0


#: Overlay colours (RGB) of the regions drawn by :func:`overlay_regions`.
OVERLAY_COLOURS: dict[str, tuple[int, int, int]] = {
    "face": (255, 210, 0), "mouth": (255, 0, 0), "left_hand": (0, 200, 255), "right_hand": (0, 90, 255),
    "arms": (0, 220, 90), "torso": (200, 0, 255),
}


def overlay_regions(rgb: np.ndarray, masks: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``rgb`` ``[H, W, 3]`` uint8 with each region of ``masks`` tinted (later regions on top; the mouth and hands last).

    Returns a new uint8 image; the background is left as it is.
    """
    out = rgb.astype(np.float32)
    for region in ("torso", "arms", "face", "mouth", "left_hand", "right_hand"):
        m = region_mask(masks, region)
        out[m] = out[m] * (1.0 - alpha) + np.asarray(OVERLAY_COLOURS[region], np.float32) * alpha
    return np.clip(out, 0, 255).astype(np.uint8)
