"""Studio backdrops: a two-colour gradient, a few soft shapes and a gentle vignette."""

from __future__ import annotations

import cv2
import numpy as np

from training.synthetic.curves import ONE, SHIFT
from training.synthetic.identity import Background


def render_background(background: Background, size: int) -> np.ndarray:
    """The backdrop as uint8 RGB ``[size, size, 3]`` (drawn once per identity and size)."""
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    if background.kind == "vertical":
        ramp = np.repeat(t[:, None], size, axis=1)
    elif background.kind == "diagonal":
        ramp = (t[:, None] + t[None, :]) * 0.5
    else:  # radial: light centre behind the head
        yy, xx = np.meshgrid(t - 0.35, t - 0.5, indexing="ij")
        ramp = np.clip(np.sqrt(xx * xx + yy * yy) * 1.4, 0.0, 1.0)
    top = np.asarray(background.top, dtype=np.float32)
    bottom = np.asarray(background.bottom, dtype=np.float32)
    img = top + (bottom - top) * ramp[..., None]
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    for kind, cx, cy, w, h, colour in background.shapes:
        c = (int(cx * size * ONE), int(cy * size * ONE))
        if kind == "disc":
            cv2.circle(canvas, c, int(w * 0.5 * size * ONE), colour, -1, cv2.LINE_AA, SHIFT)
        elif kind == "panel":
            x0, y0 = int((cx - w / 2) * size), int((cy - h / 2) * size)
            cv2.rectangle(canvas, (x0, y0), (x0 + int(w * size), y0 + int(h * size)), colour, -1, cv2.LINE_AA)
        else:  # shelf: a long horizontal band
            y0 = int(cy * size)
            cv2.rectangle(canvas, (-1, y0), (size, y0 + max(2, int(0.04 * h * size))), colour, -1, cv2.LINE_AA)
    # depth of field: the backdrop is slightly out of focus; then a soft vignette
    canvas = cv2.GaussianBlur(canvas, (0, 0), max(0.6, size / 256.0))
    yy, xx = np.meshgrid(t - 0.5, t - 0.45, indexing="ij")
    vignette = 1.0 - 0.28 * np.clip(xx * xx + yy * yy, 0.0, 0.5) * 2.0
    return np.clip(canvas.astype(np.float32) * vignette[..., None], 0, 255).astype(np.uint8)
