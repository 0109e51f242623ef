"""A triangle mesh over the frame and piecewise-linear interpolation from its vertices onto a regular grid.

The mesh is built once per portrait (Delaunay over the face mesh, rings around the face and the frame's
border); its barycentric coordinates at every grid point are precomputed, so turning per-vertex values
into a dense field is three gathers and a weighted sum.
"""

from __future__ import annotations

import cv2
import numpy as np


def triangulate(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Delaunay triangles ``[T, 3]`` (int32 indices into ``points``) of float ``[N, 2]`` pixel points.

    Points must lie inside the frame ``size`` = (width, height) (a point on the border is fine). Points
    closer than a quarter pixel to an earlier one are merged into it.
    """
    width, height = size
    pts = np.asarray(points, dtype=np.float32)
    # a rectangle far larger than the frame keeps Subdiv2D's virtual outer vertices far away, so the hull
    # of the points (the frame corners) is triangulated instead of being joined to those vertices
    subdiv = cv2.Subdiv2D((-20 * width, -20 * height, 41 * width, 41 * height))
    index_of: dict[tuple[float, float], int] = {}
    by_position: dict[tuple[float, float], int] = {}
    for i, (x, y) in enumerate(pts):
        key = (round(float(x) * 4) / 4, round(float(y) * 4) / 4)
        if key in index_of:
            continue
        index_of[key] = i
        by_position[(float(x), float(y))] = i
        subdiv.insert((float(x), float(y)))
    tris = []
    for tri in subdiv.getTriangleList():
        ids = [by_position.get((float(np.float32(tri[2 * k])), float(np.float32(tri[2 * k + 1]))), -1)
               for k in range(3)]
        if min(ids) >= 0:  # triangles touching Subdiv2D's virtual outer corners are dropped
            tris.append(ids)
    return np.asarray(tris, dtype=np.int32).reshape(-1, 3)


class GridInterpolator:
    """Piecewise-linear interpolation from mesh vertices to grid points.

    Args:
        points: float ``[N, 2]`` vertex positions (pixels).
        triangles: int ``[T, 3]`` vertex indices.
        grid_x, grid_y: float ``[gh, gw]`` pixel positions of the grid points.

    Grid points outside every triangle take the nearest triangle's values at its edge.
    """

    def __init__(self, points: np.ndarray, triangles: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray) -> None:
        gh, gw = grid_x.shape
        step_x = float(grid_x[0, 1] - grid_x[0, 0]) if gw > 1 else 1.0
        step_y = float(grid_y[1, 0] - grid_y[0, 0]) if gh > 1 else 1.0
        x0, y0 = float(grid_x[0, 0]), float(grid_y[0, 0])
        owner = np.full((gh, gw), -1, dtype=np.int32)
        # each triangle claims the grid points of its bounding box that lie inside it (edges included)
        for t, tri in enumerate(triangles):
            a, b, c = points[tri]
            det = (b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])
            if abs(det) < 1e-12:
                continue
            lo = np.minimum(np.minimum(a, b), c)
            hi = np.maximum(np.maximum(a, b), c)
            c0, c1 = max(0, int(np.ceil((lo[0] - x0) / step_x))), min(gw, int(np.floor((hi[0] - x0) / step_x)) + 1)
            r0, r1 = max(0, int(np.ceil((lo[1] - y0) / step_y))), min(gh, int(np.floor((hi[1] - y0) / step_y)) + 1)
            if c1 <= c0 or r1 <= r0:
                continue
            px = grid_x[r0:r1, c0:c1] - a[0]
            py = grid_y[r0:r1, c0:c1] - a[1]
            w1 = (px * (c[1] - a[1]) - (c[0] - a[0]) * py) / det
            w2 = ((b[0] - a[0]) * py - px * (b[1] - a[1])) / det
            inside = (w1 >= -1e-9) & (w2 >= -1e-9) & (w1 + w2 <= 1 + 1e-9)
            owner[r0:r1, c0:c1][inside] = t
        # grid points outside every triangle (beyond the mesh's hull) take a neighbour's triangle
        missing = owner < 0
        if missing.any() and not missing.all():
            filled = owner.copy()
            while (filled < 0).any():
                for axis in (0, 1):
                    for step in (1, -1):
                        rolled = np.roll(filled, step, axis=axis)
                        take = (filled < 0) & (rolled >= 0)
                        filled[take] = rolled[take]
            owner = filled
        self.shape = (gh, gw)
        self.inside = owner >= 0
        tri_of = np.where(self.inside, owner, 0)
        corners = points[triangles[tri_of]]  # [gh, gw, 3, 2]
        a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
        px = np.stack([grid_x, grid_y], axis=-1)
        v0, v1, v2 = b - a, c - a, px - a
        den = v0[..., 0] * v1[..., 1] - v1[..., 0] * v0[..., 1]
        den = np.where(np.abs(den) < 1e-9, 1e-9, den)
        w1 = (v2[..., 0] * v1[..., 1] - v1[..., 0] * v2[..., 1]) / den
        w2 = (v0[..., 0] * v2[..., 1] - v2[..., 0] * v0[..., 1]) / den
        weights = np.stack([1.0 - w1 - w2, w1, w2], axis=-1)
        # points given a neighbour's triangle lie outside it: clamp (inside points are unchanged)
        weights = np.clip(weights, 0.0, 1.0)
        weights /= np.maximum(weights.sum(axis=-1, keepdims=True), 1e-9)
        weights[~self.inside] = 0.0
        self.vertex_index = triangles[tri_of].astype(np.int64)  # [gh, gw, 3]
        self.weights = weights.astype(np.float32)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Interpolate per-vertex ``values`` ``[N, C]`` to the grid: float32 ``[gh, gw, C]``."""
        vals = np.asarray(values, dtype=np.float32)
        gathered = vals[self.vertex_index]  # [gh, gw, 3, C]
        return np.einsum("hwk,hwkc->hwc", self.weights, gathered)
