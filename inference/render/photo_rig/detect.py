"""Finding the face, the shoulders and the person in a portrait with mediapipe (0.10.21 legacy solutions).

Runs once per portrait (the result is cached, see :mod:`inference.render.photo_rig.cache`):

1. face detection (full-range model) finds every face, small ones included; the largest is used;
2. the face mesh (478 points, refined lips and irises) runs on a crop around that face, so faces that
   are small in a large photo still get precise landmarks;
3. pose finds the shoulders and elbows; selfie segmentation finds the person.

Portraits that cannot be animated raise :class:`PortraitFitError` with what to do; usable but weak ones
(several faces, a small or turned face) come back with notes for the user.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from types import ModuleType

import cv2
import numpy as np

from inference.render.photo_rig import topology as topo
from inference.render.photo_rig.errors import PortraitFitError

log = logging.getLogger(__name__)

#: Long side of the image the detectors see (mediapipe resizes to far less internally).
WORK_SIDE = 1280
#: Side of the square crop the face mesh runs on.
MESH_CROP_SIDE = 384
#: Faces narrower than this (cheek to cheek, original pixels) cannot be animated.
MIN_FACE_WIDTH = 40
#: Faces narrower than this are animated, with a note that the result will look soft.
SOFT_FACE_WIDTH = 96
#: Turned further than this (degrees) the face is refused; beyond TURNED_NOTE it is animated with a note.
MAX_YAW_DEGREES = 40.0
TURNED_NOTE_DEGREES = 22.0
#: Tilted further than this (degrees) the photo is probably sideways or upside down.
MAX_ROLL_DEGREES = 50.0
#: Pose landmarks the rig uses (mediapipe Pose indices).
POSE_NOSE, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER, POSE_LEFT_ELBOW, POSE_RIGHT_ELBOW = 0, 11, 12, 13, 14

_USE_A_PORTRAIT = "Use a photo with one face, large and facing the camera (a head-and-shoulders portrait works best)"


@dataclass(frozen=True)
class PortraitLandmarks:
    """What mediapipe found in one portrait, in the portrait's own pixel coordinates.

    Attributes:
        image_size: (width, height) of the portrait.
        face: float32 ``[478, 3]``: x, y in pixels; z (depth, smaller is nearer the camera) in the same pixel scale.
        pose: float32 ``[33, 3]``: x, y in pixels and visibility 0..1 (all zero when no body was found).
        mask: uint8 ``[h, w]`` person mask (255 = person) at ``mask_scale`` times the portrait's resolution.
        mask_scale: mask pixels per portrait pixel (≤ 1).
        faces_found: how many faces the detector saw (the largest one is ``face``).
        notes: sentences for the user about weaknesses of the portrait (empty when all is well).
    """

    image_size: tuple[int, int]
    face: np.ndarray
    pose: np.ndarray
    mask: np.ndarray
    mask_scale: float
    faces_found: int
    notes: tuple[str, ...] = ()

    @property
    def face_width(self) -> float:
        """Cheek-to-cheek width of the face in portrait pixels."""
        return float(np.linalg.norm(self.face[topo.CHEEK_LEFT, :2] - self.face[topo.CHEEK_RIGHT, :2]))


def detect_portrait(rgb: np.ndarray) -> PortraitLandmarks:
    """Find the face mesh, pose and person mask of an RGB uint8 ``[H, W, 3]`` portrait.

    Raises:
        PortraitFitError: no face, a face too small, turned to the side, or a sideways photo.
    """
    import mediapipe as mp

    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    work = rgb if scale == 1.0 else cv2.resize(rgb, (round(width * scale), round(height * scale)),
                                               interpolation=cv2.INTER_AREA)
    boxes = _face_boxes(mp, work)
    if not boxes:
        raise PortraitFitError(
            f"No face was found in the portrait ({width}x{height} pixels). {_USE_A_PORTRAIT}; if the face is small "
            "in the photo, crop the photo closer around it."
        )
    boxes = [(x / scale, y / scale, w / scale, h / scale) for x, y, w, h in boxes]
    boxes.sort(key=lambda b: b[2] * b[3], reverse=True)
    face = None
    for box in boxes:
        face = _mesh_in_box(mp, rgb, box)
        if face is not None:
            break
    if face is None:
        raise PortraitFitError(
            f"A face was detected in the portrait but its features could not be located. {_USE_A_PORTRAIT}."
        )
    notes = list(_check_face(face, len(boxes)))
    pose = _find_pose(mp, work, scale, face)
    mask = _person_mask(mp, work)
    return PortraitLandmarks(
        image_size=(width, height), face=face, pose=pose, mask=mask, mask_scale=scale,
        faces_found=len(boxes), notes=tuple(notes),
    )


def _face_boxes(mp: ModuleType, work: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes (x, y, w, h in ``work`` pixels) from the full-range detector, else the short-range one."""
    h, w = work.shape[:2]
    for model in (1, 0):
        with mp.solutions.face_detection.FaceDetection(model_selection=model, min_detection_confidence=0.5) as det:
            result = det.process(work)
        boxes = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            if b.width * w >= 4 and b.height * h >= 4:
                boxes.append((b.xmin * w, b.ymin * h, b.width * w, b.height * h))
        if boxes:
            return boxes
    return []


