"""MediaPipe landmarks (face mesh, pose, hands) to the DWPose-134 layout.

Pure numpy, no MediaPipe import: :mod:`inference.sources.webcam_pose` runs the
detectors and hands their landmarks here.

* Face: 68 of the 468/478 face-mesh vertices chosen to sit where the iBUG-68
  annotation puts its points (jaw line, brows, nose, eyes, lips).
* Body: OpenPose-18 from MediaPipe Pose's 33 landmarks (the neck is the
  midpoint of the shoulders; confidence is the landmark's visibility).
* Hands: MediaPipe's 21 hand landmarks are in the DWPose order already; each
  detected hand is assigned to the pose wrist it is closest to.

Coordinates come in normalised to the camera image and go out normalised to the
square that holds the whole image, centred (the renderers draw square frames;
a wide webcam image is letterboxed, so nobody is cut off).
"""

from __future__ import annotations

import numpy as np

from inference import keypoints as kp

#: Face-mesh vertex for each iBUG-68 point (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 lips).
FACE_MESH_TO_IBUG68: tuple[int, ...] = (
    234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,  # jaw
    70, 63, 105, 66, 107,  # right brow, outer to inner
    336, 296, 334, 293, 300,  # left brow, inner to outer
    168, 197, 5, 1,  # nose bridge to tip
    98, 97, 2, 326, 327,  # nostrils
    33, 160, 158, 133, 153, 144,  # right eye
    362, 385, 387, 263, 373, 380,  # left eye
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
)
#: OpenPose-18 index → MediaPipe Pose landmark (the neck, 1, is computed).
POSE_TO_OPENPOSE: dict[int, int] = {
    kp.NOSE: 0, kp.R_SHOULDER: 12, kp.R_ELBOW: 14, kp.R_WRIST: 16, kp.L_SHOULDER: 11, kp.L_ELBOW: 13,
    kp.L_WRIST: 15, kp.R_HIP: 24, kp.L_HIP: 23, kp.R_EYE: 5, kp.L_EYE: 2, kp.R_EAR: 8, kp.L_EAR: 7,
}
_MP_RIGHT_WRIST, _MP_LEFT_WRIST = 16, 15
FACE_CONFIDENCE = 0.9
HAND_CONFIDENCE = 0.9


def to_square(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised image coordinates ``[..., 2]`` → coordinates normalised to the centred square of side
    ``max(width, height)`` that holds the image."""
    side = float(max(width, height))
    out = np.empty(np.shape(xy), dtype=np.float32)
    out[..., 0] = (xy[..., 0] * width + (side - width) / 2) / side
    out[..., 1] = (xy[..., 1] * height + (side - height) / 2) / side
    return out


def dwpose_from_mediapipe(
    width: int,
    height: int,
    face: np.ndarray | None = None,
    pose: np.ndarray | None = None,
    hands: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Assemble one DWPose-134 frame from MediaPipe results.

    Args:
        width, height: camera image size in pixels.
        face: face-mesh landmarks ``[468 or 478, >=2]`` (x, y normalised to the image), or None.
        pose: pose landmarks ``[33, 4]`` (x, y, z, visibility), or None.
        hands: detected hands, each ``[21, >=2]`` (x, y normalised).

    Returns:
        float32 ``[134, 3]`` (x, y normalised to the square holding the image; confidence). Undetected parts
        have confidence 0.
    """
    out = np.zeros((kp.NUM_KEYPOINTS, 3), dtype=np.float32)
    if face is not None:
        out[kp.FACE, :2] = to_square(np.asarray(face)[list(FACE_MESH_TO_IBUG68), :2], width, height)
        out[kp.FACE, 2] = FACE_CONFIDENCE
    wrists: dict[int, np.ndarray] = {}
    if pose is not None:
        pose = np.asarray(pose, dtype=np.float64)
        xy = to_square(pose[:, :2], width, height)
        vis = np.clip(pose[:, 3], 0.0, 1.0)
        for op, mp_i in POSE_TO_OPENPOSE.items():
            out[op] = (*xy[mp_i], vis[mp_i])
        out[kp.NECK, :2] = (xy[11] + xy[12]) / 2
        out[kp.NECK, 2] = min(vis[11], vis[12])
        wrists = {0: xy[_MP_RIGHT_WRIST], 1: xy[_MP_LEFT_WRIST]}
        if face is not None:  # the face mesh places the nose and eyes more precisely than the pose model
            out[kp.NOSE, :2] = out[kp.face_index(30), :2]
            out[kp.R_EYE, :2] = out[kp.FACE.start + 36 : kp.FACE.start + 42, :2].mean(axis=0)
            out[kp.L_EYE, :2] = out[kp.FACE.start + 42 : kp.FACE.start + 48, :2].mean(axis=0)
    for side, hand in _assign_hands([np.asarray(h)[:, :2] for h in hands or []], wrists, width, height):
        block = kp.RIGHT_HAND if side == 0 else kp.LEFT_HAND
        out[block, :2] = hand
        out[block, 2] = HAND_CONFIDENCE
    out[kp.UNDRIVEN] = 0.0
    inside = (out[:, 0] >= 0) & (out[:, 0] <= 1) & (out[:, 1] >= 0) & (out[:, 1] <= 1)
    out[~inside, 2] = 0.0
    np.clip(out[:, :2], -1.0, 2.0, out=out[:, :2])
    return out


def _assign_hands(hands: list[np.ndarray], wrists: dict[int, np.ndarray], width: int,
                  height: int) -> list[tuple[int, np.ndarray]]:
    """Pair each hand with the pose wrist nearest its own wrist point (0 right, 1 left)."""
    placed = [to_square(h, width, height) for h in hands[:2]]
    if not placed:
        return []
    if not wrists:
        # without a body, the hand on the image's left is the subject's right
        order = sorted(range(len(placed)), key=lambda i: float(placed[i][0, 0]))
        return [(side, placed[i]) for side, i in enumerate(order)]
    cost = [[float(np.linalg.norm(c[0] - wrists[s])) for s in (0, 1)] for c in placed]
    if len(placed) == 1:
        return [(int(np.argmin(cost[0])), placed[0])]
    if cost[0][0] + cost[1][1] <= cost[0][1] + cost[1][0]:
        return [(0, placed[0]), (1, placed[1])]
    return [(1, placed[0]), (0, placed[1])]
