"""Webcam pose: the user's own face, body and hands drive the keypoint stream instead of the audio.

Two pieces:

* :class:`WebcamPoseTracker` turns one RGB camera image into a DWPose-134
  frame with MediaPipe 0.10.21's legacy face mesh (refined, 478 points), pose
  (model complexity 1, the one bundled) and hands, all offline (see
  :mod:`inference.motion.landmark_mapping` for the mapping).
* :class:`WebcamPoseMotion` is a :class:`inference.stages.MotionStream`: the
  pipeline's audio clocks it (frames cover the audio received, numbered from
  0), and every frame shows the newest camera pose. A camera thread calls
  :meth:`WebcamPoseMotion.push_frame` (or :meth:`~WebcamPoseMotion.push_keypoints`
  for poses from elsewhere). The user's pose is moved and scaled once, from
  the first detections, so their head sits where the chosen framing puts the
  presenter's; then it moves freely. When nobody is seen, the pose eases back
  to the rig's neutral presenter (after half a second of frames with no new pose).

``audio_heard_at`` of a frame is the capture time of the camera image it shows
(the latency that matters here is camera to screen).
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from inference import keypoints as kp
from inference.errors import ConfigError, ModelLoadError
from inference.motion.landmark_mapping import dwpose_from_mediapipe
from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.motion.style import MotionStyle
from inference.types import AudioBlock, KeypointFrame

log = logging.getLogger(__name__)

_CALIBRATION_FRAMES = 10
_LOST_AFTER_S = 0.5


def availability() -> tuple[bool, str]:
    """Whether MediaPipe's legacy solutions (face mesh, pose, hands) can run here, and why not."""
    try:
        import mediapipe as mp
    except ImportError as exc:
        return False, f"mediapipe is not installed ({exc}); run installer/setup.sh"
    if not hasattr(mp, "solutions"):
        return False, (f"mediapipe {getattr(mp, '__version__', '?')} has no legacy solutions; "
                       "Podium needs mediapipe 0.10.21 (run installer/setup.sh)")
    return True, "available"


