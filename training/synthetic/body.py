"""The body: a rounded torso in a shirt (collar, optional stripes), and two arms in sleeves.

The torso is a smooth closed curve through the neck, the slope of the trapezius,
round shoulders, the armpits, a slight waist and the hips (below the frame when
the framing is tight). Arms are tapered capsules shoulder → elbow → wrist.
"""

from __future__ import annotations

import cv2
import numpy as np

from inference import keypoints as kp
from training.synthetic.curves import smooth
from training.synthetic.face import NECK_SHADE
from training.synthetic.identity import Identity
from training.synthetic.paint import ARMS, TORSO, Canvas, capsule_polygons, mix_colour, shade_colour


class BodyFrame:
    """Torso geometry of one frame, in pixels: neck, shoulders, hips, shoulder span and axes."""

    def __init__(self, body: np.ndarray) -> None:
        self.neck = body[kp.NECK]
        self.r_shoulder = body[kp.R_SHOULDER]
        self.l_shoulder = body[kp.L_SHOULDER]
        axis = self.l_shoulder - self.r_shoulder
        self.span = max(float(np.hypot(*axis)), 1.0)
        self.right = axis / self.span  # image-right along the shoulders
        self.down = np.array([-self.right[1], self.right[0]])
        hips = []
        for hip, shoulder in ((kp.R_HIP, self.r_shoulder), (kp.L_HIP, self.l_shoulder)):
            h = body[hip]
            if (h - shoulder) @ self.down < 0.8 * self.span:  # missing or implausible: hang it below the shoulder
                h = shoulder + self.down * 1.4 * self.span + (self.neck - shoulder) * 0.3
            hips.append(h)
        self.r_hip, self.l_hip = hips

    def at(self, base: np.ndarray, along: float, down: float) -> np.ndarray:
        """``base`` moved ``along`` the shoulder line and ``down`` from it, in shoulder spans."""
        return base + (along * self.right + down * self.down) * self.span


def torso_outline(frame: BodyFrame) -> np.ndarray:
    """Closed torso silhouette ``[n, 2]`` in pixels."""
    f = frame
    pts = []
    for side, shoulder, hip in ((-1.0, f.r_shoulder, f.r_hip), (1.0, f.l_shoulder, f.l_hip)):
        s = side
        pts.append([
            f.at(f.neck, s * 0.085, -0.17),
            f.at(f.neck, s * 0.25, -0.11),
            f.at(shoulder, -s * 0.06, -0.075),
            f.at(shoulder, s * 0.055, 0.02),
            f.at(shoulder, s * 0.045, 0.28),
            shoulder * 0.4 + hip * 0.6 - s * f.right * 0.05 * f.span,
            hip + s * f.right * 0.02 * f.span,
            hip + (hip - shoulder) * 0.9,
        ])
    right_side = np.array(pts[0])
    left_side = np.array(pts[1])[::-1]
    return smooth(np.concatenate([right_side, left_side]), 3, closed=True)


def draw_torso(canvas: Canvas, identity: Identity, frame: BodyFrame) -> None:
    """Fill the shirt (with stripes when the identity has them)."""
    outline = torso_outline(frame)
    canvas.fill(outline, identity.shirt, TORSO)
    if identity.stripes is not None:
        _draw_stripes(canvas, identity, frame, outline)
    canvas.line(outline, shade_colour(identity.shirt, 0.55), canvas.px(0.8), closed=True)


def _draw_stripes(canvas: Canvas, identity: Identity, frame: BodyFrame, outline: np.ndarray) -> None:
    h, w = canvas.height, canvas.width
    x0, y0 = np.floor(outline.min(axis=0)).astype(int)
    x1, y1 = np.ceil(outline.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1 + 1), min(h, y1 + 1)
    if x1 <= x0 or y1 <= y0:
        return
    roi = canvas.rgb[y0:y1, x0:x1]
    stripes = roi.copy()
    pitch = 0.09 * frame.span
    width = max(1, int(round(pitch * 0.35)))
    start = frame.at(frame.neck, 0.0, 0.12)
    for k in range(40):
        c = start + frame.down * pitch * k - np.array([x0, y0])
        if (c[1] - (y1 - y0)) > frame.span:
            break
        a = c - frame.right * 2 * frame.span
        b = c + frame.right * 2 * frame.span
        cv2.line(stripes, (int(a[0] * 16), int(a[1] * 16)), (int(b[0] * 16), int(b[1] * 16)), identity.stripes,
                 width, cv2.LINE_AA, 4)
    own = canvas.labels[y0:y1, x0:x1] == TORSO
    roi[own] = stripes[own]


