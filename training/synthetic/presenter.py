"""A synthetic presenter: one identity drawn from DWPose-134 keypoint frames.

    identity = sample_identity(1234)
    presenter = SyntheticPresenter(identity, size=256)
    frame = presenter.render(keypoints)      # RenderedFrame(rgb [256, 256, 3] uint8, masks [256, 256] uint8)
    portrait = presenter.reference()         # the same person in a neutral pose, rgb uint8

The drawing follows the keypoints it is given, whatever their confidence (points
outside the frame still place the body); apply the identity's proportions to a
keypoint stream first (:meth:`SyntheticPresenter.personalise`) so its face and body
are that person's. Rendering is deterministic: the same identity and keypoints
give the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference import keypoints as kp
from inference.motion.rig import Framing, RigControls, pose_keypoints
from training.synthetic.background import render_background
from training.synthetic.body import BodyFrame, draw_arm, draw_collar, draw_torso
from training.synthetic.face import (
    draw_brows,
    draw_ears,
    draw_eye,
    draw_glasses,
    draw_head,
    draw_mouth,
    draw_neck,
    draw_nose,
)
from training.synthetic.hair import build_hair, draw_hair_layer, draw_strands
from training.synthetic.hands import draw_hand
from training.synthetic.head_frame import head_frame
from training.synthetic.identity import Identity
from training.synthetic.paint import LEFT_HAND, RIGHT_HAND, Canvas
from training.synthetic.proportions import apply_proportions

#: Smallest frame size the drawing is designed for.
MIN_SIZE = 64
#: Margin added around the mouth and hand masks, in pixels at 256 px.
MASK_MARGIN_AT_256 = 2.0


@dataclass(frozen=True)
class RenderedFrame:
    """One rendered frame.

    Attributes:
        rgb: uint8 ``[S, S, 3]``.
        masks: uint8 ``[S, S]`` region bit fields (see :mod:`training.synthetic.regions`).
    """

    rgb: np.ndarray
    masks: np.ndarray


class SyntheticPresenter:
    """Draws one identity at one square size.

    Args:
        identity: who to draw (see :func:`training.synthetic.identity.sample_identity`).
        size: frame side in pixels (≥ 64; 256 and 512 are the sizes the project trains at).
    """

    def __init__(self, identity: Identity, size: int = 256) -> None:
        if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
            raise ValueError(f"size must be a whole number of pixels ≥ {MIN_SIZE}, got {size!r}")
        self.identity = identity
        self.size = int(size)
        self._background = render_background(identity.background, self.size)
        self._hair = build_hair(identity)
        self._reference_poses: dict[str, np.ndarray] = {}
        self._references: dict[str, RenderedFrame] = {}

    def personalise(self, keypoints: np.ndarray) -> np.ndarray:
        """``keypoints`` ``[..., 134, 3]`` with this person's face and body proportions (float32)."""
        return apply_proportions(keypoints, self.identity.proportions)

    def render(self, keypoints: np.ndarray) -> RenderedFrame:
        """Draw one keypoint frame ``[134, 3]`` (x, y normalised to the frame)."""
        kps = np.asarray(keypoints, dtype=np.float64)
        if kps.shape != (kp.NUM_KEYPOINTS, 3) or not np.isfinite(kps).all():
            raise ValueError(f"keypoints must be a finite (134, 3) DWPose-134 frame, got shape {kps.shape}")
        ident = self.identity
        xy = kps[:, :2] * self.size
        face = xy[kp.FACE]
        head = head_frame(face)
        body = BodyFrame(xy[kp.BODY])
        canvas = Canvas(self._background)
        hair = self._hair

        draw_hair_layer(canvas, hair.back, head)
        draw_torso(canvas, ident, body)
        draw_neck(canvas, ident, face, head, body.neck)
        draw_collar(canvas, ident, body, ident.neck_width * head.sx * 2.0)
        draw_ears(canvas, ident, head)
        draw_hair_layer(canvas, hair.sides, head)
        draw_head(canvas, ident, face, head)
        draw_brows(canvas, ident, face, head)
        draw_eye(canvas, ident, face[36:42], xy[kp.R_EYE])
        draw_eye(canvas, ident, face[42:48], xy[kp.L_EYE])
        draw_nose(canvas, ident, face, head)
        draw_mouth(canvas, ident, face, head)
        draw_hair_layer(canvas, hair.cap, head)
        draw_strands(canvas, hair.strands, head)
        draw_glasses(canvas, ident, face, head)
        draw_arm(canvas, ident, body, body.r_shoulder, xy[kp.R_ELBOW], xy[kp.R_WRIST])
        draw_arm(canvas, ident, body, body.l_shoulder, xy[kp.L_ELBOW], xy[kp.L_WRIST])
        draw_hand(canvas, ident, xy[kp.RIGHT_HAND], RIGHT_HAND)
        draw_hand(canvas, ident, xy[kp.LEFT_HAND], LEFT_HAND)
        canvas.shade(ident.light_angle, ident.shading)
        return RenderedFrame(rgb=canvas.rgb, masks=canvas.masks(MASK_MARGIN_AT_256 * canvas.unit))

    def render_sequence(self, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``[T, 134, 3]`` frames; returns rgb uint8 ``[T, S, S, 3]`` and masks uint8 ``[T, S, S]``."""
        frames = [self.render(k) for k in np.asarray(keypoints)]
        if not frames:
            return (np.zeros((0, self.size, self.size, 3), np.uint8), np.zeros((0, self.size, self.size), np.uint8))
        return np.stack([f.rgb for f in frames]), np.stack([f.masks for f in frames])

    def reference_keypoints(self, framing: str = "half-body") -> np.ndarray:
        """The neutral pose (the rig's rest pose in ``framing``) with this person's proportions: ``[134, 3]``
        (nothing is drawn: clips draw their reference through their own camera)."""
        if framing not in self._reference_poses:
            self._reference_poses[framing] = self.personalise(pose_keypoints(RigControls(), Framing.named(framing)))
        return self._reference_poses[framing]

    def reference(self, framing: str = "half-body") -> np.ndarray:
        """The neutral reference portrait: uint8 ``[S, S, 3]`` (mouth closed, eyes open, arms resting)."""
        if framing not in self._references:
            self._references[framing] = self.render(self.reference_keypoints(framing))
        return self._references[framing].rgb
