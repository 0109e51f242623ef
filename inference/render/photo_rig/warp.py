"""Per-frame warping of the framed portrait: forward fields → backward map → remap → composite.

For each frame:

1. the forward displacement of the portrait (upper side of the mouth seam) is the weighted sum of the
   deformation's fields, on a grid ``CELL`` pixels apart;
2. it is inverted on that grid by fixed-point iteration (``s = x - D(s)``, exact for the smooth, gently
   sloped fields of a face) and upsampled to a per-pixel backward map;
3. around the mouth, the lower layer (lower lip and chin, which move further) is inverted as well and
   chosen below the opened seam;
4. around each closing eye, the upper lid skin is stretched down over the eye (an analytic backward map,
   supersampled so the lid edge is anti-aliased);
5. one ``cv2.remap`` of the person layer (the portrait premultiplied by its person mask, with the mask),
   laid over the still background plate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from inference.render.photo_rig.background import background_plate
from inference.render.photo_rig.controls import TUCK_FULL
from inference.render.photo_rig.deformation import (
    CELL,
    FIELD_CONTROLS,
    GRID_OFFSET,
    Deformation,
    EyeLid,
    grid_positions,
    sample_field,
)
from inference.render.photo_rig.framing import FramedPortrait

#: Fixed-point iterations of the inversion (the error shrinks by the field's slope, < 0.5, each time).
INVERSION_STEPS = 5
#: Eye regions are warped at this many samples per pixel side, then averaged (anti-aliased lid edge).
EYE_SUPERSAMPLE = 2


@dataclass(frozen=True)
class MouthOpening:
    """Where the mouth opened in this frame, in output pixels (each ``[n, 2]``, corner to corner).

    Attributes:
        top: the upper edge of the new opening (the lower inner lip before it dropped, carried by the face).
        bottom: the lower edge (the lower inner lip now).
        teeth_top: the upper inner lip (the upper teeth hang from it).
        bite: how far the lower lip is drawn up under the upper teeth (F, V), 0 .. 1 of a full tuck: the teeth
            then show over its top.
    """

    top: np.ndarray
    bottom: np.ndarray
    teeth_top: np.ndarray
    bite: float = 0.0


@dataclass(frozen=True)
class LowerLayerWindow:
    """Where the mouth's lower layer is used in one frame.

    Attributes:
        grid_rows, grid_cols: the field-grid window it is computed on.
        rows, cols: the output pixels it may replace (the middle of that window).
        below: bool ``[rows, cols]``: the pixels below the opened seam, which take it.
    """

    grid_rows: slice
    grid_cols: slice
    rows: slice
    cols: slice
    below: np.ndarray


@dataclass(frozen=True)
class EyePatch:
    """An eye's region of the person layer, redrawn for a blink: uint8 RGBA (premultiplied) at ``rows, cols``."""

    rows: slice
    cols: slice
    rgba: np.ndarray


