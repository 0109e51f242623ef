"""The head: neck, ears, skull and skin, eyes with lids, brows, nose, mouth with its interior, glasses.

Everything follows the 68 iBUG points of the frame (in pixels): the jaw line is
the lower outline of the head, the lids are the eye points (so a blink closes
them), the lips are the 20 lip points and the mouth's interior (dark cavity,
tongue, upper and lower teeth) fills the inner-lip opening, scaled by how far it
is open, so nothing of it can leak outside the lips.
"""

from __future__ import annotations

import math

import numpy as np

from training.synthetic.curves import ribbon, smooth
from training.synthetic.hair import skull_top
from training.synthetic.head_frame import HeadFrame
from training.synthetic.identity import Identity
from training.synthetic.paint import FACE, MOUTH, TORSO, Canvas, mix_colour, shade_colour

_SCLERA = (246, 244, 238)
_TEETH = (244, 241, 228)
_CAVITY = (70, 22, 30)
_TONGUE = (196, 92, 102)
#: The neck is a little darker than the face.
NECK_SHADE = 0.93


def _skin_dark(identity: Identity, f: float) -> tuple[int, int, int]:
    return shade_colour(identity.skin, f)


def draw_neck(canvas: Canvas, identity: Identity, face: np.ndarray, frame: HeadFrame, neck: np.ndarray) -> None:
    """The neck from under the jaw down to the body's neck point (the shading pass darkens it under the chin)."""
    width = identity.neck_width * frame.sx * 2.0
    jaw_mid = face[8]
    top_l = face[5] + (face[11] - face[5]) * 0.12
    top_r = face[11] + (face[5] - face[11]) * 0.12
    axis = neck - jaw_mid
    length = max(float(np.hypot(*axis)), 1.0)
    across = np.array([axis[1], -axis[0]]) / length
    bottom = neck + axis / length * 0.15 * width
    half = across * width * 0.62
    waist = across * width * 0.03
    poly = np.array([top_r, top_l, (top_l + bottom - half) / 2 + waist, bottom - half, bottom + half,
                     (top_r + bottom + half) / 2 - waist])
    canvas.fill(poly, _skin_dark(identity, NECK_SHADE), TORSO)


def draw_ears(canvas: Canvas, identity: Identity, frame: HeadFrame) -> None:
    """Both ears beside the temples (the skull drawn next hides the far one when the head turns)."""
    angle = math.degrees(math.atan2(frame.right[1], frame.right[0]))
    size = identity.ear_size
    for side in (-1.0, 1.0):
        centre = frame.to_px(np.array([side * 0.98, 0.32]), -0.5)
        axes = (0.2 * size * frame.sx, 0.36 * size * frame.sy)
        canvas.ellipse(centre, axes, angle, _skin_dark(identity, 0.9), FACE)
        inner = centre - side * frame.right * frame.sx * 0.03
        canvas.ellipse(inner, (axes[0] * 0.5, axes[1] * 0.6), angle, _skin_dark(identity, 0.72))


def head_outline(identity: Identity, face: np.ndarray, frame: HeadFrame) -> np.ndarray:
    """The head's silhouette ``[n, 2]``: the jaw line, then the skull over the top."""
    jaw = smooth(face[0:17], 3)
    t = np.linspace(0.0, math.pi, 19)[1:-1]
    top = skull_top(identity)
    w = identity.cranium_width + 0.12 * abs(frame.turn)
    uv = np.stack([(1.0 + (w - 1.0) * np.sin(t)) * np.cos(t), -top * np.sin(t)], axis=1)
    skull = frame.to_px(uv, -0.3 * np.sin(t))
    return np.concatenate([jaw, skull])


def draw_head(canvas: Canvas, identity: Identity, face: np.ndarray, frame: HeadFrame) -> None:
    """The skin of the head with its outline and cheeks."""
    outline = head_outline(identity, face, frame)
    canvas.fill(outline, identity.skin, FACE)
    canvas.line(outline, _skin_dark(identity, 0.62), canvas.px(0.8), closed=True)
    if identity.blush > 0.05:
        blush = mix_colour(identity.skin, (226, 104, 110), 0.3 * identity.blush)
        angle = math.degrees(math.atan2(frame.right[1], frame.right[0]))
        for jaw_i in (3, 13):
            centre = face[jaw_i] + (face[30] - face[jaw_i]) * 0.42
            canvas.ellipse(centre, (0.2 * frame.sx, 0.12 * frame.sy), angle, blush)


