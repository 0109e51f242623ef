"""Smooth curves through keypoints and the fixed-point form OpenCV draws with.

Curves are uniform Catmull-Rom splines. Each spline is a constant matrix that
maps the control points to the samples (``samples = M @ points``), so a whole
contour costs one small matrix product per frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Sub-pixel bits used for every anti-aliased OpenCV call (coordinates are multiplied by 16).
SHIFT = 4
ONE = 1 << SHIFT


@lru_cache(maxsize=64)
def spline_matrix(n_points: int, samples_per_segment: int, closed: bool) -> np.ndarray:
    """The ``[n_samples, n_points]`` Catmull-Rom matrix for ``n_points`` control points.

    An open curve passes through every control point, first to last
    (``(n_points - 1) * samples_per_segment + 1`` samples); a closed curve returns to
    its start (``n_points * samples_per_segment`` samples, the last point not repeated).
    """
    if n_points < 2:
        raise ValueError("a spline needs at least 2 control points")
    k = int(samples_per_segment)
    segments = n_points if closed else n_points - 1
    t = np.arange(k, dtype=np.float64) / k
    t2, t3 = t * t, t * t * t
    # Catmull-Rom basis (tension 0.5) for p[i-1], p[i], p[i+1], p[i+2]
    basis = 0.5 * np.stack(
        [-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2], axis=1
    )  # [k, 4]
    rows = []
    for s in range(segments):
        idx = [s - 1, s, s + 1, s + 2]
        if closed:
            idx = [i % n_points for i in idx]
        else:
            idx = [min(max(i, 0), n_points - 1) for i in idx]
        block = np.zeros((k, n_points))
        for col, i in enumerate(idx):
            block[:, i] += basis[:, col]
        rows.append(block)
    if not closed:
        last = np.zeros((1, n_points))
        last[0, -1] = 1.0
        rows.append(last)
    return np.concatenate(rows, axis=0)


def smooth(points: np.ndarray, samples_per_segment: int = 3, closed: bool = False) -> np.ndarray:
    """A Catmull-Rom curve through ``points`` ``[n, 2]``; returns float64 ``[m, 2]``."""
    return spline_matrix(len(points), samples_per_segment, closed) @ points


def fixed(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates ``[..., 2]`` as int32 fixed point for OpenCV calls made with ``shift=SHIFT``."""
    return np.rint(np.asarray(points) * ONE).astype(np.int32)


def normals(curve: np.ndarray) -> np.ndarray:
    """Unit normals ``[m, 2]`` of an open polyline (the tangent turned +90° in image coordinates)."""
    tangent = np.gradient(curve, axis=0)
    length = np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    tangent = tangent / length
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def ribbon(curve: np.ndarray, half_widths: np.ndarray) -> np.ndarray:
    """A closed polygon ``[2m, 2]`` around an open polyline with per-sample half widths ``[m]`` (pixels)."""
    n = normals(curve) * np.asarray(half_widths, dtype=np.float64)[:, None]
    return np.concatenate([curve + n, (curve - n)[::-1]], axis=0)