class PortraitWarper:
    """Moves one framed portrait by control values (see the module docstring)."""

    def __init__(self, framed: FramedPortrait, deformation: Deformation) -> None:
        self.deformation = deformation
        self.size = deformation.size
        width, height = self.size
        # the person layer, premultiplied by its mask: moving it and laying it over the plate is then
        # colour + plate·(1 - alpha), and bilinear sampling does not bleed background colour into its edge
        alpha = np.clip(framed.mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
        premultiplied = cv2.multiply(framed.rgb, cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB), scale=1.0 / 255.0)
        self.source = np.dstack([premultiplied, alpha])
        self.background = background_plate(framed.rgb, framed.mask, grow=0.08 * deformation.eye_distance)
        #: seconds spent in each step of the last :meth:`warp`
        self.timings: dict[str, float] = {}
        gx, gy = grid_positions(self.size)
        #: float32 ``[rows, cols, 2]`` pixel position of every grid point; ``[H, W, 2]`` of every pixel
        self.grid = np.stack([gx, gy], axis=-1).astype(np.float32)
        self._field = np.zeros((*gx.shape, 2), np.float32)
        self._full_shape = (gx.shape[0] * CELL, gx.shape[1] * CELL)
        px, py = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        self.pixels = np.stack([px, py], axis=-1)
        self._jaw = FIELD_CONTROLS.index("jaw")
        self._tuck = FIELD_CONTROLS.index("lip_tuck")

    def warp(self, field_values: np.ndarray, blinks: tuple[float, float]) -> tuple[np.ndarray, MouthOpening]:
        """The portrait moved by ``field_values`` (``[len(FIELD_CONTROLS)]``) with eyelids closed by ``blinks``.

        Returns:
            uint8 ``[H, W, 3]`` frame and where the mouth opened. ``timings`` then holds the seconds each step
            took.
        """
        width, height = self.size
        t0 = time.perf_counter()
        field = self.deformation.displacement(field_values, out=self._field)
        t1 = time.perf_counter()
        coarse = _invert(field, self.grid) - self.grid
        t2 = time.perf_counter()
        # upsample the backward *displacement* (not the positions): exact identity where nothing moves, even
        # at the frame's edges, where the resize repeats the last grid value
        full = cv2.resize(coarse, (self._full_shape[1], self._full_shape[0]), interpolation=cv2.INTER_LINEAR)
        backward = full[:height, :width] + self.pixels
        opening = self.mouth_opening(field_values)
        lower = self.lower_layer_window(field_values, opening)
        if lower is not None:
            self._open_mouth(backward, field, float(field_values[self._jaw]), lower)
        t3 = time.perf_counter()
        warped = cv2.remap(self.source, backward[..., 0], backward[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        t4 = time.perf_counter()
        for eye, amount in zip(self.deformation.eyes, blinks, strict=True):
            if amount > 0.01:
                patch = self.eye_patch(backward, eye, float(amount), field)
                if patch is not None:
                    warped[patch.rows, patch.cols] = patch.rgba
        t5 = time.perf_counter()
        frame = composite(warped, self.background)
        t6 = time.perf_counter()
        self.timings = {"fields": t1 - t0, "invert": t2 - t1, "map": t3 - t2, "remap": t4 - t3, "eyes": t5 - t4,
                        "composite": t6 - t5}
        return frame, opening

    def mouth_opening(self, values: np.ndarray) -> MouthOpening:
        """Where the mouth opens for field control ``values`` (``[len(FIELD_CONTROLS)]``)."""
        mouth = self.deformation.mouth
        top = mouth.seam + np.tensordot(values, mouth.seam_motion, axes=1)
        teeth = mouth.upper_lip + np.tensordot(values, mouth.upper_lip_motion, axes=1)
        bottom = top + float(values[self._jaw]) * mouth.seam_jump
        bite = float(np.clip(values[self._tuck] / TUCK_FULL, 0.0, 1.0))
        return MouthOpening(top=top, bottom=bottom, teeth_top=teeth, bite=bite)

    def lower_layer_window(self, values: np.ndarray, opening: MouthOpening) -> LowerLayerWindow | None:
        """Where the lower layer (the lower lip and chin, which moved further) replaces the upper one: the mouth's
        box grown by how far the lower lip moved, and in it the pixels below the opened seam; None while the
        mouth is closed."""
        if float(values[self._jaw]) <= 1e-4:
            return None
        mouth = self.deformation.mouth
        shift = np.vstack([opening.top - mouth.seam, opening.bottom - mouth.seam])
        x0, y0, x1, y1 = mouth.bounds
        x0 += float(shift[:, 0].min()) - CELL
        x1 += float(shift[:, 0].max()) + CELL
        y0 += float(shift[:, 1].min()) - CELL
        y1 += float(shift[:, 1].max()) + CELL
        rows, cols = self.deformation.grid_shape
        r0, r1 = max(0, int(y0 // CELL) - 1), min(rows, int(y1 // CELL) + 2)
        c0, c1 = max(0, int(x0 // CELL) - 1), min(cols, int(x1 // CELL) + 2)
        if r1 - r0 < 2 or c1 - c0 < 2:
            return None
        # keep the middle of the grid window (its edge rows are extrapolated by the upsampling)
        width, height = self.size
        py0, py1 = r0 * CELL + CELL, min(height, r1 * CELL - CELL)
        px0, px1 = c0 * CELL + CELL, min(width, c1 * CELL - CELL)
        if py1 <= py0 or px1 <= px0:
            return None
        below = _below_curve(self.pixels[py0:py1, px0:px1], opening.bottom, opening.top)
        return LowerLayerWindow(grid_rows=slice(r0, r1), grid_cols=slice(c0, c1), rows=slice(py0, py1),
                                cols=slice(px0, px1), below=below)

    def _open_mouth(self, backward: np.ndarray, field: np.ndarray, jaw: float, window: LowerLayerWindow) -> None:
        """Below the opened seam, map to the lower layer (the lower lip and chin, which moved further)."""
        mouth = self.deformation.mouth
        lower_field = field.copy()
        lower_field[mouth.jump.rows, mouth.jump.cols] += np.float32(jaw) * mouth.jump.values
        targets = self.grid[window.grid_rows, window.grid_cols]
        coarse = _invert(lower_field, targets) - targets
        rows, cols = coarse.shape[:2]
        lower = cv2.resize(coarse, (cols * CELL, rows * CELL), interpolation=cv2.INTER_LINEAR)
        top, left = window.grid_rows.start * CELL, window.grid_cols.start * CELL
        inner = (lower[window.rows.start - top:window.rows.stop - top, window.cols.start - left:window.cols.stop - left]
                 + self.pixels[window.rows, window.cols])
        region = backward[window.rows, window.cols]
        region[window.below] = inner[window.below]

    def eye_patch(self, backward: np.ndarray, eye: EyeLid, amount: float, field: np.ndarray) -> EyePatch | None:
        """The eye's region of the person layer redrawn with the upper lid lowered by ``amount`` (0..1),
        supersampled; None if the eye is off the frame."""
        x0, y0, x1, y1 = eye.bounds()
        centre = np.array([[(x0 + x1) / 2, (y0 + y1) / 2]], np.float32)
        shift = sample_field(field, centre)[0]
        height, width = backward.shape[:2]
        bx0 = int(max(0, np.floor(x0 + shift[0]) - 2))
        by0 = int(max(0, np.floor(y0 + shift[1]) - 2))
        bx1 = int(min(width, np.ceil(x1 + shift[0]) + 3))
        by1 = int(min(height, np.ceil(y1 + shift[1]) + 3))
        if bx1 - bx0 < 2 or by1 - by0 < 2:
            return None
        s = EYE_SUPERSAMPLE
        ys = (np.arange((by1 - by0) * s, dtype=np.float32) + 0.5) / s - 0.5 + by0
        xs = (np.arange((bx1 - bx0) * s, dtype=np.float32) + 0.5) / s - 0.5 + bx0
        gx, gy = np.meshgrid(xs, ys)
        source = cv2.remap(backward, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        source = _lower_lid(source, eye, amount)
        fine = cv2.remap(self.source, source[..., 0], source[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        rgba = cv2.resize(fine, (bx1 - bx0, by1 - by0), interpolation=cv2.INTER_AREA)
        return EyePatch(rows=slice(by0, by1), cols=slice(bx0, bx1), rgba=rgba)


def composite(person: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The person layer (uint8 RGBA, premultiplied) laid over ``background`` (uint8 RGB): uint8 RGB."""
    uncovered = cv2.cvtColor(cv2.bitwise_not(cv2.extractChannel(person, 3)), cv2.COLOR_GRAY2RGB)
    return cv2.add(cv2.cvtColor(person, cv2.COLOR_RGBA2RGB), cv2.multiply(background, uncovered, scale=1.0 / 255.0))


def _invert(field: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Source positions ``s`` with ``s + field(s) = targets`` (pixels), by fixed-point iteration.

    Args:
        field: float32 ``[rows, cols, 2]`` forward displacement on the grid.
        targets: float32 ``[h, w, 2]`` output pixel positions.
    """
    offset = np.float32(GRID_OFFSET)
    inv = np.float32(1.0 / CELL)
    src = targets.copy()
    for _ in range(INVERSION_STEPS):
        at = (src - offset) * inv
        d = cv2.remap(field, at[..., 0], at[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        src = targets - d
    return src


def _below_curve(pixels: np.ndarray, bottom: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Which pixels lie below the ``bottom`` curve (continued level beyond the mouth's corners)."""
    left, right = top[0], top[-1]
    axis = right - left
    length = float(np.linalg.norm(axis))
    if length < 1e-6:
        return np.zeros(pixels.shape[:2], bool)
    axis = axis / length
    normal = np.array([-axis[1], axis[0]], np.float32)
    d = pixels - left
    a = d @ axis
    b = d @ normal
    ca = (bottom - left) @ axis
    cb = (bottom - left) @ normal
    order = np.argsort(ca)
    return b > np.interp(a, ca[order], cb[order])


def _lower_lid(source: np.ndarray, eye: EyeLid, amount: float) -> np.ndarray:
    """Backward map through a blink: the upper lid slides down over the eye by ``amount`` (0..1).

    Its lash line moves down unchanged; the lid skin above the lashes stretches to cover the eye. ``source`` is
    float32 ``[h, w, 2]`` positions in the unblinking portrait; returns the same shape.
    """
    d = source - eye.origin.astype(np.float32)
    a = (d @ eye.axis.astype(np.float32)) / np.float32(eye.length)
    b = d @ eye.normal.astype(np.float32)
    upper = np.interp(a, eye.upper_a, eye.upper_b).astype(np.float32)
    lower = np.interp(a, eye.lower_a, eye.lower_b).astype(np.float32)
    drop = np.float32(0.97 * amount) * np.maximum(lower - upper, 0.0)  # how far the lid's edge moves down
    margin = upper + drop
    top = upper - np.float32(eye.stretch)
    lash = np.float32(eye.lash)
    inside = (a > 0) & (a < 1) & (b >= top) & (b < margin)
    # the skin comes from above the lashes' tips (2 lash widths up), so no lash is stretched into a streak
    skin = top + (b - top) * (upper - 2 * lash - top) / np.maximum(margin - lash - top, 1e-3)
    new_b = np.where(b >= margin - lash, b - drop, skin)
    shift = np.where(inside, new_b - b, 0.0).astype(np.float32)
    return source + shift[..., None] * eye.normal.astype(np.float32)
