"""Confidences for the dataset filter, on top of the shared MediaPipe → DWPose-134 mapping.

The mapping itself (vertex tables, body and hand assembly, hand-to-side
assignment) is :func:`inference.motion.landmark_mapping.dwpose_from_mediapipe`,
shared with the webcam-pose source. It gives face and hand points a fixed
confidence, which cannot drive the paper's filter (face > 0.9), so a dataset
frame's confidences are refined here from what MediaPipe does measure:

* face point: MediaPipe Pose's visibility of the matching part of the face (the
  right half follows the better of the right eye and right ear, the left half the
  left ones, the middle the nose and mouth corners); 0 when no face mesh was found;
* hand point: the hand detector's score (MediaPipe Hands' handedness probability)
  where it is known;
* face points covered by a visible hand get at most 0.2 (:func:`occlude_face_by_hands`),
  as DWPose lowers occluded points.

Everything is numpy only.
"""

from __future__ import annotations

import numpy as np

from inference import keypoints as kp
from inference.motion.landmark_mapping import to_square

# MediaPipe Pose landmarks that tell how well each part of the face is seen
_POSE_NOSE, _POSE_MOUTH = 0, (9, 10)
_POSE_RIGHT_FACE, _POSE_LEFT_FACE = (5, 8), (2, 7)  # (eye, ear)
#: Which side of the face each iBUG point lies on: -1 the subject's right (image left), 0 middle, +1 left.
FACE_SIDE = np.zeros(68, dtype=np.int64)
FACE_SIDE[[*range(0, 8), *range(17, 22), *range(36, 42)]] = -1
FACE_SIDE[[*range(9, 17), *range(22, 27), *range(42, 48)]] = 1


def face_confidence(pose: np.ndarray) -> np.ndarray:
    """Per iBUG-68 point, the Pose visibility of its part of the face: float32 ``[68]``."""
    vis = np.clip(np.asarray(pose, dtype=np.float64)[:, 3], 0.0, 1.0)
    by_side = {-1: vis[list(_POSE_RIGHT_FACE)].max(), 0: np.mean([vis[_POSE_NOSE], *vis[list(_POSE_MOUTH)]]),
               1: vis[list(_POSE_LEFT_FACE)].max()}
    return np.array([by_side[int(s)] for s in FACE_SIDE], dtype=np.float32)


def hand_scores(keypoints: np.ndarray, hands: list[np.ndarray], scores: list[float], width: int,
                height: int) -> dict[str, float]:
    """Which detector score belongs to the hand the mapping put on each side: {"left_hand"/"right_hand": score}.

    Args:
        keypoints: the mapped frame ``[134, 3]`` (square-normalised, as the mapping returns it).
        hands, scores: the hands given to the mapping (image-normalised ``[21, >=2]``) and their scores.
    """
    out = {}
    for name, block in (("left_hand", kp.LEFT_HAND), ("right_hand", kp.RIGHT_HAND)):
        if keypoints[block.start, 2] <= 0:
            continue
        for hand, score in zip(hands, scores, strict=True):
            if np.allclose(to_square(np.asarray(hand)[:1, :2], width, height), keypoints[block.start, :2], atol=1e-5):
                out[name] = float(score)
    return out


def refine_confidences(keypoints: np.ndarray, pose: np.ndarray | None, scores: dict[str, float]) -> np.ndarray:
    """A copy of a mapped frame ``[134, 3]`` with the dataset's face and hand confidences (see the module doc)."""
    out = np.array(keypoints, dtype=np.float32, copy=True)
    face_found = out[kp.FACE, 2].max() > 0
    if pose is None:
        out[:, 2] = 0.0  # without a person there is no confidence for anything
        return out
    if face_found:
        inside = out[kp.FACE, 2] > 0  # the mapping zeroes points outside the picture
        out[kp.FACE, 2] = np.where(inside, face_confidence(pose), 0.0)
    for name, block in (("left_hand", kp.LEFT_HAND), ("right_hand", kp.RIGHT_HAND)):
        if name in scores:
            seen = out[block, 2] > 0
            out[block, 2] = np.where(seen, np.clip(scores[name], 0.0, 1.0), 0.0)
    return occlude_face_by_hands(out)


def occlude_face_by_hands(keypoints: np.ndarray, occluded: float = 0.2, min_confidence: float = 0.3) -> np.ndarray:
    """Face points covered by a visible hand get at most ``occluded`` confidence (a copy of ``[134, 3]``).

    A hand covers the convex hull of its points, grown by a fifth about its centre.
    """
    out = np.array(keypoints, dtype=np.float32, copy=True)
    face_xy = out[kp.FACE, :2].astype(np.float64)
    for block in (kp.LEFT_HAND, kp.RIGHT_HAND):
        hand = out[block]
        seen = hand[:, 2] > min_confidence
        if seen.sum() < 3:
            continue
        pts = hand[seen, :2].astype(np.float64)
        centre = pts.mean(axis=0)
        inside = _inside_hull(face_xy, centre + (pts - centre) * 1.2)
        out[kp.FACE.start + np.flatnonzero(inside), 2] = np.minimum(out[kp.FACE, 2][inside], occluded)
    return out


def _turn(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Positive when o → a → b turns counter-clockwise (in x-right, y-up terms)."""
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _inside_hull(points: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    """Which of ``points`` ``[n, 2]`` lie inside the convex hull of ``cloud`` ``[m, 2]``."""
    pts = cloud[np.lexsort((cloud[:, 1], cloud[:, 0]))]

    def chain(seq: np.ndarray) -> list[np.ndarray]:
        kept: list[np.ndarray] = []
        for p in seq:
            while len(kept) >= 2 and _turn(kept[-2], kept[-1], p) <= 0:
                kept.pop()
            kept.append(p)
        return kept

    hull = np.array(chain(pts)[:-1] + chain(pts[::-1])[:-1])
    if len(hull) < 3:
        return np.zeros(len(points), dtype=bool)
    edges = np.roll(hull, -1, axis=0) - hull
    rel = points[:, None, :] - hull[None, :, :]
    cross = edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0]
    return (cross >= 0).all(axis=1)