def draw_brows(canvas: Canvas, identity: Identity, face: np.ndarray, frame: HeadFrame) -> None:
    """Both brows as tapered ribbons, thickest at the inner end."""
    thick = identity.brow_thickness * frame.sx * 2.0
    s = np.linspace(0.0, 1.0, 13)
    profile = thick * (0.45 + 0.55 * s) * np.sqrt(np.sin(np.pi * np.clip(s * 0.92 + 0.04, 0, 1)))
    for idx, inner_last in ((slice(17, 22), True), (slice(22, 27), False)):
        curve = smooth(face[idx], 3)
        widths = profile if inner_last else profile[::-1]
        canvas.fill(ribbon(curve, widths * 0.5), identity.brow_colour)


def _interp_curve(x: np.ndarray, curve_x: np.ndarray, curve_y: np.ndarray) -> np.ndarray:
    order = np.argsort(curve_x)
    return np.interp(x, curve_x[order], curve_y[order])


def draw_eye(canvas: Canvas, identity: Identity, pts: np.ndarray, iris_at: np.ndarray) -> None:
    """One eye from its 6 iBUG points ``[6, 2]`` (corners 0 and 3, upper lid 1-2, lower lid 4-5).

    The sclera, iris and pupil fill the opening between the lids; a blink (lids
    together) leaves only the closed lash line.
    """
    upper = smooth(pts[[0, 1, 2, 3]], 4)
    lower = smooth(pts[[0, 5, 4, 3]], 4)
    axis = pts[3] - pts[0]
    eye_w = max(float(np.hypot(*axis)), 1e-3)
    ex = axis / eye_w
    ey = np.array([-ex[1], ex[0]])
    origin = pts[0]
    up_l = np.stack([(upper - origin) @ ex, (upper - origin) @ ey], axis=1)
    lo_l = np.stack([(lower - origin) @ ex, (lower - origin) @ ey], axis=1)
    opening = float((lo_l[:, 1] - up_l[:, 1]).max())
    lash = shade_colour(identity.brow_colour, 0.55)
    lash_w = max(1, int(round(eye_w / 9.0)))
    skin_line = _skin_dark(identity, 0.7)
    crease = upper - ey * eye_w * 0.16
    canvas.line(crease[2:-2], _skin_dark(identity, 0.8), max(1, lash_w - 1))
    if opening < 0.08 * eye_w:  # closed: one lash line along the middle
        middle = (upper + lower) * 0.5 + ey * eye_w * 0.02
        canvas.line(middle, lash, lash_w)
        return
    canvas.fill(np.concatenate([upper, lower[::-1]]), _SCLERA)
    # iris and pupil: circles clipped to the opening between the lids
    centre_l = np.array([(iris_at - origin) @ ex, (iris_at - origin) @ ey])
    r = 0.34 * eye_w * identity.iris_scale
    centre_l[0] = np.clip(centre_l[0], 0.3 * r, eye_w - 0.3 * r)
    t = np.linspace(0.0, 2 * math.pi, 20, endpoint=False)
    for radius, colour in ((r, identity.iris), (0.45 * r, (16, 12, 12))):
        x = np.clip(centre_l[0] + radius * np.cos(t), 0.0, eye_w)
        y = np.clip(centre_l[1] + radius * np.sin(t), _interp_curve(x, up_l[:, 0], up_l[:, 1]),
                    _interp_curve(x, lo_l[:, 0], lo_l[:, 1]))
        canvas.fill(origin + x[:, None] * ex + y[:, None] * ey, colour)
    if opening > 0.3 * eye_w:
        glint = origin + (centre_l[0] - 0.35 * r) * ex + (centre_l[1] - 0.35 * r) * ey
        canvas.circle(glint, max(0.5, 0.18 * r), (255, 255, 255))
    # the upper lid's shadow on the eyeball, then the lash line and the lower lid
    shadow = upper + (lower - upper) * 0.2
    canvas.fill(np.concatenate([upper, shadow[::-1]]), (150, 140, 140))
    canvas.line(upper, lash, lash_w)
    canvas.line(lower[1:-1], skin_line, 1)


def draw_nose(canvas: Canvas, identity: Identity, face: np.ndarray, frame: HeadFrame) -> None:
    """A soft shadow down one side of the bridge, the nose's base and the nostrils."""
    side = -1.0 if frame.turn > 0 else 1.0  # shade the side the nose turns away from
    bridge = face[28:31] + frame.right * side * frame.sx * 0.1
    canvas.line(bridge, _skin_dark(identity, 0.9), max(1, int(round(frame.sx / 24))))
    base = smooth(face[31:36], 3)
    canvas.line(base, _skin_dark(identity, 0.66), max(1, int(round(frame.sx / 28))))
    for i in (32, 34):
        canvas.circle(face[i] - frame.down * frame.sy * 0.02, max(0.5, 0.045 * frame.sx), _skin_dark(identity, 0.42))