def _mesh_in_box(mp: ModuleType, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """The 478-point mesh of the face in ``box``, run on a square crop around it; None if not found."""
    x, y, w, h = box
    side = 2.2 * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    s = MESH_CROP_SIDE / side
    # crop coordinates = s * (image - corner); corner so the box centre lands in the crop centre
    affine = np.array([[s, 0.0, MESH_CROP_SIDE / 2 - s * cx], [0.0, s, MESH_CROP_SIDE / 2 - s * cy]])
    source = rgb
    if s < 0.5:  # shrink with area averaging first, so the crop is not aliased
        source = cv2.resize(rgb, None, fx=s * 2, fy=s * 2, interpolation=cv2.INTER_AREA)
        affine[:, :2] /= s * 2
    crop = cv2.warpAffine(source, affine, (MESH_CROP_SIDE, MESH_CROP_SIDE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.5) as mesh:
        result = mesh.process(crop)
    if not result.multi_face_landmarks:
        return None
    pts = np.array([[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
    pts *= MESH_CROP_SIDE  # mediapipe's z uses the scale of x
    face = np.empty_like(pts)
    face[:, 0] = (pts[:, 0] - (MESH_CROP_SIDE / 2 - s * cx)) / s
    face[:, 1] = (pts[:, 1] - (MESH_CROP_SIDE / 2 - s * cy)) / s
    face[:, 2] = pts[:, 2] / s
    return face.astype(np.float32)


def face_yaw_degrees(face: np.ndarray) -> float:
    """How far the face is turned left or right, in degrees (0 frontal, ±90 profile), from the mesh.

    The cheek points sit at the ears, about 1.3 half-face-widths behind the nose tip, so the nose tip's
    offset from the middle of the cheeks, as a fraction of half the face width, is about 1.3·tan(yaw).
    """
    right, left = face[topo.CHEEK_RIGHT, :2], face[topo.CHEEK_LEFT, :2]
    axis = left - right
    half = float(np.linalg.norm(axis)) / 2
    if half < 1e-6:
        return 90.0
    offset = float(np.dot(face[topo.NOSE_TIP, :2] - (left + right) / 2, axis / (2 * half)))
    return math.degrees(math.atan2(offset, 1.3 * half))


def face_roll_degrees(face: np.ndarray) -> float:
    """Tilt of the eye line in degrees (0 upright; ±90 a sideways photo; ±180 upside down)."""
    right, left = topo.eye_centres(face)
    d = left - right
    return math.degrees(math.atan2(float(d[1]), float(d[0])))


def _check_face(face: np.ndarray, faces_found: int) -> list[str]:
    """Refuse faces that cannot be animated; return notes about weak ones."""
    notes = []
    roll = face_roll_degrees(face)
    if abs(roll) > MAX_ROLL_DEGREES:
        raise PortraitFitError(
            f"The face in the portrait is tilted by {roll:.0f} degrees: the photo is probably sideways or upside "
            "down. Rotate the photo so the face is upright and try again."
        )
    yaw = face_yaw_degrees(face)
    if abs(yaw) > MAX_YAW_DEGREES:
        raise PortraitFitError(
            f"The face in the portrait is turned to the side (about {abs(yaw):.0f} degrees). Use a photo where the "
            "person looks towards the camera."
        )
    width = float(np.linalg.norm(face[topo.CHEEK_LEFT, :2] - face[topo.CHEEK_RIGHT, :2]))
    if width < MIN_FACE_WIDTH:
        raise PortraitFitError(
            f"The face in the portrait is only {width:.0f} pixels wide, too small to animate. Use a photo where the "
            f"face is at least {SOFT_FACE_WIDTH} pixels wide (crop closer, or use a higher-resolution photo)."
        )
    if faces_found > 1:
        notes.append(f"The portrait shows {faces_found} faces; the largest one is animated.")
    if width < SOFT_FACE_WIDTH:
        notes.append(f"The face is only {width:.0f} pixels wide, so the animation will look soft; a closer or "
                     "sharper photo looks better.")
    if abs(yaw) > TURNED_NOTE_DEGREES:
        notes.append(f"The face is turned by about {abs(yaw):.0f} degrees; a photo facing the camera animates "
                     "more naturally.")
    return notes


def _find_pose(mp: ModuleType, work: np.ndarray, scale: float, face: np.ndarray) -> np.ndarray:
    """Pose landmarks ``[33, 3]`` (x, y in portrait pixels, visibility) of the person whose face is ``face``."""
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False) as pose:
        result = pose.process(work)
    out = np.zeros((33, 3), dtype=np.float32)
    if result.pose_landmarks is None:
        return out
    h, w = work.shape[:2]
    for i, p in enumerate(result.pose_landmarks.landmark):
        out[i] = (p.x * w / scale, p.y * h / scale, p.visibility)
    # the pose detector finds one person; make sure it is the one whose face we animate
    width = float(np.linalg.norm(face[topo.CHEEK_LEFT, :2] - face[topo.CHEEK_RIGHT, :2]))
    if np.linalg.norm(out[POSE_NOSE, :2] - face[topo.NOSE_TIP, :2]) > width:
        out[:] = 0.0
    return out


def _person_mask(mp: ModuleType, work: np.ndarray) -> np.ndarray:
    """Person mask of ``work`` as uint8 (255 = person)."""
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        result = seg.process(work)
    return np.clip(result.segmentation_mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
