"""The mouth interior drawn where the lips part: a dark cavity, the upper teeth and a hint of tongue.

Colours come from the portrait (the lips' colour darkened for the cavity and the tongue; the portrait's own
teeth if the photo shows them, else a tooth colour scaled to the face's lighting), so the interior sits in
the picture's light. Everything is drawn per frame in a small box around the mouth, in a mouth-aligned
frame, with analytic anti-aliased edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.render.photo_rig import topology as topo
from inference.render.photo_rig.framing import FramedPortrait
from inference.render.photo_rig.warp import MouthOpening

#: Visible height of the upper teeth below the upper lip, as a fraction of the mouth's width.
TEETH_HEIGHT = 0.12
#: How much of the upper teeth shows under the lifted upper lip in a full F/V tuck, as a fraction of the mouth's
#: width.
BITE_DEPTH = 0.07
#: Tooth boundaries (distance from the midline, fraction of the mouth's width): incisors, canines, premolars.
TOOTH_EDGES = (0.0, 0.17, 0.30, 0.44)
_DEFAULT_TEETH = np.array([240.0, 228.0, 204.0])  # ivory, in the light of a face of _SKIN_REFERENCE brightness
_SKIN_REFERENCE = 215.0  # brightest channel of well-lit skin


@dataclass(frozen=True)
class MouthColours:
    """RGB float colours of the mouth interior for one portrait."""

    cavity: np.ndarray
    teeth: np.ndarray
    tongue: np.ndarray


def mouth_colours(framed: FramedPortrait) -> MouthColours:
    """Interior colours matched to the portrait's lips, teeth and lighting."""
    rgb = framed.rgb
    face = framed.face[:, :2]
    lips = np.zeros(rgb.shape[:2], np.uint8)
    for outer, inner in ((topo.OUTER_UPPER_LIP, topo.INNER_UPPER_LIP), (topo.OUTER_LOWER_LIP, topo.INNER_LOWER_LIP)):
        poly = np.vstack([face[list(outer)], face[list(reversed(inner))]])
        cv2.fillPoly(lips, [np.round(poly).astype(np.int32)], 1)
    lip = rgb[lips > 0].reshape(-1, 3).astype(np.float64)
    lip_colour = np.median(lip, axis=0) if len(lip) else np.array([170.0, 95.0, 90.0])
    skin = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(skin, [np.round(face[list(topo.FACE_OVAL)]).astype(np.int32)], 1)
    skin[lips > 0] = 0
    skin_colour = np.median(rgb[skin > 0].reshape(-1, 3), axis=0) if (skin > 0).any() else None
    # how brightly the face is lit: its brightest channel, so a warm colour cast does not read as shadow
    light = float(skin_colour.max()) if skin_colour is not None else _SKIN_REFERENCE
    light = float(np.clip(light / _SKIN_REFERENCE, 0.5, 1.15))
    teeth = _DEFAULT_TEETH * light * 0.9  # inside the mouth, a little shaded
    if skin_colour is not None:  # take on the photo's colour cast, as its real teeth would
        cast = np.clip(skin_colour * (teeth.mean() / max(float(skin_colour.mean()), 1.0)), 0.0, 255.0)
        teeth = 0.65 * teeth + 0.35 * cast
    opening = np.zeros(rgb.shape[:2], np.uint8)
    poly = np.vstack([face[list(topo.INNER_UPPER_LIP)], face[list(reversed(topo.INNER_LOWER_LIP))]])
    cv2.fillPoly(opening, [np.round(poly).astype(np.int32)], 1)
    inside = rgb[opening > 0].reshape(-1, 3).astype(np.float64)
    if len(inside) >= 12:  # the photo shows the mouth open: use its brightest pixels (teeth) if they are pale
        luma = inside.mean(axis=1)
        bright = inside[luma >= np.percentile(luma, 75)]
        candidate = np.median(bright, axis=0)
        if candidate.mean() > 0.75 * teeth.mean() and candidate.max() - candidate.min() < 70:
            teeth = candidate
    cavity = lip_colour * np.array([0.22, 0.15, 0.15])
    tongue = 0.5 * lip_colour * np.array([0.8, 0.5, 0.5]) + 0.5 * cavity
    return MouthColours(cavity=cavity, teeth=teeth, tongue=tongue)


