"""Hand shapes: a small 3-D hand skeleton and a vocabulary of finger poses.

A :class:`HandShape` says how bent each finger is, how far the fingers fan out
and where the thumb points. :func:`hand_points` turns it into the 21 points of
the DWPose / MediaPipe hand (0 wrist; thumb 1-4, index 5-8, middle 9-12, ring
13-16, little 17-20) in the hand's own frame, in face widths:

* ``u``: across the palm, towards the thumb side,
* ``v``: from the wrist along the fingers,
* ``w``: the palm normal (the side the palm faces; fingers bend towards +w).

The rig orients this frame at the wrist (see :mod:`inference.motion.rig`), so
the same shapes serve both hands. :data:`HAND_SHAPES` is the vocabulary the
gesture planner draws from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Finger bases (MCP joints) in the hand frame (u, v, w), index to little.
_FINGER_BASES = np.array([(0.19, 0.66, 0.0), (0.06, 0.69, 0.0), (-0.07, 0.66, 0.0), (-0.18, 0.59, 0.0)])
#: Phalanx lengths (proximal, middle, distal), index to little, face widths (a hand is ≈ 1.35 face widths long).
_FINGER_SEGMENTS = np.array([(0.29, 0.18, 0.15), (0.32, 0.20, 0.16), (0.30, 0.19, 0.15), (0.23, 0.14, 0.13)])
#: Fan angle of each finger per unit of spread (radians, + towards the thumb).
_FAN = np.array([0.13, 0.03, -0.07, -0.17])
#: Flexion of the MCP, PIP and DIP joints at full curl (radians).
_FLEX = np.array([1.45, 1.75, 1.15])
_THUMB_BASE = np.array([0.17, 0.14, 0.05])
_THUMB_SEGMENTS = (0.28, 0.21, 0.17)
_THUMB_OUT = np.array([0.50, 0.80, 0.35])  # thumb direction when held out to the side
_THUMB_ACROSS = np.array([-0.55, 0.55, 0.62])  # thumb direction when it opposes the fingers
_THUMB_BEND = np.array([-0.45, 0.2, 0.85])  # the thumb's joints fold towards the palm and the little finger


@dataclass(frozen=True)
class HandShape:
    """Finger pose of one hand.

    Attributes:
        curl: bend of thumb, index, middle, ring and little finger, each 0 (straight) .. 1 (fully bent).
        spread: 0 (fingers together) .. 1 (fanned wide).
        thumb_across: 0 (thumb held out to the side) .. 1 (thumb across the palm, opposing the fingers).
    """

    curl: tuple[float, float, float, float, float] = (0.2, 0.25, 0.32, 0.38, 0.45)
    spread: float = 0.15
    thumb_across: float = 0.35

    def blend(self, other: HandShape, t: float) -> HandShape:
        """``self`` moved a fraction ``t`` (0..1) of the way to ``other``."""
        t = min(1.0, max(0.0, float(t)))
        curl = tuple(a + (b - a) * t for a, b in zip(self.curl, other.curl, strict=True))
        return HandShape(curl=curl, spread=self.spread + (other.spread - self.spread) * t,  # type: ignore[arg-type]
                         thumb_across=self.thumb_across + (other.thumb_across - self.thumb_across) * t)


#: The vocabulary of finger poses the gesture planner uses (and tests check for variety).
HAND_SHAPES: dict[str, HandShape] = {
    "relaxed": HandShape((0.2, 0.25, 0.32, 0.38, 0.45), 0.15, 0.35),
    "rest": HandShape((0.3, 0.45, 0.55, 0.6, 0.66), 0.05, 0.45),
    "open": HandShape((0.0, 0.04, 0.05, 0.06, 0.08), 0.4, 0.1),
    "spread": HandShape((0.0, 0.0, 0.0, 0.02, 0.04), 1.0, 0.0),
    "flat": HandShape((0.05, 0.02, 0.02, 0.03, 0.04), 0.0, 0.25),
    "point": HandShape((0.45, 0.0, 0.9, 0.95, 0.95), 0.1, 0.8),
    "pinch": HandShape((0.35, 0.5, 0.3, 0.35, 0.42), 0.35, 0.75),
    "cup": HandShape((0.25, 0.38, 0.4, 0.42, 0.45), 0.1, 0.45),
    "loose-fist": HandShape((0.45, 0.72, 0.78, 0.8, 0.82), 0.0, 0.65),
    "fist": HandShape((0.6, 0.95, 0.97, 0.97, 0.97), 0.0, 0.85),
    "two": HandShape((0.5, 0.0, 0.02, 0.92, 0.95), 0.5, 0.8),
}


_FINGER_LENGTHS = _FINGER_SEGMENTS[:, :, None]
_BASE_CUP = np.array([1.0, 0.5, 0.5, 1.0])  # the index and little finger bases fold in most as the palm cups


def hand_points(shape: HandShape) -> np.ndarray:
    """The 21 hand points for ``shape`` in the hand frame (u, v, w); float64 ``[21, 3]``, face widths."""
    pts = np.empty((21, 3))
    curl = np.clip(np.asarray(shape.curl[1:], dtype=np.float64), 0.0, 1.0)
    fan = _FAN * (0.35 + shape.spread)
    # fingers: each bends in the plane of its direction (in the palm) and the palm normal w
    directions = np.stack([np.sin(fan), np.cos(fan), np.zeros(4)], axis=1)  # [4, 3]
    angles = np.cumsum(curl[:, None] * _FLEX[None, :], axis=1)  # [4, 3] joint angle after each joint
    steps = (np.cos(angles)[:, :, None] * directions[:, None, :]
             + np.sin(angles)[:, :, None] * np.array([0.0, 0.0, 1.0])) * _FINGER_LENGTHS
    bases = _FINGER_BASES.copy()
    bases[:, 2] += 0.06 * curl * _BASE_CUP
    chains = bases[:, None, :] + np.cumsum(steps, axis=1)  # [4, 3, 3]
    fingers = pts[5:].reshape(4, 4, 3)
    fingers[:, 0] = bases
    fingers[:, 1:] = chains
    # thumb: rotates from out to the side towards the palm, its joints fold towards the little finger
    across = min(1.0, max(0.0, shape.thumb_across))
    d = _THUMB_OUT + (_THUMB_ACROSS - _THUMB_OUT) * across
    d = d / math.sqrt(float(d @ d))
    bend = min(1.0, max(0.0, shape.curl[0])) * 0.9
    p = _THUMB_BASE
    pts[0] = 0.0
    pts[1] = p
    for j, seg in enumerate(_THUMB_SEGMENTS):
        if j:
            d = d + bend * _THUMB_BEND
            d = d / math.sqrt(float(d @ d))
        p = p + d * seg
        pts[2 + j] = p
    return pts
