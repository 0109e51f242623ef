"""The reference portrait warped to a frame's pose: a piecewise-affine baseline that learns nothing.

A Delaunay mesh over the frame's keypoints that the reference also shows (confident and inside the picture in
both), plus fixed points on the frame's border; every frame pixel takes the reference pixel at the same
barycentric place in the reference's mesh. The mapping is interpolated on a coarse grid and resized, which keeps
it near 8 ms a 256×256 frame on one core. Session 10 measured it as close to the truth on the face as the teacher
then was (``training/runs.md``), so every teacher evaluation reports it beside the copied reference.
"""

from __future__ import annotations

import cv2
import numpy as np

from inference.keypoints import NUM_KEYPOINTS, seen_in_frame
from inference.render.photo_rig.mesh import GridInterpolator, triangulate

#: Points per side of the frame's border that stay where they are (the background does not move).
BORDER_POINTS = 9


def _border(size: int) -> np.ndarray:
    steps = np.linspace(0, size - 1, BORDER_POINTS)
    points = [(t, 0.0) for t in steps] + [(t, size - 1.0) for t in steps]
    points += [(0.0, t) for t in steps[1:-1]] + [(size - 1.0, t) for t in steps[1:-1]]
    return np.asarray(points, dtype=np.float32)


def warp_reference(reference: np.ndarray, reference_keypoints: np.ndarray, keypoints: np.ndarray,
                   grid: int = 64) -> np.ndarray:
    """``reference`` (uint8 ``[S, S, 3]``, whose DWPose-134 keypoints are ``reference_keypoints`` ``[134, 3]``,
    normalised x, y and confidence) warped so its keypoints land on ``keypoints`` (a frame's, the same layout).
    ``grid`` points a side carry the mapping before it is resized to the frame. With fewer than three keypoints
    seen in both, the reference comes back unchanged.

    Raises:
        ValueError: the image is not square RGB, or the keypoints are not ``[134, 3]``.
    """
    if reference.ndim != 3 or reference.shape[0] != reference.shape[1] or reference.shape[2] != 3:
        raise ValueError(f"the reference must be a square RGB image [S, S, 3], got {reference.shape}")
    for name, points in (("reference_keypoints", reference_keypoints), ("keypoints", keypoints)):
        if points.shape != (NUM_KEYPOINTS, 3):
            raise ValueError(f"{name} must be DWPose-134 keypoints [{NUM_KEYPOINTS}, 3], got {points.shape}")
    size = reference.shape[0]
    both = seen_in_frame(reference_keypoints) & seen_in_frame(keypoints)
    if both.sum() < 3:
        return reference.copy()
    border = _border(size)
    target = np.concatenate([keypoints[both, :2] * size, border]).astype(np.float32)
    source = np.concatenate([reference_keypoints[both, :2] * size, border]).astype(np.float32)
    centres = (np.arange(grid, dtype=np.float32) + 0.5) * (size / grid) - 0.5
    grid_x, grid_y = np.meshgrid(centres, centres)
    mapping = GridInterpolator(target, triangulate(target, (size, size)), grid_x, grid_y)(source)
    mapping = cv2.resize(mapping, (size, size), interpolation=cv2.INTER_LINEAR)
    return cv2.remap(reference, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