class MouthInterior:
    """Draws the interior of the opened mouth onto frames of one portrait."""

    def __init__(self, colours: MouthColours, softness: float) -> None:
        self.colours = colours
        self.softness = softness

    def draw(self, frame: np.ndarray, opening: MouthOpening) -> None:
        """Paint the interior into ``frame`` (uint8 ``[H, W, 3]``, in place) where ``opening`` is open, and the
        upper teeth under the lifted upper lip where the lower lip is drawn up under them (``opening.bite``)."""
        top, bottom, teeth_top = (c.astype(np.float64) for c in (opening.top, opening.bottom, opening.teeth_top))
        left = top[0]
        axis = top[-1] - left
        length = float(np.linalg.norm(axis))
        if length < 2.0:
            return
        axis /= length
        normal = np.array([-axis[1], axis[0]])
        opened = float(np.max((bottom - top) @ normal)) >= 0.25
        bite = BITE_DEPTH * length * opening.bite  # pixels of upper teeth the lifted upper lip shows
        if not opened and bite < 0.3:
            return
        height, width = frame.shape[:2]
        allpts = np.vstack([top, bottom, teeth_top, teeth_top - bite * normal])
        x0, y0 = np.floor(allpts.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(allpts.max(axis=0)).astype(int) + 3
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        px, py = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
        dx, dy = px - left[0], py - left[1]
        a = (dx * axis[0] + dy * axis[1]) / length  # 0..1 corner to corner
        b = dx * normal[0] + dy * normal[1]  # pixels down the mouth

        def curve(pts: np.ndarray) -> np.ndarray:
            ca = ((pts - left) @ axis) / length
            cb = (pts - left) @ normal
            order = np.argsort(ca)
            return np.interp(a, ca[order], cb[order])

        top_b, bottom_b, teeth_b = curve(top), curve(bottom), curve(teeth_top)
        inside_a = (a > 0.0) & (a < 1.0)
        across = np.clip(2.0 * a - 1.0, -1.0, 1.0)  # -1..1 corner to corner
        roi = frame[y0:y1, x0:x1].astype(np.float64)
        if opened:
            # reaches half a pixel above the top edge, over the seam's last row of lip pixels
            alpha = np.clip(np.minimum(b - top_b + 0.5, bottom_b - b) + 0.5, 0.0, 1.0) * inside_a
            colour = self._cavity(across, b, top_b, bottom_b)
            colour = self._with_tongue(colour, across, b, top_b, bottom_b)
            colour = self._with_teeth(colour, across, b, teeth_b, length)
            roi = self._over(roi, colour, alpha)
        if bite >= 0.3:
            # the upper lip lifts off the teeth (most in front), which rest on the drawn-up lower lip
            roots = teeth_b - bite * _front_profile(across)
            alpha = np.clip(np.minimum(b - roots, teeth_b - b) + 0.5, 0.0, 1.0) * inside_a
            teeth = self._teeth(across, b, roots, teeth_b - roots, length, root_shade=0.9)
            roi = self._over(roi, teeth, alpha)
        frame[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)

    def _over(self, roi: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """``colour`` laid over ``roi`` with coverage ``alpha``, both as soft as the photo around them."""
        if self.softness > 0.3:
            colour = cv2.GaussianBlur(colour, (0, 0), self.softness)
            alpha = cv2.GaussianBlur(alpha, (0, 0), self.softness)
        alpha = alpha[..., None]
        return roi * (1.0 - alpha) + colour * alpha

    def _cavity(self, across: np.ndarray, b: np.ndarray, top_b: np.ndarray, bottom_b: np.ndarray) -> np.ndarray:
        """Dark: darkest under the upper teeth and towards the corners, a little light near the lower lip."""
        depth = np.clip((b - top_b) / np.maximum(bottom_b - top_b, 1.0), 0.0, 1.0)
        shade = (0.55 + 0.45 * (1.0 - across**2)) * (0.6 + 0.55 * depth**2)
        return self.colours.cavity[None, None, :] * shade[..., None]

    def _with_tongue(self, colour: np.ndarray, across: np.ndarray, b: np.ndarray, top_b: np.ndarray,
                     bottom_b: np.ndarray) -> np.ndarray:
        """A tongue resting behind the lower teeth: an ellipse rising from the lower lip, showing more as the
        mouth opens wider."""
        opening = np.maximum(bottom_b - top_b, 0.0)
        middle = float(opening[:, opening.shape[1] // 2].max()) if opening.size else 0.0
        radius_y = max(0.45 * middle, 0.5)
        centre_b = bottom_b + 0.2 * radius_y
        r = np.sqrt((across / 0.62) ** 2 + ((b - centre_b) / radius_y) ** 2)
        cover = np.clip((1.0 - r) * radius_y / 1.5, 0.0, 1.0)
        lit = 0.7 + 0.3 * np.clip((centre_b - b) / radius_y, 0.0, 1.0)  # its top catches a little light
        tongue = self.colours.tongue[None, None, :] * (lit * (1.0 - 0.35 * across**2))[..., None]
        return colour * (1.0 - cover[..., None]) + tongue * cover[..., None]

    def _with_teeth(self, colour: np.ndarray, across: np.ndarray, b: np.ndarray, teeth_b: np.ndarray,
                    length: float) -> np.ndarray:
        """Upper teeth hanging from the upper lip into the opening."""
        height = TEETH_HEIGHT * length * _front_profile(across)
        cover = np.clip(teeth_b + height - b + 0.5, 0.0, 1.0) * (height > 0.3)
        teeth = self._teeth(across, b, teeth_b, height, length, root_shade=0.72)
        return colour * (1.0 - cover[..., None]) + teeth * cover[..., None]

    def _teeth(self, across: np.ndarray, b: np.ndarray, root_b: np.ndarray, height: np.ndarray, length: float,
               root_shade: float) -> np.ndarray:
        """The upper teeth's colour from ``root_b`` (under the upper lip, ``root_shade`` as bright as their edges)
        down ``height`` pixels: darker towards the corners, with faint gaps between them."""
        side = np.clip(1.0 - 0.9 * across**2, 0.15, 1.0)  # only the front teeth are in the light
        # the upper lip shades the teeth's roots; their edges catch the light
        down = root_shade + (1.0 - root_shade) * np.clip((b - root_b) / np.maximum(height, 1.0), 0.0, 1.0)
        offset = np.abs(across) * 0.5 * length  # pixels from the midline
        gaps = np.ones_like(offset)
        for edge in TOOTH_EDGES:
            gaps -= 0.16 * np.clip(1.0 - np.abs(offset - edge * length) / 0.7, 0.0, 1.0)
        return self.colours.teeth[None, None, :] * (side * down * gaps)[..., None]


def _front_profile(across: np.ndarray) -> np.ndarray:
    """How far the upper teeth show at ``across`` (-1..1 corner to corner) relative to the front ones."""
    return np.sqrt(np.clip(1.0 - 1.1 * across**2, 0.0, 1.0))
