"""The DWPose-134 keypoint layout: the contract between motion and renderers.

One frame is a float32 array ``[134, 3]``: x and y normalised to the frame
(0..1, x to the right, y down) and a confidence in 0..1. "Left" and "right" are
the subject's own: the subject's left hand appears on the image's right side.

Indices (see ``shared/DESIGN.md``):

* 0-17 body, OpenPose-18 order: 0 nose, 1 neck, 2-4 right shoulder/elbow/wrist,
  5-7 left shoulder/elbow/wrist, 8-10 right hip/knee/ankle, 11-13 left
  hip/knee/ankle, 14/15 right/left eye, 16/17 right/left ear.
* 18-23 feet, 24-91 face (iBUG-68), 92-112 left hand, 113-133 right hand.

Only the upper body is driven: knees, ankles and feet carry confidence 0.
"""

from __future__ import annotations

import numpy as np

from inference.errors import ConfigError

NUM_KEYPOINTS = 134

BODY = slice(0, 18)
FEET = slice(18, 24)
FACE = slice(24, 92)
LEFT_HAND = slice(92, 113)
RIGHT_HAND = slice(113, 134)

NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST = 2, 3, 4
L_SHOULDER, L_ELBOW, L_WRIST = 5, 6, 7
R_HIP, R_KNEE, R_ANKLE = 8, 9, 10
L_HIP, L_KNEE, L_ANKLE = 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17

#: Body points that are never driven (legs and feet).
UNDRIVEN = np.array([R_KNEE, R_ANKLE, L_KNEE, L_ANKLE, *range(18, 24)], dtype=np.int64)

#: Upper-body points used for pose similarity (the paper's "B upper-body keypoints").
UPPER_BODY = np.array(
    [NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST, R_EYE, L_EYE, R_EAR, L_EAR],
    dtype=np.int64,
)


def face_index(i: int) -> int:
    """Global index of iBUG-68 face point ``i`` (0-based)."""
    if not 0 <= i < 68:
        raise ValueError(f"face point index must be in 0..67, got {i}")
    return FACE.start + i


# iBUG-68 face regions, as 0-based indices into the 68 face points.
FACE_JAW = tuple(range(0, 17))
FACE_RIGHT_BROW = tuple(range(17, 22))
FACE_LEFT_BROW = tuple(range(22, 27))
FACE_NOSE = tuple(range(27, 36))
FACE_RIGHT_EYE = tuple(range(36, 42))
FACE_LEFT_EYE = tuple(range(42, 48))
FACE_OUTER_LIPS = tuple(range(48, 60))
FACE_INNER_LIPS = tuple(range(60, 68))

#: OpenPose-18 limbs as (a, b) index pairs, in the drawing order of the DWPose style.
BODY_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

#: The 20 bones of a 21-point hand (wrist 0; thumb 1-4, index 5-8, middle 9-12, ring 13-16, little 17-20).
HAND_BONES: tuple[tuple[int, int], ...] = tuple(
    (0 if j == 0 else base + j - 1, base + j) for base in (1, 5, 9, 13, 17) for j in range(4)
)


def seen_in_frame(keypoints: np.ndarray, min_confidence: float = 0.3) -> np.ndarray:
    """Which points of ``keypoints`` ``[N, 3]`` (normalised x, y, confidence) are confident (above
    ``min_confidence``) and inside the frame: bool ``[N]``."""
    xy = keypoints[:, :2]
    return (keypoints[:, 2] > min_confidence) & (xy >= 0).all(axis=1) & (xy <= 1).all(axis=1)


def validate_keypoints(keypoints: np.ndarray, *, name: str = "keypoints") -> np.ndarray:
    """Check one keypoint frame and return it as a C-contiguous float32 ``[134, 3]`` array.

    Raises:
        ConfigError: wrong shape, non-finite values, or confidences outside 0..1.
    """
    arr = np.asarray(keypoints)
    if arr.shape != (NUM_KEYPOINTS, 3):
        raise ConfigError(f"{name} must have shape (134, 3) (DWPose-134: x, y, confidence), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ConfigError(f"{name} must be floating point, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name} contains NaN or infinite values")
    conf = arr[:, 2]
    if conf.min() < 0.0 or conf.max() > 1.0:
        raise ConfigError(f"{name} confidences must lie in 0..1, got {conf.min():.3g}..{conf.max():.3g}")
    return arr


def validate_sequence(keypoints: np.ndarray, *, name: str = "keypoint sequence") -> np.ndarray:
    """Check a ``[T, 134, 3]`` sequence; returns it as contiguous float32."""
    arr = np.asarray(keypoints)
    if arr.ndim != 3 or arr.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ConfigError(f"{name} must have shape (T, 134, 3), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ConfigError(f"{name} must be floating point, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name} contains NaN or infinite values")
    conf = arr[..., 2]
    if arr.shape[0] and (conf.min() < 0.0 or conf.max() > 1.0):
        raise ConfigError(f"{name} confidences must lie in 0..1")
    return arr
