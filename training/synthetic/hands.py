"""Hands with five articulated fingers that follow the 21 hand points.

The palm is the rounded hull of the wrist and the finger bases; each finger is
a chain of tapered capsules through its four points, outlined in a darker skin
tone so fingers read as separate even when they overlap the palm or each other.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.synthetic.identity import Identity
from training.synthetic.paint import Canvas, capsule_polygons, mix_colour, shade_colour

#: Finger chains (base → tip) in drawing order: little finger first, thumb last.
_FINGERS = np.array([(17, 18, 19, 20), (13, 14, 15, 16), (9, 10, 11, 12), (5, 6, 7, 8), (1, 2, 3, 4)])
#: Parent of each hand point (the wrist is its own parent).
HAND_PARENTS = np.array([0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19])
#: Finger half-widths relative to the wrist's half-width (little .. index, thumb), at the base.
_FINGER_WIDTH = np.array([0.3, 0.34, 0.36, 0.35, 0.42])
#: How each finger narrows from its base joint to its tip.
_TAPER = np.array([1.0, 0.92, 0.84, 0.76])


def hand_length(points: np.ndarray) -> float:
    """A hand's wrist-to-knuckles length in pixels, robust to foreshortening: ``points`` ``[21, 2]``.

    The largest of the wrist → middle knuckle distance and each finger's length
    (fingers are about as long as the palm), so a hand seen edge-on or pointing
    at the camera keeps its size.
    """
    bones = np.hypot(*(points[1:] - points[HAND_PARENTS[1:]]).T)
    finger_lengths = bones.reshape(5, 4)[1:, 1:].sum(axis=1)  # index..little, knuckle to tip
    return float(max(np.hypot(*(points[9] - points[0])), finger_lengths.max() * 0.95, 1.0))


def draw_hand(canvas: Canvas, identity: Identity, points: np.ndarray, label: int) -> None:
    """Draw one hand.

    Args:
        points: the hand's 21 points ``[21, 2]`` in pixels (wrist 0; thumb 1-4; index 5-8; middle 9-12;
            ring 13-16; little 17-20).
        label: the label its pixels get (left or right hand).
    """
    skin = identity.skin
    edge = shade_colour(skin, 0.58)
    palm_colour = mix_colour(skin, (236, 150, 140), 0.08)
    wrist = points[0]
    axis = points[9] - wrist
    length = float(np.hypot(*axis))
    across = np.array([-axis[1], axis[0]]) / max(length, 1e-6)
    r = hand_length(points) * 0.22
    palm = np.concatenate([
        [wrist + across * r * 0.9, wrist - across * r * 0.9],
        points[[1, 5, 9, 13, 17]],
        points[[2, 5, 17]] * 0.85 + points[[1, 9, 13]] * 0.15,
    ])
    hull = cv2.convexHull(palm.astype(np.float32))[:, 0, :].astype(np.float64)
    canvas.fill_convex(hull, palm_colour, label)
    outline = canvas.px(0.8)
    canvas.line(hull, edge, outline, closed=True)
    radii = (_FINGER_WIDTH * r * 1.35)[:, None] * _TAPER  # [5, 4]
    joints = points[_FINGERS]  # [5, 4, 2]
    polys = capsule_polygons(joints[:, :3].reshape(15, 2), joints[:, 1:].reshape(15, 2),
                             radii[:, :3].ravel(), radii[:, 1:].ravel()).reshape(5, 3, -1, 2)
    nail = mix_colour(skin, (255, 235, 230), 0.35)
    for finger in range(5):
        canvas.outlines(polys[finger], edge, outline)
        canvas.capsules(polys[finger], skin, label)
        tip, before = joints[finger, 3], joints[finger, 2]
        direction = tip - before
        n = float(np.hypot(*direction))
        if n > 1.5:
            canvas.circle(tip - direction / n * radii[finger, 3] * 0.7, radii[finger, 3] * 0.5, nail)
