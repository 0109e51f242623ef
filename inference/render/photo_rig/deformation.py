"""The portrait's deformation model: how each control moves every point of the framed portrait.

Built once per portrait (and output size). Every control except the blinks is a *forward displacement
field* on a regular grid (``CELL`` pixels apart): the displacement, in output pixels per unit of the
control, of the portrait point at each grid position. A frame's displacement is their weighted sum.

* Face detail (jaw, lips, brows): values set on the face-mesh vertices by anatomical rules, interpolated
  piecewise-linearly over a Delaunay mesh (face mesh + rings + frame border) and blurred, so there are
  no triangle seams.
* The jaw has a second part, the *jump*: below the lips' seam (the lower inner lip) the lower lip and
  chin move further than the upper lip, which opens the mouth. It is kept apart so the warp can treat the
  two sides of the seam as separate layers (each smooth), and choose between them at the seam.
* Head (turn, nod, tilt, translation) and shoulders: smooth analytic weight maps (the head over a ramp
  down the neck, each shoulder over the upper torso) times rigid or depth-dependent motions.
* Eyelids are not fields: :class:`EyeLid` describes each eye for the warp's analytic blink.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.render.photo_rig import topology as topo
from inference.render.photo_rig.controls import CONTROL_NAMES
from inference.render.photo_rig.framing import FramedPortrait
from inference.render.photo_rig.mesh import GridInterpolator, triangulate

#: Grid spacing of the displacement fields, in output pixels.
CELL = 2
#: Pixel position of grid point 0 (each grid point sits at the centre of its CELL x CELL pixels).
GRID_OFFSET = (CELL - 1) / 2
#: Controls that are forward displacement fields (the blinks are handled by :class:`EyeLid`).
FIELD_CONTROLS = tuple(n for n in CONTROL_NAMES if not n.startswith("blink"))
#: Points along the lips' seam at which the opened mouth's outline is computed.
_SEAM_POINTS = 33
#: How far (eye distances) the mouth corners move down per unit of jaw opening.
_CORNER_DRAG = 0.4
#: How much further than the lower lip the chin drops (the jaw rotates about the ear).
_MAX_JAW_LEVER = 1.5


@dataclass(frozen=True)
class FieldPatch:
    """A control's forward displacement on a window of the grid (zero elsewhere).

    Attributes:
        rows, cols: the window (grid indices).
        values: float32 ``[rows, cols, 2]`` displacement (x, y) in output pixels per unit of the control.
    """

    rows: slice
    cols: slice
    values: np.ndarray


@dataclass(frozen=True)
class EyeLid:
    """One eye, in an eye-aligned frame: ``a`` runs 0..1 from the image-left corner to the image-right one,
    ``b`` is the distance (pixels) along ``normal`` (down the face).

    Attributes:
        origin, axis, normal: float ``[2]`` the image-left corner, unit vector to the other corner, unit normal.
        length: corner-to-corner distance (pixels).
        upper_a, upper_b, lower_a, lower_b: the lid margins sampled along ``a``.
        stretch: how far above the upper margin the lid skin stretches when the eye closes (pixels).
        lash: thickness of the lash line along the upper margin, which moves down without stretching (pixels).
    """

    origin: np.ndarray
    axis: np.ndarray
    normal: np.ndarray
    length: float
    upper_a: np.ndarray
    upper_b: np.ndarray
    lower_a: np.ndarray
    lower_b: np.ndarray
    stretch: float
    lash: float

    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): the pixel box the lid can affect."""
        corners = []
        for a in (0.0, 1.0):
            for b in (float(self.upper_b.min()) - self.stretch, float(self.lower_b.max())):
                corners.append(self.origin + self.axis * a * self.length + self.normal * b)
        arr = np.array(corners)
        return float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 0].max()), float(arr[:, 1].max())


@dataclass(frozen=True)
class MouthSeam:
    """The seam between the mouth's upper and lower layers, and where the mouth interior is drawn.

    Attributes:
        seam: float ``[n, 2]`` the lower inner lip, corner to corner (pixels).
        upper_lip: float ``[n, 2]`` the upper inner lip, corner to corner (pixels): the top of the teeth.
        seam_motion, upper_lip_motion: float ``[len(FIELD_CONTROLS), n, 2]`` forward displacement of those
            points per unit of each control (the upper side of the seam).
        seam_jump: float ``[n, 2]`` the lower side's extra displacement per unit of jaw.
        jump: the jaw's jump field: what the lower side (below the seam) adds to the upper side's motion.
        bounds: (x0, y0, x1, y1) pixel box containing the lips and the jump field.
    """

    seam: np.ndarray
    upper_lip: np.ndarray
    seam_motion: np.ndarray
    upper_lip_motion: np.ndarray
    seam_jump: np.ndarray
    jump: FieldPatch
    bounds: tuple[float, float, float, float]


