"""Region masks of a real frame, from its keypoints and a person mask.

Real video has no drawing to read regions from, so they are rasterised from the
DWPose-134 keypoints (points with confidence above ``min_confidence``):

* face: the hull of the face points, extended over the forehead, inside the person;
* mouth: the hull of the lip points, grown by a margin;
* left/right hand: the hull of each hand's points, grown by a margin;
* arms: tapered capsules shoulder → elbow → wrist, inside the person;
* torso: the rest of the person;
* background: outside the person (everything not covered by a region when no person mask is given).

The result uses the same bit fields as synthetic frames (:mod:`training.synthetic.regions`).
"""

from __future__ import annotations

import cv2
import numpy as np

from inference import keypoints as kp
from training.synthetic.curves import SHIFT, fixed
from training.synthetic.regions import REGION_BITS

_ARMS = ((kp.R_SHOULDER, kp.R_ELBOW, kp.R_WRIST), (kp.L_SHOULDER, kp.L_ELBOW, kp.L_WRIST))


def _hull_mask(points: np.ndarray, size: int, grow: float) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    if len(points) >= 3:
        hull = cv2.convexHull(points.astype(np.float32))[:, 0, :]
        cv2.fillConvexPoly(mask, fixed(hull), 255, cv2.LINE_8, SHIFT)
    if grow >= 1:
        r = int(round(grow))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return mask


def region_masks_from_keypoints(keypoints: np.ndarray, size: int, person: np.ndarray | None = None,
                                min_confidence: float = 0.3) -> np.ndarray:
    """Region bit-field masks ``uint8 [size, size]`` for one square frame.

    Args:
        keypoints: ``[134, 3]``, x and y normalised to the frame.
        size: frame side in pixels.
        person: optional boolean ``[size, size]`` person mask (a segmentation); without it the torso is the
            region below the shoulders between the arms' reach.
        min_confidence: points at or below this confidence are ignored.
    """
    xy = np.asarray(keypoints, dtype=np.float64)[:, :2] * size
    ok = np.asarray(keypoints)[:, 2] > min_confidence
    margin = size / 128.0
    face_idx = np.arange(kp.FACE.start, kp.FACE.stop)
    face_ok = face_idx[ok[face_idx]]
    face = np.zeros((size, size), np.uint8)
    if len(face_ok) >= 3:
        pts = xy[face_ok]
        brows = np.arange(kp.FACE.start + 17, kp.FACE.start + 27)
        brows = brows[ok[brows]]
        chin = xy[kp.face_index(8)] if ok[kp.face_index(8)] else pts.mean(axis=0)
        if len(brows):
            # the forehead: brows moved up by 60% of the brows-to-chin distance
            forehead = xy[brows] + (xy[brows].mean(axis=0) - chin) * 0.6
            pts = np.concatenate([pts, forehead])
        face = _hull_mask(pts, size, margin)
    lips = np.arange(kp.FACE.start + 48, kp.FACE.stop)
    mouth = _hull_mask(xy[lips[ok[lips]]], size, 2 * margin) if ok[lips].sum() >= 3 else np.zeros_like(face)
    hands = {}
    for name, block in (("left_hand", kp.LEFT_HAND), ("right_hand", kp.RIGHT_HAND)):
        idx = np.arange(block.start, block.stop)
        hands[name] = _hull_mask(xy[idx[ok[idx]]], size, 3 * margin) if ok[idx].sum() >= 3 else np.zeros_like(face)
    arms = np.zeros_like(face)
    span = float(np.hypot(*(xy[kp.L_SHOULDER] - xy[kp.R_SHOULDER]))) if ok[[kp.L_SHOULDER, kp.R_SHOULDER]].all() \
        else size * 0.3
    for chain in _ARMS:
        for a, b, width in ((chain[0], chain[1], 0.11), (chain[1], chain[2], 0.08)):
            if ok[a] and ok[b]:
                cv2.line(arms, tuple(fixed(xy[a])), tuple(fixed(xy[b])), 255, max(1, int(round(width * 2 * span))),
                         cv2.LINE_8, SHIFT)
    if person is None:
        body = np.zeros_like(face)
        shoulders = [p for p in (kp.R_SHOULDER, kp.L_SHOULDER, kp.NECK) if ok[p]]
        if len(shoulders) >= 2:
            top = xy[shoulders]
            below = top + np.array([0.0, float(size)])
            body = _hull_mask(np.concatenate([top, below]), size, 0)
        person_u8 = cv2.max(cv2.max(body, face), cv2.max(arms, cv2.max(hands["left_hand"], hands["right_hand"])))
    else:
        person_u8 = np.where(np.asarray(person, dtype=bool), 255, 0).astype(np.uint8)
        face = cv2.bitwise_and(face, person_u8)
        arms = cv2.bitwise_and(arms, person_u8)
    masks = np.zeros((size, size), np.uint8)
    for region, mask in (("face", face), ("mouth", mouth), ("arms", arms), ("left_hand", hands["left_hand"]),
                         ("right_hand", hands["right_hand"])):
        cv2.bitwise_or(masks, REGION_BITS[region], dst=masks, mask=mask)
    claimed = cv2.max(cv2.max(face, arms), cv2.max(hands["left_hand"], hands["right_hand"]))
    torso = cv2.bitwise_and(person_u8, cv2.bitwise_not(claimed))
    cv2.bitwise_or(masks, REGION_BITS["torso"], dst=masks, mask=torso)
    background = cv2.bitwise_not(cv2.max(person_u8, claimed))
    cv2.bitwise_or(masks, REGION_BITS["background"], dst=masks, mask=background)
    return masks