def draw_mouth(canvas: Canvas, identity: Identity, face: np.ndarray, frame: HeadFrame) -> None:
    """Lips from the 20 lip points; when they part, the cavity, tongue and teeth fill the opening."""
    upper_outer = smooth(face[48:55], 3)
    lower_outer = smooth(face[[54, 55, 56, 57, 58, 59, 48]], 3)
    upper_inner = smooth(face[60:65], 3)
    lower_inner = smooth(face[[60, 67, 66, 65, 64]], 3)
    gap_vec = lower_inner - upper_inner
    gap = np.hypot(gap_vec[:, 0], gap_vec[:, 1])
    mouth_w = max(float(np.hypot(*(face[64] - face[60]))), 1.0)
    s = np.linspace(0.0, 1.0, len(upper_inner))
    taper = np.sin(np.pi * s)
    if gap.max() > 0.6:
        canvas.fill(np.concatenate([upper_inner, lower_inner[::-1]]), _CAVITY, MOUTH)
        safe = np.maximum(gap, 1e-3)
        tongue_top = lower_inner - gap_vec * (0.42 * taper**0.7)[:, None]
        canvas.fill(np.concatenate([lower_inner, tongue_top[::-1]]), _TONGUE)
        lower_teeth = lower_inner - gap_vec * (np.clip(0.055 * mouth_w / safe, 0.0, 0.22) * taper**2)[:, None]
        canvas.fill(np.concatenate([lower_inner, lower_teeth[::-1]]), shade_colour(_TEETH, 0.9))
        upper_teeth = upper_inner + gap_vec * (np.clip(0.13 * mouth_w / safe, 0.0, 0.55) * taper**0.6)[:, None]
        canvas.fill(np.concatenate([upper_inner, upper_teeth[::-1]]), _TEETH)
        if mouth_w > 18 and gap.max() > 3:
            for k in (4, 6, 8):  # gaps between the front teeth
                a, b = upper_inner[k], upper_teeth[k]
                canvas.line(np.stack([a, a + (b - a) * 0.8]), shade_colour(_TEETH, 0.72), 1)
    lip_dark = shade_colour(identity.lips, 0.86)
    canvas.fill(np.concatenate([upper_outer, upper_inner[::-1]]), lip_dark, MOUTH)
    canvas.fill(np.concatenate([lower_outer, lower_inner]), identity.lips, MOUTH)
    highlight = lower_outer[6:13] + (face[66] - face[57]) * 0.45
    canvas.line(highlight, mix_colour(identity.lips, (255, 255, 255), 0.22), max(1, int(round(mouth_w / 16))))
    canvas.line(upper_inner, shade_colour(identity.lips, 0.45), max(1, int(round(mouth_w / 28))))
    canvas.line(upper_outer, shade_colour(identity.lips, 0.7), 1)


def draw_glasses(canvas: Canvas, identity: Identity, face: np.ndarray, frame: HeadFrame) -> None:
    """Spectacle frames around both eyes, with the bridge and the temples."""
    glasses = identity.glasses
    if glasses is None:
        return
    width = max(1, int(round(glasses.thickness * frame.sx * 2.0)))
    t = np.linspace(0.0, 2 * math.pi, 24, endpoint=False)
    rims = []
    for eye in (face[36:42], face[42:48]):
        centre = eye.mean(axis=0) - frame.down * frame.sy * 0.02
        rx, ry = 0.34 * frame.sx, 0.26 * frame.sy
        if glasses.shape == "round":
            ux, uy = np.cos(t), np.sin(t)
        else:  # a rounded rectangle (superellipse)
            ux = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** 0.45
            uy = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** 0.45
        rim = centre + (rx * ux)[:, None] * frame.right + (ry * uy)[:, None] * frame.down
        canvas.line(rim, glasses.colour, width, closed=True)
        rims.append((centre, rx))
    (c_r, rx_r), (c_l, rx_l) = rims
    canvas.line(np.stack([c_r + frame.right * rx_r, c_l - frame.right * rx_l]), glasses.colour, width)
    for c, rx, side in ((c_r, rx_r, -1.0), (c_l, rx_l, 1.0)):
        start = c + side * frame.right * rx
        end = frame.to_px(np.array([side * 0.99, (start - frame.origin) @ frame.down / frame.sy]), -0.3)
        if side * frame.turn < 0.1 and (end - start) @ frame.right * side > 0:
            canvas.line(np.stack([start, end]), glasses.colour, width)