@dataclass(frozen=True)
class Deformation:
    """Everything the warp needs to move one framed portrait.

    Attributes:
        size: (width, height) of the output.
        grid_shape: (rows, cols) of the field grid; grid point (i, j) sits at pixel
            (j·CELL + (CELL-1)/2, i·CELL + (CELL-1)/2).
        fields: one :class:`FieldPatch` per name in :data:`FIELD_CONTROLS` (None: the control moves nothing).
        mouth: the mouth seam.
        eyes: the subject's right and left eye.
        eye_distance: the unit of the distance controls, in output pixels.
    """

    size: tuple[int, int]
    grid_shape: tuple[int, int]
    fields: tuple[FieldPatch | None, ...]
    mouth: MouthSeam
    eyes: tuple[EyeLid, EyeLid]
    eye_distance: float

    def displacement(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Forward displacement (upper side of the mouth seam) for control ``values``.

        Args:
            values: float ``[len(FIELD_CONTROLS)]`` in :data:`FIELD_CONTROLS` order.
            out: optional float32 ``[rows, cols, 2]`` buffer.

        Returns:
            float32 ``[rows, cols, 2]`` displacement in output pixels.
        """
        if out is None:
            out = np.zeros((*self.grid_shape, 2), dtype=np.float32)
        else:
            out[...] = 0.0
        for value, patch in zip(values, self.fields, strict=True):
            if patch is not None and value != 0.0:
                out[patch.rows, patch.cols] += np.float32(value) * patch.values
        return out


def grid_positions(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x and y ``[rows, cols]`` of the grid points for an output of ``size``."""
    cols, rows = -(-size[0] // CELL), -(-size[1] // CELL)
    gx, gy = np.meshgrid(np.arange(cols) * CELL + GRID_OFFSET, np.arange(rows) * CELL + GRID_OFFSET)
    return gx.astype(np.float64), gy.astype(np.float64)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


class _FaceGeometry:
    """Local frames of the framed face: the face frame (eye distances, origin between the eyes) and the
    mouth frame (``u`` from -1 at the image-left corner to +1 at the other, ``v`` pixels down the face)."""

    def __init__(self, framed: FramedPortrait) -> None:
        face = framed.face.astype(np.float64)
        self.face = face
        right, left = topo.eye_centres(face)
        self.centre = (right + left) / 2
        self.unit = float(np.linalg.norm(left - right))
        self.ex = (left - right) / self.unit
        self.ey = np.array([-self.ex[1], self.ex[0]])
        c_left, c_right = face[topo.OUTER_UPPER_LIP[0], :2], face[topo.OUTER_UPPER_LIP[-1], :2]
        self.mouth_centre = (c_left + c_right) / 2
        self.mouth_half = max(1.0, float(np.linalg.norm(c_right - c_left)) / 2)
        self.ma = (c_right - c_left) / (2 * self.mouth_half)
        self.mb = np.array([-self.ma[1], self.ma[0]])
        self.corners = np.stack([c_left, c_right])
        seam = face[list(topo.INNER_LOWER_LIP), :2]
        su, sv = self.mouth_uv(seam)
        order = np.argsort(su)
        self.seam_u, self.seam_v = su[order], sv[order]
        oval = face[list(topo.FACE_OVAL), :2]
        self.oval = oval.astype(np.float32)
        self.oval_z = float(face[list(topo.FACE_OVAL), 2].mean())
        self.eye_z = float(face[[*topo.RIGHT_EYE_CORNERS, *topo.LEFT_EYE_CORNERS], 2].mean())

    def local(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face-frame coordinates (eye distances) of pixel points ``[..., 2]``."""
        d = pts - self.centre
        return (d @ self.ex) / self.unit, (d @ self.ey) / self.unit

    def mouth_uv(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = pts - self.mouth_centre
        return (d @ self.ma) / self.mouth_half, d @ self.mb

    def below_seam(self, pts: np.ndarray) -> np.ndarray:
        """Whether each point lies below the seam curve (continued level beyond the mouth's corners)."""
        u, v = self.mouth_uv(pts)
        return v > np.interp(u, self.seam_u, self.seam_v)

    def outside_oval(self, pts: np.ndarray) -> np.ndarray:
        """Distance (eye distances) outside the face outline; 0 inside."""
        flat = pts.reshape(-1, 2)
        d = np.array([cv2.pointPolygonTest(self.oval, (float(x), float(y)), True) for x, y in flat])
        return (np.maximum(0.0, -d) / self.unit).reshape(pts.shape[:-1])


def _lens(u: np.ndarray) -> np.ndarray:
    """How far the lower lip drops along the mouth (1 in the middle, 0 at the corners, which stay pointed)."""
    u2 = u * u
    return np.where(u2 < 1.0, (1.0 - u2) * (1.0 + 0.3 * u2), 0.0)


def _in_polygon(poly: np.ndarray, pts: np.ndarray, tolerance: float) -> np.ndarray:
    contour = poly.astype(np.float32)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True) >= -tolerance for x, y in pts])


def build_deformation(framed: FramedPortrait) -> Deformation:
    """The deformation model of ``framed`` (see the module docstring)."""
    height, width = framed.rgb.shape[:2]
    size = (width, height)
    geo = _FaceGeometry(framed)
    gx, gy = grid_positions(size)
    grid = np.stack([gx, gy], axis=-1)

    points = _mesh_points(geo, size)
    interp = GridInterpolator(points, triangulate(points, size), gx, gy)
    face_n = topo.NUM_FACE_POINTS
    outside = geo.outside_oval(points)
    outside[:face_n] = 0.0
    # how much of a feature's motion reaches the scaffold around the face; the soft tissue under the chin
    # follows the jaw further
    attenuation = np.exp(-outside / 0.5)
    jaw_attenuation = np.exp(-outside / 0.8)

    jump = _jump_field(geo, grid)
    fields: dict[str, np.ndarray] = {}
    fields["jaw"] = _blur(interp(_jaw_values(geo, points, jaw_attenuation)), 1.5)
    fields["lip_press"] = _blur(interp(_press_values(geo, points)), 1.0)
    fields["lip_tuck"] = _blur(interp(_tuck_values(geo, points)), 1.0)
    fields["lip_width"] = _blur(interp(_width_values(geo, points, attenuation)), 1.0)
    fields["smile"] = _blur(interp(_smile_values(geo, points, attenuation)), 1.0)
    for side, brow, lid in (("right", topo.RIGHT_BROW, topo.RIGHT_UPPER_LID), ("left", topo.LEFT_BROW, topo.LEFT_UPPER_LID)):
        fields[f"brow_{side}"] = _blur(interp(_brow_values(geo, points, attenuation, brow, lid)), 1.0)
    head = _head_weight(geo, framed, grid)
    depth_values = np.full(len(points), geo.oval_z)
    depth_values[:face_n] = geo.face[:, 2]
    depth = _blur(interp(depth_values[:, None]), 2.0)[..., 0]
    _head_fields(geo, grid, head, depth, fields)
    _shoulder_fields(geo, framed, grid, head, fields)

    patches = tuple(_patch(fields.get(name)) for name in FIELD_CONTROLS)
    mouth = _mouth_seam(geo, fields, jump, gx.shape)
    eyes = (_eye_lid(geo, topo.RIGHT_UPPER_LID, topo.RIGHT_LOWER_LID, topo.RIGHT_BROW),
            _eye_lid(geo, topo.LEFT_UPPER_LID, topo.LEFT_LOWER_LID, topo.LEFT_BROW))
    return Deformation(size=size, grid_shape=gx.shape, fields=patches, mouth=mouth, eyes=eyes,
                       eye_distance=geo.unit)


def _mesh_points(geo: _FaceGeometry, size: tuple[int, int]) -> np.ndarray:
    """The face mesh, two rings around the face outline, and the frame's border."""
    width, height = size
    oval = geo.face[list(topo.FACE_OVAL), :2]
    centroid = oval.mean(axis=0)
    directions = oval - centroid
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-9)
    rings = [oval + directions * geo.unit * r for r in (0.35, 1.2)]
    border = []
    steps = 8
    for k in range(steps + 1):
        t = k / steps
        border += [(t * (width - 1), 0.0), (t * (width - 1), height - 1.0), (0.0, t * (height - 1)),
                   (width - 1.0, t * (height - 1))]
    pts = np.concatenate([geo.face[:, :2], *rings, np.array(border)])
    pts[:, 0] = np.clip(pts[:, 0], 0.0, width - 1.0)
    pts[:, 1] = np.clip(pts[:, 1], 0.0, height - 1.0)
    return pts


