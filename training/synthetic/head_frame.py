"""The head's own coordinate frame, recovered from the 68 face points of one frame.

Hair, skull, ears and glasses are not keypoints, so they are placed in head
coordinates ``(u, v)``: the origin halfway between jaw points 0 and 16 (the
temples), ``u`` towards jaw point 16 in half face widths, ``v`` downwards in
units tied to the eyes-to-nose height (so a nod shortens them like the face).
Each shape point also has a depth weight: front points follow the nose when the
head turns, back points move the other way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Eyes-to-nostrils height of a neutral face in half face widths (calibrates ``v``).
_EYES_TO_NOSE = 0.8


@dataclass(frozen=True)
class HeadFrame:
    """Head coordinates of one frame (all lengths in pixels).

    Attributes:
        origin: midpoint of jaw points 0 and 16.
        right, down: unit axes of the face (right points to jaw point 16).
        sx, sy: pixels per ``u`` and per ``v`` unit.
        turn: how far the face is turned, ≈ sin(yaw); + when the nose points towards jaw point 16.
    """

    origin: np.ndarray
    right: np.ndarray
    down: np.ndarray
    sx: float
    sy: float
    turn: float

    def to_px(self, uv: np.ndarray, depth: np.ndarray | float = 0.0) -> np.ndarray:
        """Head coordinates ``[n, 2]`` (with per-point depth weights) → pixels ``[n, 2]``."""
        uv = np.asarray(uv, dtype=np.float64)
        u = uv[..., 0] + np.asarray(depth) * self.turn
        return self.origin + (u * self.sx)[..., None] * self.right + (uv[..., 1] * self.sy)[..., None] * self.down

    def to_uv(self, px: np.ndarray) -> np.ndarray:
        """Pixels ``[n, 2]`` → head coordinates (without depth correction)."""
        rel = np.asarray(px, dtype=np.float64) - self.origin
        return np.stack([rel @ self.right / self.sx, rel @ self.down / self.sy], axis=-1)


def head_frame(face: np.ndarray) -> HeadFrame:
    """The head frame of 68 face points ``[68, 2]`` in pixels."""
    face = np.asarray(face, dtype=np.float64)
    span = face[16] - face[0]
    width = max(float(np.hypot(*span)), 1e-3)
    right = span / width
    down = np.array([-right[1], right[0]])
    origin = (face[0] + face[16]) * 0.5
    sx = width * 0.5
    eyes = face[36:48].mean(axis=0)
    nose_height = float((face[33] - eyes) @ down)
    sy = max(nose_height / _EYES_TO_NOSE, 0.35 * sx)
    turn = float(np.clip(((face[30] - origin) @ right) / sx / 1.2, -0.9, 0.9))
    return HeadFrame(origin=origin, right=right, down=down, sx=sx, sy=sy, turn=turn)
