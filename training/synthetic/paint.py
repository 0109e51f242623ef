"""The canvas a presenter is painted on: anti-aliased colour, a label map, and soft shading.

Every shape is drawn twice: anti-aliased into the RGB image and, when it owns
pixels, aliased into a label map (which body part each pixel shows). The label
map gives the region masks and, blurred at a quarter of the resolution and
shifted against the light, the soft rounded shading of each part (one pass for
the whole frame, instead of gradient fills shape by shape).
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from training.synthetic.curves import ONE, SHIFT, fixed
from training.synthetic.regions import REGION_BITS

# Label values of the label map (one per drawn part that owns pixels).
BACKGROUND, TORSO, FACE, MOUTH, ARMS, LEFT_HAND, RIGHT_HAND = range(7)

#: label → region bits of the mask (mouth pixels are also face pixels).
_MASK_LUT = np.zeros(256, dtype=np.uint8)
_MASK_LUT[BACKGROUND] = REGION_BITS["background"]
_MASK_LUT[TORSO] = REGION_BITS["torso"]
_MASK_LUT[FACE] = REGION_BITS["face"]
_MASK_LUT[MOUTH] = REGION_BITS["face"] | REGION_BITS["mouth"]
_MASK_LUT[ARMS] = REGION_BITS["arms"]
_MASK_LUT[LEFT_HAND] = REGION_BITS["left_hand"]
_MASK_LUT[RIGHT_HAND] = REGION_BITS["right_hand"]

#: Shading groups: (labels in the group, blur sigma as a fraction of the frame size).
_SHADE_GROUPS: tuple[tuple[tuple[int, ...], float], ...] = (
    ((TORSO,), 0.035), ((FACE, MOUTH), 0.03), ((ARMS,), 0.012), ((LEFT_HAND, RIGHT_HAND), 0.008),
)
_SHADE_DOWN = 4  # shading is computed at 1/4 of the frame size
_BASE = 224  # shading factors are stored as uint8 with this value meaning 1.0 (room to brighten)


def _group_table() -> np.ndarray:
    """label → 4 bytes (one per shading group, 255 in the label's group), as one uint32 per label."""
    table = np.zeros((256, 4), dtype=np.uint8)
    for g, (labels, _) in enumerate(_SHADE_GROUPS):
        for label in labels:
            table[label, g] = 255
    return table.view(np.uint32)[:, 0].copy()


_GROUP_TABLE = _group_table()


@lru_cache(maxsize=16)
def _half_circle(n: int) -> np.ndarray:
    a = np.linspace(-math.pi / 2, math.pi / 2, n)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def shade_colour(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """``colour`` scaled by ``factor`` (clipped to 0..255)."""
    return tuple(int(min(255, max(0, round(c * factor)))) for c in colour)  # type: ignore[return-value]


def mix_colour(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    """The colour ``t`` of the way from ``a`` to ``b``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def capsule_polygons(a: np.ndarray, b: np.ndarray, ra: np.ndarray, rb: np.ndarray, n: int = 7) -> np.ndarray:
    """Convex polygons ``[k, 2n, 2]`` around segments ``a[i]`` → ``b[i]`` (``[k, 2]``) with end radii ``[k]``."""
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])[:, None]
    d = np.where(length > 1e-6, d / np.maximum(length, 1e-6), np.array([1.0, 0.0]))
    half = _half_circle(n)  # [n, 2] (along, across) from -90° to +90°
    # local (along, across) → image: along * d + across * perp(d)
    hx = half[None, :, 0:1] * d[:, None, :] + half[None, :, 1:2] * np.stack([-d[:, 1], d[:, 0]], axis=1)[:, None, :]
    front = b[:, None, :] + hx * np.asarray(rb, dtype=np.float64)[:, None, None]
    back = a[:, None, :] - hx * np.asarray(ra, dtype=np.float64)[:, None, None]
    return np.concatenate([front, back], axis=1)


class Canvas:
    """An RGB frame and its label map, with drawing calls in pixel coordinates.

    Args:
        background: uint8 ``[H, W, 3]`` backdrop; copied, never modified.
    """

    def __init__(self, background: np.ndarray) -> None:
        self.rgb = background.copy()
        self.height, self.width = self.rgb.shape[:2]
        self.labels = np.zeros((self.height, self.width), dtype=np.uint8)
        #: pixels per 256 of frame size: line widths scale with it
        self.unit = min(self.width, self.height) / 256.0

    def px(self, width_at_256: float) -> int:
        """A line thickness in whole pixels for a width given at 256 px."""
        return max(1, int(round(width_at_256 * self.unit)))

    def fill(self, polygon: np.ndarray, colour: tuple[int, int, int], label: int | None = None) -> None:
        """Fill a (possibly concave) polygon ``[n, 2]`` in pixels; ``label`` also claims its pixels."""
        pts = [fixed(polygon)]
        cv2.fillPoly(self.rgb, pts, colour, cv2.LINE_AA, SHIFT)
        if label is not None:
            cv2.fillPoly(self.labels, pts, label, cv2.LINE_8, SHIFT)

    def fill_convex(self, polygon: np.ndarray, colour: tuple[int, int, int], label: int | None = None) -> None:
        """Fill a convex polygon ``[n, 2]`` in pixels (faster than :meth:`fill`)."""
        pts = fixed(polygon)
        cv2.fillConvexPoly(self.rgb, pts, colour, cv2.LINE_AA, SHIFT)
        if label is not None:
            cv2.fillConvexPoly(self.labels, pts, label, cv2.LINE_8, SHIFT)

    def line(self, polyline: np.ndarray, colour: tuple[int, int, int], thickness: int, closed: bool = False) -> None:
        """An anti-aliased polyline ``[n, 2]`` of ``thickness`` whole pixels (no label)."""
        cv2.polylines(self.rgb, [fixed(polyline)], closed, colour, thickness, cv2.LINE_AA, SHIFT)

    def circle(self, centre: np.ndarray, radius: float, colour: tuple[int, int, int], label: int | None = None) -> None:
        """A filled anti-aliased disc."""
        c = (int(round(float(centre[0]) * ONE)), int(round(float(centre[1]) * ONE)))
        r = max(1, int(round(radius * ONE)))
        cv2.circle(self.rgb, c, r, colour, -1, cv2.LINE_AA, SHIFT)
        if label is not None:
            cv2.circle(self.labels, c, r, label, -1, cv2.LINE_8, SHIFT)

    def ellipse(self, centre: np.ndarray, axes: tuple[float, float], angle_deg: float,
                colour: tuple[int, int, int], label: int | None = None) -> None:
        """A filled anti-aliased ellipse with semi-axes ``axes`` (pixels) turned by ``angle_deg``."""
        c = (int(round(float(centre[0]) * ONE)), int(round(float(centre[1]) * ONE)))
        ax = (max(1, int(round(axes[0] * ONE))), max(1, int(round(axes[1] * ONE))))
        cv2.ellipse(self.rgb, c, ax, angle_deg, 0, 360, colour, -1, cv2.LINE_AA, SHIFT)
        if label is not None:
            cv2.ellipse(self.labels, c, ax, angle_deg, 0, 360, label, -1, cv2.LINE_8, SHIFT)

    def capsules(self, polygons: np.ndarray, colour: tuple[int, int, int], label: int | None = None) -> None:
        """Fill convex polygons ``[k, m, 2]`` (from :func:`capsule_polygons`) one after another."""
        for pts in fixed(polygons):
            cv2.fillConvexPoly(self.rgb, pts, colour, cv2.LINE_AA, SHIFT)
            if label is not None:
                cv2.fillConvexPoly(self.labels, pts, label, cv2.LINE_8, SHIFT)

    def outlines(self, polygons: np.ndarray, colour: tuple[int, int, int], thickness: int = 1) -> None:
        """Closed anti-aliased outlines of polygons ``[k, m, 2]`` in one call."""
        cv2.polylines(self.rgb, list(fixed(polygons)), True, colour, thickness, cv2.LINE_AA, SHIFT)

    def shade(self, light_angle: float, strength: float) -> None:
        """Soft shading: every part darkens towards its edges, more on the side away from the light.

        Args:
            light_angle: direction the light comes from (radians, image coordinates; −π/2 is straight above).
            strength: 0 (flat) .. 1 (strong).
        """
        h, w = self.height, self.width
        small = (max(1, w // _SHADE_DOWN), max(1, h // _SHADE_DOWN))
        onehot = _GROUP_TABLE[self.labels].view(np.uint8).reshape(h, w, 4)
        low = cv2.resize(onehot, small, interpolation=cv2.INTER_AREA)
        size = min(small)
        offset = 0.025 * size
        shift = np.float32([[1, 0, math.cos(light_angle) * offset], [0, 1, math.sin(light_angle) * offset]])
        channels = []
        for plane, (_, sigma) in zip(cv2.split(low), _SHADE_GROUPS, strict=True):
            blurred = cv2.GaussianBlur(plane, (0, 0), max(0.5, sigma * size))
            channels.append(cv2.warpAffine(blurred, shift, small, borderMode=cv2.BORDER_REPLICATE))
        up = cv2.resize(cv2.merge(channels), (w, h), interpolation=cv2.INTER_LINEAR)
        c = cv2.split(cv2.multiply(onehot, up, scale=1 / 255.0))
        own = cv2.max(cv2.max(c[0], c[1]), cv2.max(c[2], c[3]))  # the pixel's own group, blurred and shifted
        cover = cv2.compare(self.labels, BACKGROUND, cv2.CMP_NE)  # 255 on every part, 0 on the background
        # factor/BASE = 1 + lift·[part] − k·(1 − own): parts darken towards the edges away from the light
        k, lift = 0.42 * strength, 0.05 * strength
        factor = cv2.addWeighted(own, k * _BASE / 255.0, cover, (lift - k) * _BASE / 255.0, float(_BASE))
        # the label map is aliased: soften the factor across silhouettes so anti-aliased edges stay smooth
        edge = 2 * max(1, int(round(self.unit))) + 1
        factor = cv2.blur(factor, (edge, edge))
        self.rgb = cv2.multiply(self.rgb, cv2.merge([factor] * 3), scale=1.0 / _BASE)

    def masks(self, dilate_px: float) -> np.ndarray:
        """Region bit-field masks ``uint8 [H, W]``; the mouth and hands grow by ``dilate_px`` pixels."""
        masks = cv2.LUT(self.labels, _MASK_LUT)
        r = max(1, int(round(dilate_px)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        for label, region in ((MOUTH, "mouth"), (LEFT_HAND, "left_hand"), (RIGHT_HAND, "right_hand")):
            grown = cv2.dilate(cv2.compare(self.labels, label, cv2.CMP_EQ), kernel)
            cv2.bitwise_or(masks, REGION_BITS[region], dst=masks, mask=grown)
        return masks
