"""Framing a portrait of any size and crop to the output frame.

The face lands where the motion rig puts it (:class:`inference.motion.rig.Framing`): the nose tip at the
framing's face centre, the face (cheek to cheek) at the framing's width. ``auto`` picks head-and-shoulders
when the photo covers it without being enlarged more than twice, zooms out towards half body when the face
is small in a large photo, and zooms in a little for photos cropped close around the face. A photo that
does not cover the requested framing is extended with a blurred mirror of itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.errors import ConfigError
from inference.motion.rig import Framing
from inference.render.photo_rig import topology as topo
from inference.render.photo_rig.detect import PortraitLandmarks

FRAMINGS = ("auto", "head-and-shoulders", "half-body")
#: The rig's jaw (cheek to cheek) spans this many face widths.
_JAW_PER_FACE_WIDTH = 0.94
#: How far the face may move from the framing's place (fraction of the frame) to avoid padding.
_MAX_SHIFT = 0.08
#: Padding (fraction of the frame) ``auto`` tolerates before it changes the zoom.
_AUTO_TOLERANCE = 0.01
#: ``auto`` zooms out rather than enlarge the photo more than this...
_MAX_ENLARGE = 2.0
#: ...and zooms in up to this face width (fraction of the frame) for photos cropped close around the face.
_MAX_AUTO_WIDTH = 0.40
#: Steepness applied to the segmentation mask's soft edge (its 0.5 level stays where it is).
_MASK_SHARPNESS = 3.0


@dataclass(frozen=True)
class FramedPortrait:
    """A portrait placed in the output frame, with its landmarks in output pixels.

    Attributes:
        rgb: uint8 ``[H, W, 3]`` framed portrait.
        mask: float32 ``[H, W]`` person mask, 0..1.
        face: float32 ``[478, 3]`` face mesh (x, y, depth) in output pixels.
        pose: float32 ``[33, 3]`` pose (x, y in output pixels, visibility).
        affine: float64 ``[2, 3]`` portrait pixels → output pixels.
        framing: the framing used ("head-and-shoulders", "half-body" or "custom" for an auto zoom between them).
        padded: fraction of the frame that had to be invented beyond the photo's edges.
    """

    rgb: np.ndarray
    mask: np.ndarray
    face: np.ndarray
    pose: np.ndarray
    affine: np.ndarray
    framing: str
    padded: float

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres in output pixels (the rig's unit of face size)."""
        right, left = topo.eye_centres(self.face)
        return float(np.linalg.norm(left - right))