def _lip_sets(geo: _FaceGeometry, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks over ``points``: upper lip, lower lip, corners (face-mesh vertices only)."""
    n = len(points)
    face_n = topo.NUM_FACE_POINTS
    upper_poly = geo.face[list(topo.OUTER_UPPER_LIP) + list(reversed(topo.INNER_UPPER_LIP)), :2]
    lower_poly = geo.face[list(topo.OUTER_LOWER_LIP) + list(reversed(topo.INNER_LOWER_LIP)), :2]
    upper = np.zeros(n, bool)
    lower = np.zeros(n, bool)
    upper[:face_n] = _in_polygon(upper_poly, points[:face_n], 0.5)
    lower[:face_n] = _in_polygon(lower_poly, points[:face_n], 0.5)
    upper[list(topo.INNER_UPPER_LIP + topo.OUTER_UPPER_LIP)] = True
    lower[list(topo.INNER_LOWER_LIP + topo.OUTER_LOWER_LIP)] = True
    corners = np.zeros(n, bool)
    corners[[topo.OUTER_UPPER_LIP[0], topo.OUTER_UPPER_LIP[-1], topo.INNER_UPPER_LIP[0], topo.INNER_UPPER_LIP[-1]]] = True
    lower &= ~upper  # a vertex on both outlines belongs to the upper lip
    upper &= ~corners
    lower &= ~corners
    return upper, lower, corners


def _corner_distance(geo: _FaceGeometry, points: np.ndarray) -> np.ndarray:
    return np.min(np.linalg.norm(points[:, None, :] - geo.corners[None], axis=2), axis=1)


def _jaw_values(geo: _FaceGeometry, points: np.ndarray, attenuation: np.ndarray) -> np.ndarray:
    """Per-vertex jaw displacement (upper side of the seam), pixels per eye distance of opening."""
    upper, lower, corners = _lip_sets(geo, points)
    _, fy = geo.local(points)
    u, _ = geo.mouth_uv(points)
    fy_tmj = float(np.mean(geo.local(geo.face[[topo.CHEEK_RIGHT, topo.CHEEK_LEFT], :2])[1]))
    fy_lip = float(geo.local(geo.face[topo.INNER_LOWER_LIP[5], :2])[1])
    lever = np.clip((fy - fy_tmj) / max(fy_lip - fy_tmj, 0.1), 0.0, _MAX_JAW_LEVER)
    drag = _CORNER_DRAG * np.exp(-((_corner_distance(geo, points) / (0.5 * geo.mouth_half)) ** 2))
    below = geo.below_seam(points)
    # beyond the mouth corners the lower jaw starts below the line from each corner to the jaw joint
    member = (below & (np.abs(u) < 1.0)).astype(np.float64)
    side = np.abs(u) >= 1.0
    if side.any():
        joints = geo.face[[topo.CHEEK_RIGHT, topo.CHEEK_LEFT], :2]
        for k, sign in ((0, -1.0), (1, 1.0)):
            sel = side & (np.sign(u) == sign)
            a, b = geo.corners[k], joints[k]
            normal = np.array([-(b - a)[1], (b - a)[0]])
            normal /= max(np.linalg.norm(normal), 1e-9)
            if normal @ geo.ey < 0:
                normal = -normal
            dist = (points[sel] - a) @ normal / geo.unit
            member[sel] = _smoothstep(dist / 0.6 + 0.5)
    value = (member * lever + (1.0 - member) * drag) * attenuation
    lip_value = _CORNER_DRAG * np.clip(np.abs(u), 0.0, 1.0) ** 3
    value = np.where(upper | lower, lip_value, value)
    value[corners] = _CORNER_DRAG
    # below the seam the jump field adds the rest of the lower side's motion: take it out here
    value -= _jump_strength(geo, points) * below * ~(upper | lower | corners)
    return value[:, None] * geo.unit * geo.ey[None, :]


def _jump_strength(geo: _FaceGeometry, pts: np.ndarray) -> np.ndarray:
    """Jump per unit of jaw (eye distances) at pixel points: the lens profile along the mouth, widening and
    fading out gently from the lower lip down to below the chin (where the smooth jaw field carries the motion
    alone), and fading out a little above the seam (the lower layer is only used below it, but its inversion
    needs a smooth field there)."""
    u, v = geo.mouth_uv(pts)
    seam_v = np.interp(u, geo.seam_u, geo.seam_v)
    lip_bottom = float(geo.mouth_uv(geo.face[topo.OUTER_LOWER_LIP[5], :2])[1])
    end = max(float(geo.mouth_uv(geo.face[topo.CHIN, :2])[1]) + 0.5 * geo.unit, lip_bottom + 0.6 * geo.unit)
    depth = np.clip((v - lip_bottom) / (end - lip_bottom), 0.0, 1.0)
    down = 1.0 - _smoothstep(depth)
    up = _smoothstep((v - seam_v + 0.45 * geo.unit) / (0.3 * geo.unit))
    inner_half = max(0.2, float(min(-geo.seam_u[0], geo.seam_u[-1])))  # the inner corners, where the lips meet
    return _lens(u / (inner_half * (1.0 + 1.5 * depth))) * down * up


def _jump_field(geo: _FaceGeometry, grid: np.ndarray) -> np.ndarray:
    """The jaw's jump on the grid (both sides of the seam), pixels per eye distance of opening."""
    return (_jump_strength(geo, grid)[..., None] * geo.unit * geo.ey).astype(np.float32)


def _press_values(geo: _FaceGeometry, points: np.ndarray) -> np.ndarray:
    """Lips pressed thinner: the outer outlines move towards the seam, pixels per eye distance."""
    return _lip_outline_values(geo, points, upper_gain=0.5, lower_gain=0.5)


def _tuck_values(geo: _FaceGeometry, points: np.ndarray) -> np.ndarray:
    """F and V: the lower lip drawn up under the upper teeth shows thinner (its outer outline rises by the
    control), and the upper lip lifts a little (its outer outline moves up by 0.4 of it), pixels per eye
    distance. The upper teeth resting on the lower lip are drawn over it (:mod:`mouth`)."""
    return _lip_outline_values(geo, points, upper_gain=-0.4, lower_gain=1.0)


def _lip_outline_values(geo: _FaceGeometry, points: np.ndarray, upper_gain: float, lower_gain: float) -> np.ndarray:
    """Each lip's outer outline moved towards the seam by its gain (negative: away from it), the inner outline
    kept, in between in proportion; fading to nothing at the mouth's corners. Pixels per eye distance."""
    upper, lower, _ = _lip_sets(geo, points)
    u, v = geo.mouth_uv(points)
    out = np.zeros((len(points), 2))
    for mask, inner, outer, sign in ((upper, topo.INNER_UPPER_LIP, topo.OUTER_UPPER_LIP, upper_gain),
                                     (lower, topo.INNER_LOWER_LIP, topo.OUTER_LOWER_LIP, -lower_gain)):
        iu, iv = geo.mouth_uv(geo.face[list(inner), :2])
        ou, ov = geo.mouth_uv(geo.face[list(outer), :2])
        vi = np.interp(u[mask], np.sort(iu), iv[np.argsort(iu)])
        vo = np.interp(u[mask], np.sort(ou), ov[np.argsort(ou)])
        frac = np.clip((v[mask] - vi) / np.where(np.abs(vo - vi) < 1e-6, 1e-6, vo - vi), 0.0, 1.0)
        amount = frac * np.clip(1.0 - u[mask] ** 2, 0.0, 1.0)
        out[mask] = (sign * amount)[:, None] * geo.mb * geo.unit
    return out


def _width_values(geo: _FaceGeometry, points: np.ndarray, attenuation: np.ndarray) -> np.ndarray:
    """Mouth wider (positive) or rounder (negative): the lips stretch along the mouth, pixels per eye distance."""
    upper, lower, corners = _lip_sets(geo, points)
    u, _ = geo.mouth_uv(points)
    lips = upper | lower | corners
    outline = geo.face[list(topo.OUTER_UPPER_LIP) + list(reversed(topo.OUTER_LOWER_LIP)), :2].astype(np.float32)
    dist = np.array([max(0.0, -cv2.pointPolygonTest(outline, (float(x), float(y)), True)) for x, y in points])
    near = np.exp(-((dist / (0.45 * geo.unit)) ** 2))
    amount = 0.5 * np.clip(u, -1.3, 1.3) * near * attenuation
    amount[lips] = 0.5 * np.clip(u[lips], -1.0, 1.0)
    return amount[:, None] * geo.ma * geo.unit


def _smile_values(geo: _FaceGeometry, points: np.ndarray, attenuation: np.ndarray) -> np.ndarray:
    """Mouth corners up (and a little out), cheeks raised, pixels per eye distance of corner lift."""
    upper, lower, corners = _lip_sets(geo, points)
    u, _ = geo.mouth_uv(points)
    lips = upper | lower | corners
    near = np.exp(-((_corner_distance(geo, points) / (0.6 * geo.mouth_half)) ** 2)) * attenuation
    lift = 0.8 * near
    out_ = 0.25 * np.sign(u) * near
    lift[lips] = np.clip(np.abs(u[lips]), 0.0, 1.0) ** 2
    out_[lips] = 0.25 * np.clip(u[lips], -1.0, 1.0) * np.abs(np.clip(u[lips], -1.0, 1.0))
    return (-lift[:, None] * geo.mb + out_[:, None] * geo.ma) * geo.unit


def _brow_values(geo: _FaceGeometry, points: np.ndarray, attenuation: np.ndarray, brow: tuple[int, ...],
                 lid: tuple[int, ...]) -> np.ndarray:
    """One brow up, with the forehead above and the lid skin below following less, pixels per eye distance."""
    fx, fy = geo.local(points)
    bx, by = geo.local(geo.face[list(brow), :2])
    _, ly = geo.local(geo.face[list(lid), :2])
    y_brow, y_lid = float(by.mean()), float(ly.mean())
    lo, hi = float(bx.min()) - 0.1, float(bx.max()) + 0.1
    lateral = np.exp(-((np.maximum(0.0, np.maximum(lo - fx, fx - hi)) / 0.3) ** 2))
    span = max(y_lid - y_brow, 0.05)
    vertical = np.where(
        fy <= y_brow, np.clip(1.0 - (y_brow - fy) / 1.0, 0.0, 1.0),
        np.where(fy <= y_lid, 1.0 - 0.9 * (fy - y_brow) / span, 0.1 * np.clip(1.0 - (fy - y_lid) / 0.2, 0.0, 1.0)),
    )
    value = lateral * vertical * attenuation
    value[list(brow)] = 1.0
    return -value[:, None] * geo.ey * geo.unit


def _head_weight(geo: _FaceGeometry, framed: FramedPortrait, grid: np.ndarray) -> np.ndarray:
    """How rigidly each grid point follows the head: 1 on the head and hair, ramping to 0 down the neck.

    Above the ears the head is as wide as the hair; from the ears down to the chin it narrows to the jaw (so
    collars, hoods and shoulders beside the jaw stay with the body); below the chin it is the neck's width,
    fading out towards the shoulders.
    """
    fx, fy = geo.local(grid)
    oval_x, _ = geo.local(geo.face[list(topo.FACE_OVAL), :2])
    chin_y = float(geo.local(geo.face[topo.CHIN, :2])[1])
    ear_y = float(np.mean(geo.local(geo.face[[topo.CHEEK_RIGHT, topo.CHEEK_LEFT], :2])[1]))
    face_half = float(np.abs(oval_x).max())
    shoulder_y = _shoulder_level(geo, framed)
    # hair: the person mask along the eye line, as far as it reaches from the face
    mask = framed.mask[np.clip(grid[..., 1].astype(int), 0, framed.mask.shape[0] - 1),
                       np.clip(grid[..., 0].astype(int), 0, framed.mask.shape[1] - 1)]
    row = (np.abs(fy) < 0.6) & (mask > 0.5)
    reach = float(np.abs(fx[row]).max()) if row.any() else face_half
    head_half = float(np.clip(reach, 1.05 * face_half, 1.8 * face_half))
    jaw_corners = geo.local(geo.face[[172, 397], :2])[0]
    jaw_half = 0.5 * float(jaw_corners[1] - jaw_corners[0])
    neck_half = max(0.35 * face_half, 0.6 * jaw_half)
    # half-width of the head at each height, and how softly it ends sideways
    down = np.clip((fy - ear_y) / max(chin_y - ear_y, 0.2), 0.0, 1.0)
    half = np.where(fy <= chin_y, head_half + (jaw_half + 0.15 - head_half) * _smoothstep(down),
                    jaw_half + 0.15 + (neck_half - jaw_half - 0.15) * _smoothstep((fy - chin_y) / 0.5))
    soft = np.where(fy <= ear_y, 0.5, 0.3)
    lateral = 1.0 - _smoothstep((np.abs(fx) - half) / soft)
    t = np.clip((fy - chin_y + 0.1) / max(shoulder_y - 0.2 - chin_y + 0.1, 0.3), 0.0, 1.0)
    vertical = 0.5 * (1.0 + np.cos(np.pi * t))
    weight = (vertical * lateral).astype(np.float32)
    return cv2.GaussianBlur(weight, (0, 0), 0.15 * geo.unit / CELL)


def _shoulder_level(geo: _FaceGeometry, framed: FramedPortrait) -> float:
    """Face-frame y (eye distances) of the shoulder line."""
    chin_y = float(geo.local(geo.face[topo.CHIN, :2])[1])
    visible = framed.pose[[11, 12], 2] > 0.5
    if visible.any():
        y = float(np.mean(geo.local(framed.pose[[11, 12], :2][visible])[1]))
        return max(y, chin_y + 0.6)
    return chin_y + 1.3


def _head_fields(geo: _FaceGeometry, grid: np.ndarray, head: np.ndarray, depth: np.ndarray,
                 fields: dict[str, np.ndarray]) -> None:
    w = head[..., None]
    fields["head_x"] = w * np.array([geo.unit, 0.0], np.float32)
    fields["head_y"] = w * np.array([0.0, geo.unit], np.float32)
    rel = grid - geo.centre
    fields["roll"] = w * np.stack([-rel[..., 1], rel[..., 0]], axis=-1).astype(np.float32)
    forward = (geo.eye_z - depth)[..., None]  # > 0 for points nearer the camera than the eyes
    fields["yaw"] = (w * forward * geo.ex).astype(np.float32)
    fields["pitch"] = (w * forward * geo.ey).astype(np.float32)


def _shoulder_fields(geo: _FaceGeometry, framed: FramedPortrait, grid: np.ndarray, head: np.ndarray,
                     fields: dict[str, np.ndarray]) -> None:
    """Each shoulder carries the upper torso on its side (both together: breathing), not the head."""
    pose = framed.pose
    chin = geo.face[topo.CHIN, :2]
    estimates = {12: chin + geo.unit * (-2.2 * geo.ex + 1.2 * geo.ey), 11: chin + geo.unit * (2.2 * geo.ex + 1.2 * geo.ey)}
    right = pose[12, :2].astype(np.float64) if pose[12, 2] > 0.5 else estimates[12]
    left = pose[11, :2].astype(np.float64) if pose[11, 2] > 0.5 else estimates[11]
    span = left - right
    length2 = max(float(span @ span), 1.0)
    t = ((grid - right) @ span) / length2
    share_right = 1.0 - _smoothstep((t - 0.15) / 0.7)
    normal = np.array([-span[1], span[0]]) / np.sqrt(length2)
    if normal @ geo.ey < 0:
        normal = -normal
    below = ((grid - right) @ normal) / geo.unit
    envelope = np.where(below < -0.2, np.exp(-(((below + 0.2) / 0.6) ** 2)),
                        np.where(below > 0.5, np.exp(-(((below - 0.5) / 2.5) ** 2)), 1.0))
    envelope = envelope * (1.0 - head)
    for prefix, share in (("shoulder_right", share_right), ("shoulder_left", 1.0 - share_right)):
        w = (envelope * share)[..., None].astype(np.float32)
        fields[f"{prefix}_x"] = w * np.array([geo.unit, 0.0], np.float32)
        fields[f"{prefix}_y"] = w * np.array([0.0, geo.unit], np.float32)


def _blur(field: np.ndarray, sigma_cells: float) -> np.ndarray:
    return cv2.GaussianBlur(field.astype(np.float32), (0, 0), sigma_cells, borderType=cv2.BORDER_REPLICATE)


def _patch(field: np.ndarray | None, threshold: float = 0.01) -> FieldPatch | None:
    """The smallest grid window holding every displacement above ``threshold`` pixels."""
    if field is None:
        return None
    strong = np.abs(field).max(axis=-1) > threshold
    if not strong.any():
        return None
    rows = np.flatnonzero(strong.any(axis=1))
    cols = np.flatnonzero(strong.any(axis=0))
    r, c = slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
    return FieldPatch(rows=r, cols=c, values=np.ascontiguousarray(field[r, c], dtype=np.float32))


def sample_field(field: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear samples ``[n, C]`` of a grid field ``[rows, cols, C]`` at pixel points ``[n, 2]`` (0 outside)."""
    coords = ((np.asarray(pts, np.float64) - GRID_OFFSET) / CELL).astype(np.float32)
    out = cv2.remap(field, coords[:, 0:1].copy(), coords[:, 1:2].copy(), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(len(coords), -1)


def _mouth_seam(geo: _FaceGeometry, fields: dict[str, np.ndarray], jump: np.ndarray,
                grid_shape: tuple[int, int]) -> MouthSeam:
    seam = _resample(geo.face[list(topo.INNER_LOWER_LIP), :2], _SEAM_POINTS)
    upper_lip = _resample(geo.face[list(topo.INNER_UPPER_LIP), :2], _SEAM_POINTS)
    zeros = np.zeros((*grid_shape, 2), np.float32)
    seam_motion = np.stack([sample_field(fields.get(n, zeros), seam) for n in FIELD_CONTROLS])
    upper_motion = np.stack([sample_field(fields.get(n, zeros), upper_lip) for n in FIELD_CONTROLS])
    seam_jump = (_jump_strength(geo, seam)[:, None] * geo.unit * geo.ey).astype(np.float32)
    patch = _patch(jump)
    if patch is None:  # a degenerate mouth: keep an empty patch so the warp's code stays uniform
        patch = FieldPatch(rows=slice(0, 1), cols=slice(0, 1), values=np.zeros((1, 1, 2), np.float32))
    # the box holds the lips and the whole jump field, so outside it the two layers agree
    r, c = patch.rows, patch.cols
    lips = geo.face[list(topo.OUTER_UPPER_LIP + topo.OUTER_LOWER_LIP), :2]
    margin = 2 * CELL
    bounds = (min(float(lips[:, 0].min()), c.start * CELL) - margin, min(float(lips[:, 1].min()), r.start * CELL) - margin,
              max(float(lips[:, 0].max()), c.stop * CELL) + margin, max(float(lips[:, 1].max()), r.stop * CELL) + margin)
    return MouthSeam(seam=seam.astype(np.float32), upper_lip=upper_lip.astype(np.float32),
                     seam_motion=seam_motion.astype(np.float32), upper_lip_motion=upper_motion.astype(np.float32),
                     seam_jump=seam_jump, jump=patch, bounds=bounds)


def _resample(chain: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced along the polyline ``chain`` ``[n, 2]``, ends included."""
    steps = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] < 1e-9:
        return np.repeat(chain[:1], count, axis=0)
    t = np.linspace(0.0, along[-1], count)
    return np.stack([np.interp(t, along, chain[:, 0]), np.interp(t, along, chain[:, 1])], axis=1)


def _eye_lid(geo: _FaceGeometry, upper: tuple[int, ...], lower: tuple[int, ...], brow: tuple[int, ...]) -> EyeLid:
    up = geo.face[list(upper), :2]
    lo = geo.face[list(lower), :2]
    origin = up[0]
    axis = up[-1] - up[0]
    length = max(float(np.linalg.norm(axis)), 1.0)
    axis = axis / length
    normal = np.array([-axis[1], axis[0]])
    if normal @ geo.ey < 0:
        normal = -normal

    def ab(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = pts - origin
        a, b = (d @ axis) / length, d @ normal
        order = np.argsort(a)
        return a[order], b[order]

    ua, ub = ab(up)
    la, lb = ab(lo)
    brow_b = ab(geo.face[list(brow), :2])[1]
    lid_to_brow = float(ub.min() - brow_b.max())  # positive: the brow's lower edge sits above the lid
    stretch = float(np.clip(0.6 * lid_to_brow if lid_to_brow > 0 else 0.3 * geo.unit, 0.12 * geo.unit, 0.4 * geo.unit))
    opening = float(np.max(np.interp(np.linspace(0, 1, 21), la, lb) - np.interp(np.linspace(0, 1, 21), ua, ub)))
    lash = float(np.clip(0.25 * opening, 0.8, 0.3 * stretch))
    return EyeLid(origin=origin, axis=axis, normal=normal, length=length, upper_a=ua, upper_b=ub, lower_a=la,
                  lower_b=lb, stretch=stretch, lash=lash)
