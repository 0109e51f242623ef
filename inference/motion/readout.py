"""Reading face state back out of DWPose-134 keypoints.

Renderers that deform a portrait, the benchmark and the tests all need the
same few measurements of a keypoint frame, in face widths (the distance between
iBUG jaw points 0 and 16) so they do not depend on framing or image size:
:func:`mouth_opening`, :func:`mouth_width`, :func:`eye_opening` and
:func:`brow_height`. Each takes one frame ``[134, 3]`` or a sequence
``[T, 134, 3]`` and returns a float or a ``[T]`` array.
"""

from __future__ import annotations

import numpy as np

from inference import keypoints as kp

_F = kp.FACE.start


def _face(keypoints: np.ndarray) -> np.ndarray:
    return np.asarray(keypoints)[..., kp.FACE, :2]


def face_width(keypoints: np.ndarray) -> np.ndarray | float:
    """Distance between jaw points 0 and 16 (normalised frame units)."""
    f = _face(keypoints)
    return np.maximum(np.linalg.norm(f[..., 16, :] - f[..., 0, :], axis=-1), 1e-6)


def mouth_opening(keypoints: np.ndarray) -> np.ndarray | float:
    """Gap between the inner lips (mean of the three upper/lower pairs), in face widths; about 0 when closed."""
    f = _face(keypoints)
    gap = (np.linalg.norm(f[..., 67, :] - f[..., 61, :], axis=-1) + np.linalg.norm(f[..., 66, :] - f[..., 62, :], axis=-1)
           + np.linalg.norm(f[..., 65, :] - f[..., 63, :], axis=-1)) / 3
    return gap / face_width(keypoints)


def mouth_width(keypoints: np.ndarray) -> np.ndarray | float:
    """Distance between the mouth corners (48, 54), in face widths."""
    f = _face(keypoints)
    return np.linalg.norm(f[..., 54, :] - f[..., 48, :], axis=-1) / face_width(keypoints)


def eye_opening(keypoints: np.ndarray) -> np.ndarray | float:
    """Mean lid gap of both eyes, in face widths; about 0 when shut."""
    f = _face(keypoints)
    gaps = [np.linalg.norm(f[..., b, :] - f[..., a, :], axis=-1) for a, b in ((37, 41), (38, 40), (43, 47), (44, 46))]
    return sum(gaps) / 4 / face_width(keypoints)


def brow_height(keypoints: np.ndarray) -> np.ndarray | float:
    """Mean height of the brows (17-26) above the eye corners, in face widths."""
    f = _face(keypoints)
    brows = f[..., 17:27, 1].mean(axis=-1)
    eyes = f[..., [36, 39, 42, 45], 1].mean(axis=-1)
    return (eyes - brows) / face_width(keypoints)