def place_portrait(landmarks: PortraitLandmarks, size: tuple[int, int], framing: str) -> tuple[np.ndarray, str]:
    """The affine ``[2, 3]`` (portrait → output pixels) for ``framing``, and the framing's name.

    Raises:
        ConfigError: unknown framing name.
    """
    if framing not in FRAMINGS:
        raise ConfigError(f"photo-rig framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
    if framing != "auto":
        named = Framing.named(framing)
        affine = _affine(landmarks, size, named.face_center, named.face_width)
        return _shift_into_image(affine, landmarks, size), framing
    near, far = Framing.named("head-and-shoulders"), Framing.named("half-body")

    def candidate(width: float) -> np.ndarray:
        # 0 head-and-shoulders, 1 half body; closer than head-and-shoulders the face stays at its height
        t = max(0.0, (width - near.face_width) / (far.face_width - near.face_width))
        centre = (0.5, near.face_center[1] + t * (far.face_center[1] - near.face_center[1]))
        return _shift_into_image(_affine(landmarks, size, centre, width), landmarks, size)

    # head-and-shoulders when the photo has the pixels for it; wider when that would enlarge the photo
    # more than _MAX_ENLARGE; a little tighter when the photo is cropped too closely for it
    widths = [*np.linspace(near.face_width, far.face_width, 12), *np.linspace(near.face_width, _MAX_AUTO_WIDTH, 6)[1:]]
    fitting = [(w, a) for w, a in ((w, candidate(w)) for w in widths)
               if _overflow(a, landmarks.image_size, size) <= _AUTO_TOLERANCE]
    for w, a in fitting:
        if a[0, 0] <= _MAX_ENLARGE or w <= far.face_width + 1e-9:
            return a, _framing_name(w)
    if fitting:
        return fitting[0][1], _framing_name(fitting[0][0])
    return candidate(near.face_width), "head-and-shoulders"


def _framing_name(width: float) -> str:
    near, far = Framing.named("head-and-shoulders"), Framing.named("half-body")
    if abs(width - near.face_width) < 1e-6:
        return "head-and-shoulders"
    if abs(width - far.face_width) < 1e-6:
        return "half-body"
    return "custom"


def frame_portrait(rgb: np.ndarray, landmarks: PortraitLandmarks, size: tuple[int, int],
                   framing: str = "auto") -> FramedPortrait:
    """Place ``rgb`` (the portrait ``landmarks`` were found in) in a ``size`` = (width, height) frame."""
    affine, name = place_portrait(landmarks, size, framing)
    width, height = size
    image = _resample(rgb, affine, size)
    padded = _overflow(affine, landmarks.image_size, size)
    if padded > 0:
        image = _soften_padding(image, affine, landmarks.image_size, size)
    mask_affine = affine.copy()
    mask_affine[:, :2] /= landmarks.mask_scale
    mask = cv2.warpAffine(landmarks.mask.astype(np.float32) / 255.0, mask_affine, (width, height),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = np.clip((mask - 0.5) * _MASK_SHARPNESS + 0.5, 0.0, 1.0)
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    face = landmarks.face.astype(np.float64).copy()
    face[:, :2] = face[:, :2] @ affine[:, :2].T + affine[:, 2]
    face[:, 2] *= scale
    pose = landmarks.pose.astype(np.float64).copy()
    pose[:, :2] = pose[:, :2] @ affine[:, :2].T + affine[:, 2]
    return FramedPortrait(rgb=image, mask=mask.astype(np.float32), face=face.astype(np.float32),
                          pose=pose.astype(np.float32), affine=affine, framing=name, padded=padded)


def _affine(landmarks: PortraitLandmarks, size: tuple[int, int], centre: tuple[float, float],
            face_width: float) -> np.ndarray:
    width, height = size
    scale = face_width * _JAW_PER_FACE_WIDTH * min(width, height) / max(landmarks.face_width, 1.0)
    nose = landmarks.face[topo.NOSE_TIP, :2].astype(np.float64)
    tx, ty = centre[0] * width - scale * nose[0], centre[1] * height - scale * nose[1]
    return np.array([[scale, 0.0, tx], [0.0, scale, ty]])


def _shift_into_image(affine: np.ndarray, landmarks: PortraitLandmarks, size: tuple[int, int]) -> np.ndarray:
    """Move the frame (at most ``_MAX_SHIFT`` of its size along each axis) so it covers less beyond the photo."""
    out = affine.copy()
    scale = affine[0, 0]
    for axis in (0, 1):
        extent = size[axis]
        low = affine[axis, 2]  # output coordinate of the photo's left (top) edge
        high = affine[axis, 2] + scale * landmarks.image_size[axis]  # ... of its right (bottom) edge
        shift = 0.0
        if low > 0 and high > extent:
            shift = -min(low, high - extent)
        elif high < extent and low < 0:
            shift = min(extent - high, -low)
        out[axis, 2] += float(np.clip(shift, -_MAX_SHIFT * extent, _MAX_SHIFT * extent))
    return out


def _overflow(affine: np.ndarray, image_size: tuple[int, int], size: tuple[int, int]) -> float:
    """The largest distance (fraction of the frame) by which the frame reaches beyond the photo."""
    scale, (tx, ty) = affine[0, 0], affine[:, 2]
    w, h = image_size
    gaps = [tx, ty, size[0] - (tx + scale * w), size[1] - (ty + scale * h)]
    return max(0.0, max(gaps) / min(size))


def _resample(rgb: np.ndarray, affine: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` mapped through ``affine``: area-averaged when shrinking, bicubic when enlarging."""
    scale = affine[0, 0]
    source, a = rgb, affine.copy()
    if scale < 0.8:  # shrink most of the way with area averaging (no aliasing), finish with a small warp
        factor = scale / 0.9
        source = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        a[:, :2] /= factor
    flags = cv2.INTER_CUBIC if a[0, 0] > 1.05 else cv2.INTER_LINEAR
    return cv2.warpAffine(source, a, size, flags=flags, borderMode=cv2.BORDER_REFLECT_101)


def _soften_padding(image: np.ndarray, affine: np.ndarray, image_size: tuple[int, int],
                    size: tuple[int, int]) -> np.ndarray:
    """Blur what lies beyond the photo's edges (``image`` holds a mirror of the photo there) so it reads as an
    out-of-focus continuation of the backdrop, fading in from the photo's edge."""
    inside = cv2.warpAffine(np.ones((image_size[1], image_size[0]), np.float32), affine, size,
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    sigma = 0.04 * min(size)
    blurred = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    ramp = cv2.GaussianBlur(inside, (0, 0), sigma / 3)
    ramp = np.minimum(ramp, inside)[..., None]
    return (image * ramp + blurred * (1.0 - ramp) + 0.5).astype(np.uint8)
