"""The virtual camera sink: the avatar as a webcam that Zoom, Meet or Teams can pick.

Frames go out through pyvirtualcam: the v4l2loopback driver on Linux, the OBS
virtual camera on Windows and macOS. Each frame is framed for a 16:9 camera
(720p or 1080p): the square avatar fills the height, centred, over a soft,
dimmed widening of itself; it is mirrored if asked, and carries a small
"AI avatar" badge (on by default, as responsible use asks). Frames are sent as
the engine's frame clock releases them, at the camera's rate.

When no driver is installed, :meth:`VirtualCameraSink.open` raises
:class:`DeviceError` saying exactly how to get one; nothing else stops.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from inference import devices
from inference.errors import DeviceError, SinkError, StopReason
from inference.types import AudioBlock, VideoFrame

log = logging.getLogger(__name__)

#: Camera resolutions offered, (width, height).
RESOLUTIONS: dict[str, tuple[int, int]] = {"720p": (1280, 720), "1080p": (1920, 1080)}
BADGE_TEXT = "AI avatar"
#: How often the background is refreshed from the avatar, in frames.
BACKGROUND_EVERY = 50

OBS_FIX = ("install OBS Studio 28 or newer, start its virtual camera once (Tools > Start Virtual Camera), "
           "close OBS, then switch Podium's virtual camera on again")


def driver_fix() -> str:
    """How to get a virtual camera driver on this system, in words."""
    return devices.V4L2LOOPBACK_FIX if sys.platform.startswith("linux") else OBS_FIX


def _badge_patch(height: int) -> tuple[np.ndarray, np.ndarray]:
    """The badge as RGB uint8 ``[h, w, 3]`` and its opacity float32 ``[h, w, 1]`` (0..1)."""
    scale = height / 720 * 0.7
    thickness = max(1, int(round(height / 720 * 2)))
    (tw, th), base = cv2.getTextSize(BADGE_TEXT, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = int(round(th * 0.6))
    w, h = tw + 2 * pad, th + base + 2 * pad
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    alpha = np.zeros((h, w), dtype=np.uint8)
    radius = h // 2
    cv2.rectangle(alpha, (radius, 0), (w - radius, h - 1), 255, -1, cv2.LINE_AA)
    cv2.circle(alpha, (radius, radius), radius, 255, -1, cv2.LINE_AA)
    cv2.circle(alpha, (w - radius - 1, radius), radius, 255, -1, cv2.LINE_AA)
    rgb[:] = (24, 24, 28)
    text_mask = np.zeros((h, w), dtype=np.uint8)
    cv2.putText(text_mask, BADGE_TEXT, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    rgb[text_mask > 0] = (255, 255, 255)
    opacity = (alpha.astype(np.float32) / 255.0 * 0.72)
    opacity = np.maximum(opacity, text_mask.astype(np.float32) / 255.0)
    return rgb, opacity[:, :, None]


class CameraFramer:
    """Turns square avatar frames into camera frames.

    Args:
        size: camera (width, height), e.g. (1280, 720).
        mirror: flip the avatar left-right (the badge stays readable).
        badge: draw the "AI avatar" badge in the lower-left corner.
    """

    def __init__(self, size: tuple[int, int], *, mirror: bool = False, badge: bool = True) -> None:
        self.size = size
        self.mirror = mirror
        self.badge = badge
        width, height = size
        self._canvas = np.zeros((height, width, 3), dtype=np.uint8)
        self._background: np.ndarray | None = None
        self._frames = 0
        self._badge_rgb, self._badge_alpha = _badge_patch(height)
        margin = int(round(height * 0.03))
        bh, bw = self._badge_rgb.shape[:2]
        self._badge_at = (height - margin - bh, margin)

    def compose(self, rgb: np.ndarray) -> np.ndarray:
        """The camera frame for avatar frame ``rgb`` (uint8 ``[H, W, 3]``) as uint8 ``[height, width, 3]``.

        The returned array is reused by the next call.
        """
        width, height = self.size
        h, w = rgb.shape[:2]
        scale = height / h
        fit_w = min(width, int(round(w * scale)))
        avatar = cv2.resize(rgb, (fit_w, height), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
        if self.mirror:
            avatar = avatar[:, ::-1]
        if self._background is None or self._frames % BACKGROUND_EVERY == 0:
            small = cv2.resize(avatar, (16, 9), interpolation=cv2.INTER_AREA)
            self._background = (cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR) * 0.55).astype(
                np.uint8)
        self._frames += 1
        canvas = self._canvas
        canvas[:] = self._background
        x0 = (width - fit_w) // 2
        canvas[:, x0 : x0 + fit_w] = avatar
        if self.badge:
            y, x = self._badge_at
            bh, bw = self._badge_rgb.shape[:2]
            region = canvas[y : y + bh, x : x + bw].astype(np.float32)
            region += (self._badge_rgb.astype(np.float32) - region) * self._badge_alpha
            canvas[y : y + bh, x : x + bw] = region.astype(np.uint8)
        return canvas


class VirtualCameraSink:
    """Sends frames to a virtual camera.

    Args:
        resolution: "720p" or "1080p".
        mirror: flip the avatar left-right.
        badge: show the "AI avatar" badge (default on).
        device: a specific camera (e.g. "/dev/video10"); None picks the first one.
        backend: pyvirtualcam backend name; None lets pyvirtualcam choose (tests register a fake one).
        now: time source for :attr:`sent_at`.
    """

    name = "virtual-camera"
    wants_audio = False

    def __init__(self, resolution: str = "720p", *, mirror: bool = False, badge: bool = True,
                 device: str | None = None, backend: str | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        if resolution not in RESOLUTIONS:
            raise SinkError(f"the virtual camera supports {', '.join(RESOLUTIONS)}, not {resolution!r}",
                            StopReason.UNSUPPORTED)
        self.resolution = resolution
        self.device = device
        self.backend = backend
        self._now = now
        self._framer = CameraFramer(RESOLUTIONS[resolution], mirror=mirror, badge=badge)
        self._camera: Any = None
        self._lock = threading.Lock()
        self.frames_sent = 0
        #: (frame index, host time it was sent) of the latest frame
        self.last_sent: tuple[int, float] | None = None
        self.on_sent: Callable[[VideoFrame, float], None] | None = None

    def set_look(self, *, mirror: bool, badge: bool) -> None:
        """Change mirroring and the badge while running (any thread)."""
        with self._lock:
            self._framer.mirror = mirror
            self._framer.badge = badge

    @property
    def camera_name(self) -> str:
        """The device the meeting app sees (after :meth:`open`)."""
        camera = self._camera
        return str(camera.device) if camera is not None else (self.device or "virtual camera")

    def open(self, size: tuple[int, int], fps: float, sample_rate: int) -> None:
        import pyvirtualcam

        if self.backend is None:
            problem = devices.virtual_camera_problem()
            if problem:
                raise DeviceError(f"No virtual camera driver is installed. To get one, {driver_fix()}. "
                                  "Preview and recording keep working meanwhile.")
        width, height = RESOLUTIONS[self.resolution]
        try:
            self._camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                               device=self.device, backend=self.backend)
        except (RuntimeError, KeyError, ValueError, OSError) as exc:
            raise DeviceError(f"The virtual camera could not start ({exc}). To fix it, {driver_fix()}. "
                              "Preview and recording keep working meanwhile.") from exc
        log.info("virtual camera %s open at %dx%d, %.3g fps", self.camera_name, width, height, fps)

    def write_video(self, frame: VideoFrame) -> None:
        with self._lock:
            image = self._framer.compose(frame.rgb)
        try:
            self._camera.send(image)
        except (RuntimeError, OSError) as exc:
            raise SinkError(f"The virtual camera stopped accepting frames ({exc}). Switch it off and on again.",
                            StopReason.DEVICE_LOST) from exc
        sent_at = self._now()
        self.frames_sent += 1
        self.last_sent = (frame.index, sent_at)
        if self.on_sent is not None:
            self.on_sent(frame, sent_at)

    def write_audio(self, block: AudioBlock) -> None:
        """The camera carries no sound (the delayed audio out does)."""

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            camera.close()
            log.info("virtual camera closed after %d frames", self.frames_sent)

    def abort(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - a lost device may fail to close
            log.debug("closing the virtual camera failed", exc_info=True)