def draw_collar(canvas: Canvas, identity: Identity, frame: BodyFrame, neck_width: float) -> None:
    """The neckline: a round trim, a V opening or a shirt collar; drawn over the neck's base."""
    f = frame
    half = neck_width * 0.5 / f.span
    trim = identity.shirt_trim
    band = max(1, int(round(0.025 * f.span)))
    if identity.collar == "round":
        t = np.linspace(0.0, np.pi, 13)
        arc = np.array([f.at(f.neck, -np.cos(a) * half * 1.3, -0.03 + np.sin(a) * 0.1) for a in t])
        canvas.fill(np.concatenate([arc, arc[::-1] - f.down * f.span * 0.15]), identity.shirt, TORSO)
        canvas.line(arc, trim, band)
    elif identity.collar == "v":
        tip = f.at(f.neck, 0.0, 0.2)
        left, right = f.at(f.neck, -half * 1.2, -0.08), f.at(f.neck, half * 1.2, -0.08)
        canvas.fill(np.array([left, right, tip]), shade_colour(identity.skin, NECK_SHADE), TORSO)
        canvas.line(np.array([left, tip, right]), trim, band)
    else:  # shirt collar: two wings and a button line
        colour = mix_colour(identity.shirt, (255, 255, 255), 0.15)
        edge = shade_colour(identity.shirt, 0.5)
        for s in (-1.0, 1.0):
            wing = np.array([f.at(f.neck, s * half * 1.15, -0.12), f.at(f.neck, s * 0.02, 0.1),
                             f.at(f.neck, s * (half * 1.2 + 0.09), 0.07)])
            canvas.fill(wing, colour, TORSO)
            canvas.line(wing, edge, 1, closed=True)
        placket = np.array([f.at(f.neck, 0.0, 0.1), f.at(f.neck, 0.0, 1.5)])
        canvas.line(placket, edge, 1)
        for k in range(1, 5):
            canvas.circle(f.at(f.neck, 0.018, 0.1 + 0.22 * k), max(0.6, 0.012 * f.span), trim)


def arm_radii(frame: BodyFrame) -> tuple[float, float, float]:
    """Arm half-widths at the shoulder, elbow and wrist, in pixels."""
    return 0.085 * frame.span, 0.066 * frame.span, 0.05 * frame.span


def draw_arm(canvas: Canvas, identity: Identity, frame: BodyFrame, shoulder: np.ndarray, elbow: np.ndarray,
             wrist: np.ndarray) -> None:
    """One arm: upper arm and forearm as tapered capsules, in long or short sleeves."""
    r_s, r_e, r_w = arm_radii(frame)
    skin = shade_colour(identity.skin, 0.96)
    shirt = identity.shirt
    edge_skin = shade_colour(identity.skin, 0.6)
    edge_shirt = shade_colour(shirt, 0.5)
    upper_colour = shirt
    fore_colour = shirt if identity.long_sleeves else skin

    def piece(a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: tuple[int, int, int],
              edge: tuple[int, int, int]) -> None:
        poly = capsule_polygons(a[None], b[None], np.array([ra]), np.array([rb]))
        canvas.capsules(poly, colour, ARMS)
        canvas.outlines(poly, edge, canvas.px(0.8))

    shoulder = shoulder + (elbow - shoulder) * min(0.4, 0.3 * r_s / max(float(np.hypot(*(elbow - shoulder))), 1.0))
    if identity.long_sleeves:
        piece(shoulder, elbow, r_s, r_e, upper_colour, edge_shirt)
        piece(elbow, wrist, r_e, r_w * 1.05, fore_colour, edge_shirt)
        cuff = wrist + (elbow - wrist) * 0.12
        piece(cuff, wrist, r_w * 1.1, r_w * 1.1, identity.shirt_trim, edge_shirt)
    else:
        piece(shoulder, elbow, r_s * 0.92, r_e, skin, edge_skin)
        piece(elbow, wrist, r_e, r_w, skin, edge_skin)
        sleeve_end = shoulder + (elbow - shoulder) * 0.5
        piece(shoulder, sleeve_end, r_s * 1.05, r_s * 0.98, upper_colour, edge_shirt)