class WebcamPoseTracker:
    """RGB camera images → DWPose-134 keypoints (MediaPipe face mesh, pose and hands).

    Args:
        hands: also track the hands (about 10 ms more per image).
        static_images: treat every image on its own (photos) instead of as a video stream.

    Raises:
        ModelLoadError: MediaPipe or its bundled models are unavailable.
    """

    def __init__(self, *, hands: bool = True, static_images: bool = False) -> None:
        ok, why = availability()
        if not ok:
            raise ModelLoadError(f"The webcam pose source is unavailable: {why}")
        import mediapipe as mp

        try:
            self._face = mp.solutions.face_mesh.FaceMesh(static_image_mode=static_images, max_num_faces=1,
                                                         refine_landmarks=True)
            self._pose = mp.solutions.pose.Pose(static_image_mode=static_images, model_complexity=1)
            self._hands = (mp.solutions.hands.Hands(static_image_mode=static_images, max_num_hands=2)
                           if hands else None)
        except (RuntimeError, OSError, ValueError) as exc:
            raise ModelLoadError(f"MediaPipe's models failed to load ({exc}); reinstall mediapipe 0.10.21") from exc

    def track(self, rgb: np.ndarray) -> np.ndarray:
        """Keypoints of the person in ``rgb`` (uint8 ``[H, W, 3]``): float32 ``[134, 3]``, all confidences 0
        when nobody is found. Coordinates are normalised to the centred square that holds the image.

        Raises:
            ConfigError: ``rgb`` is not an RGB image.
        """
        image = np.asarray(rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 16:
            raise ConfigError(f"the camera image must be RGB uint8 [H, W, 3] of at least 16x16, got "
                              f"{image.shape} {image.dtype}")
        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        face = self._face.process(image).multi_face_landmarks
        pose = self._pose.process(image).pose_landmarks
        hands = self._hands.process(image).multi_hand_landmarks if self._hands is not None else None
        return dwpose_from_mediapipe(
            width, height,
            face=_landmarks(face[0].landmark) if face else None,
            pose=_landmarks(pose.landmark, visibility=True) if pose else None,
            hands=[_landmarks(h.landmark) for h in hands] if hands else None,
        )

    def close(self) -> None:
        for solution in (self._face, self._pose, self._hands):
            if solution is not None:
                solution.close()

    def __enter__(self) -> WebcamPoseTracker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _landmarks(landmarks, visibility: bool = False) -> np.ndarray:  # noqa: ANN001 - protobuf repeated field
    if visibility:
        return np.array([(p.x, p.y, p.z, p.visibility) for p in landmarks], dtype=np.float64)
    return np.array([(p.x, p.y, p.z) for p in landmarks], dtype=np.float64)


class WebcamPoseMotion:
    """The motion stage driven by a camera: audio clocks the frames, the newest camera pose fills them.

    Args:
        sample_rate: rate of the audio that clocks the stream.
        fps: output frame rate.
        style: its framing says where the user's head is placed (other knobs do not apply).
        tracker: turns camera images into keypoints (created on the first :meth:`push_frame` if None).
        smoothing: 0 (raw) .. 0.9 (heavy) exponential smoothing of the keypoints against jitter.
        retarget: move and scale the user into the style's framing (False keeps camera coordinates).
    """

    lookahead_seconds = 0.0

    def __init__(self, sample_rate: int, fps: float = 25.0, style: MotionStyle | None = None, *,
                 tracker: WebcamPoseTracker | None = None, smoothing: float = 0.4, retarget: bool = True) -> None:
        if not 0.0 <= smoothing <= 0.9:
            raise ConfigError(f"smoothing must be from 0 to 0.9, got {smoothing!r}")
        self.sample_rate = int(sample_rate)
        self.fps = float(fps)
        self.smoothing = float(smoothing)
        self.retarget = retarget
        self._tracker = tracker
        self._lock = threading.Lock()
        self._style = (style or MotionStyle()).validated()
        self._neutral = pose_keypoints(RigControls(), Framing.named(self._style.framing))
        self.reset()

    def set_style(self, style: MotionStyle) -> None:
        """Change the framing (thread-safe); the user is placed again from the next detections."""
        style = style.validated()
        with self._lock:
            self._style = style
            self._neutral = pose_keypoints(RigControls(), Framing.named(style.framing))
            self._calibration = []
            self._transform = None

    def reset(self) -> None:
        with self._lock:
            self._received = 0
            self._next = 0
            self._latest: np.ndarray | None = None
            self._latest_at: float | None = None
            self._frames_since_pose = 10**9
            self._calibration: list[tuple[float, np.ndarray]] = []
            self._transform: tuple[float, np.ndarray] | None = None
            self._shown = self._neutral.copy()

    # -- camera side -----------------------------------------------------------------------------------
    def push_frame(self, rgb: np.ndarray, captured_at: float | None = None) -> None:
        """Track one camera image (any thread); ``captured_at`` is its ``time.monotonic()`` capture time."""
        if self._tracker is None:
            self._tracker = WebcamPoseTracker()
        self.push_keypoints(self._tracker.track(rgb), captured_at)

    def push_keypoints(self, keypoints: np.ndarray, captured_at: float | None = None) -> None:
        """Use ``keypoints`` (``[134, 3]``, normalised to a square image) as the newest pose (any thread)."""
        keypoints = kp.validate_keypoints(keypoints, name="camera keypoints")
        with self._lock:
            if keypoints[kp.FACE, 2].max() <= 0 and keypoints[kp.BODY, 2].max() <= 0:
                return  # nobody in view: the stream eases back to the neutral pose
            self._latest = self._place(keypoints)
            self._latest_at = captured_at
            self._frames_since_pose = 0

    def _place(self, keypoints: np.ndarray) -> np.ndarray:
        if not self.retarget:
            return keypoints
        face = keypoints[kp.FACE]
        if self._transform is None and face[:, 2].min() > 0:
            width = float(np.linalg.norm(face[16, :2] - face[0, :2]))
            if width > 1e-3:
                self._calibration.append((width, face[30, :2].copy()))
            if len(self._calibration) >= _CALIBRATION_FRAMES:
                widths = np.array([w for w, _ in self._calibration])
                noses = np.stack([n for _, n in self._calibration])
                framing = Framing.named(self._style.framing)
                scale = framing.face_width / float(np.median(widths))
                offset = np.array(framing.face_center) - scale * np.median(noses, axis=0)
                self._transform = (scale, offset)
        if self._transform is None:
            return keypoints
        scale, offset = self._transform
        placed = keypoints.copy()
        placed[:, :2] = keypoints[:, :2] * scale + offset
        outside = (placed[:, 0] < 0) | (placed[:, 0] > 1) | (placed[:, 1] < 0) | (placed[:, 1] > 1)
        placed[outside, 2] = 0.0
        np.clip(placed[:, :2], -1.0, 2.0, out=placed[:, :2])
        return placed

    # -- stream side -----------------------------------------------------------------------------------
    def accept_audio(self, block: AudioBlock) -> None:
        if block.sample_rate != self.sample_rate:
            raise ConfigError(f"the motion stage expects {self.sample_rate} Hz audio, got {block.sample_rate} Hz")
        self._received += len(block.samples)

    def _frame_edge(self, index: int) -> int:
        return int(round(index * self.sample_rate / self.fps))

    def pop_frames(self) -> list[KeypointFrame]:
        frames = []
        while self._frame_edge(self._next + 1) <= self._received:
            frames.append(self._frame())
        return frames

    def finish(self) -> list[KeypointFrame]:
        frames = self.pop_frames()
        if self._frame_edge(self._next) < self._received:
            frames.append(self._frame())
        return frames

    def _frame(self) -> KeypointFrame:
        with self._lock:
            lost = self._latest is None or self._frames_since_pose > _LOST_AFTER_S * self.fps
            self._frames_since_pose += 1
            target = self._neutral if lost else self._latest
            heard = None if lost else self._latest_at
            # ease towards the target: smoothing against jitter, a gentle return when the user is lost
            keep = 0.75 if lost else self.smoothing
            both = (self._shown[:, 2] > 0) & (target[:, 2] > 0)
            shown = target.copy()
            shown[both, :2] = keep * self._shown[both, :2] + (1 - keep) * target[both, :2]
            self._shown = shown
        frame = KeypointFrame(shown, index=self._next, fps=self.fps, audio_heard_at=heard)
        self._next += 1
        return frame
