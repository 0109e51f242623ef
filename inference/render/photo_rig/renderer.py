"""The photo-rig renderer: any real portrait, animated by the keypoint stream on the CPU (or its warp on a GPU
through ONNX Runtime, where that is faster)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inference.errors import ConfigError
from inference.gpu import CUDA_PROVIDER, cuda_status
from inference.render.photo_rig import cache
from inference.render.photo_rig.controls import CONTROL_NAMES, KeypointReader, PortraitControls
from inference.render.photo_rig.deformation import FIELD_CONTROLS, build_deformation
from inference.render.photo_rig.detect import PortraitLandmarks, detect_portrait
from inference.render.photo_rig.errors import PortraitFitError
from inference.render.photo_rig.framing import FRAMINGS, FramedPortrait, frame_portrait
from inference.render.photo_rig.mouth import MouthInterior, mouth_colours
from inference.render.photo_rig.warp import PortraitWarper
from inference.types import KeypointFrame, VideoFrame

if TYPE_CHECKING:  # imported when used: it needs the onnx package, which only GPU installs have
    from inference.render.photo_rig.warp_graph import GraphWarper

log = logging.getLogger(__name__)

_FIELD_INDEX = np.array([CONTROL_NAMES.index(n) for n in FIELD_CONTROLS])
_BLINK_INDEX = (CONTROL_NAMES.index("blink_right"), CONTROL_NAMES.index("blink_left"))
#: Where the per-frame warp runs: the faster of the two, the CPU (OpenCV), or the GPU (ONNX Runtime's CUDA EP).
WARP_DEVICES = ("auto", "cpu", "cuda")
#: Frames timed on each side when ``warp`` is auto (after two warm-up frames), with the jaw open and an eye
#: closing, the costliest case.
_TIMED_FRAMES = 8


@dataclass(frozen=True)
class PortraitRig:
    """Everything prepared for one portrait at one output size.

    Attributes:
        landmarks: what mediapipe found (cached on disk).
        framed: the portrait placed in the output frame.
        warper: moves it per frame.
        mouth: draws the mouth interior.
        from_cache: whether the landmarks came from the fit cache.
        seconds: time taken to prepare it.
    """

    landmarks: PortraitLandmarks
    framed: FramedPortrait
    warper: PortraitWarper
    mouth: MouthInterior
    from_cache: bool
    seconds: float

    @property
    def notes(self) -> tuple[str, ...]:
        """Sentences for the user about the portrait (several faces, a small or turned face, padding)."""
        notes = list(self.landmarks.notes)
        if self.framed.padded > 0.05:
            notes.append("The photo is cropped too tightly for this framing; its edges were extended with a "
                         "blurred border. A photo showing more of the shoulders looks better.")
        return tuple(notes)


def prepare_portrait(portrait: np.ndarray, size: tuple[int, int], framing: str = "auto",
                     use_cache: bool = True) -> PortraitRig:
    """Fit and frame ``portrait`` (RGB uint8 ``[H, W, 3]``) for output ``size`` = (width, height).

    Raises:
        PortraitFitError: the portrait cannot be animated (no face, too small, turned away, not an image).
    """
    t0 = time.perf_counter()
    rgb = _as_rgb(portrait)
    key = cache.portrait_key(rgb)
    landmarks = cache.load_fit(key) if use_cache else None
    from_cache = landmarks is not None
    if landmarks is None:
        landmarks = detect_portrait(rgb)
        if use_cache:
            cache.save_fit(key, landmarks)
    framed = frame_portrait(rgb, landmarks, size, framing)
    deformation = build_deformation(framed)
    warper = PortraitWarper(framed, deformation)
    scale = float(framed.affine[0, 0])
    mouth = MouthInterior(mouth_colours(framed), softness=0.35 + 0.25 * max(0.0, scale - 1.0))
    return PortraitRig(landmarks=landmarks, framed=framed, warper=warper, mouth=mouth, from_cache=from_cache,
                       seconds=time.perf_counter() - t0)


def _as_rgb(portrait: np.ndarray) -> np.ndarray:
    """The portrait as contiguous RGB uint8. Grey, RGBA (alpha over neutral grey), 16-bit and 0..1 float
    arrays are converted; photos from files should come through ``inference.sources.portrait.load_portrait``."""
    arr = np.asarray(portrait)
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating) and arr.size and np.isfinite(arr).all() and arr.max() <= 1.0:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.dtype != np.uint8:
        raise PortraitFitError(f"The portrait must be an 8-bit image, got pixel type {arr.dtype}. "
                               "Load photos with inference.sources.portrait.load_portrait.")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        arr = (arr[..., :3] * alpha + 128.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 16:
        raise PortraitFitError(f"The portrait must be a colour image of at least 16x16 pixels, got an array of "
                               f"shape {arr.shape}.")
    return np.ascontiguousarray(arr)


class PhotoRigRenderer:
    """Animates a real portrait from DWPose-134 keypoints: jaw and lips, blinks, brows, head turns and nods,
    shoulders and breathing, over a still background (see ``inference/render/photo_rig``).

    Args:
        size: output (width, height) in pixels.
        framing: "auto", "head-and-shoulders" or "half-body".
        use_cache: keep portrait fits in ``<data dir>/fits`` so the next start with the same portrait is fast.
        warp: where the per-frame warp runs (:data:`WARP_DEVICES`): "auto" times both on each portrait where
            ONNX Runtime's CUDA execution provider starts, and keeps the faster.

    Raises:
        ConfigError: a bad size, framing or warp; "cuda" where the CUDA execution provider does not start.
    """

    name = "photo-rig"
    chunk_size = 1

    def __init__(self, size: tuple[int, int] = (512, 512), *, framing: str = "auto", use_cache: bool = True,
                 warp: str = "auto") -> None:
        width, height = int(size[0]), int(size[1])
        if width < 64 or height < 64:
            raise ConfigError(f"the photo rig needs an output of at least 64x64 pixels, got {width}x{height}")
        if framing not in FRAMINGS:
            raise ConfigError(f"photo-rig framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
        if warp not in WARP_DEVICES:
            raise ConfigError(f"photo-rig warp must be one of {', '.join(WARP_DEVICES)}, got {warp!r}")
        if warp == "cuda":
            cuda_ok, reason = cuda_status()
            if not cuda_ok:
                raise ConfigError(f"the photo rig's GPU warp needs ONNX Runtime's CUDA execution provider: {reason}; "
                                  "or choose warp 'auto' or 'cpu'")
        self.size = (width, height)
        self.framing = framing
        self.use_cache = use_cache
        self.warp = warp
        #: where the current portrait's warp runs: "CPU" or "CUDA"
        self.device = "CPU"
        self.rig: PortraitRig | None = None
        self._warper: PortraitWarper | GraphWarper | None = None
        self._reader = KeypointReader(self.size)
        #: milliseconds spent per stage in the last rendered frame: "controls", "warp", "mouth"
        self.last_timings: dict[str, float] = {}

    @property
    def warper(self) -> PortraitWarper | GraphWarper | None:
        """The current portrait's warper (its ``timings`` hold the last frame's steps), None before a portrait."""
        return self._warper

    @property
    def notes(self) -> tuple[str, ...]:
        """Remarks about the current portrait for the user (empty when all is well)."""
        return self.rig.notes if self.rig is not None else ()

    def set_reference(self, portrait: np.ndarray) -> None:
        """Fit the portrait (RGB uint8 ``[H, W, 3]``); raises :class:`PortraitFitError` if it cannot be animated.

        A failed fit leaves the previous portrait in place.
        """
        rig = prepare_portrait(portrait, self.size, self.framing, self.use_cache)
        for note in rig.notes:
            log.warning("photo rig: %s", note)
        warper, device = self._choose_warper(rig)
        log.info("photo rig: portrait ready in %.0f ms (%s, framing %s, warp on the %s)", rig.seconds * 1000,
                 "cached fit" if rig.from_cache else "fitted", rig.framed.framing, device)
        self.rig, self._warper, self.device = rig, warper, device
        self.reset()

    def _choose_warper(self, rig: PortraitRig) -> tuple[PortraitWarper | GraphWarper, str]:
        """The warper for ``rig`` and where it runs, by the ``warp`` setting (see the class docstring)."""
        if self.warp == "cpu" or (self.warp == "auto" and not cuda_status()[0]):
            return rig.warper, "CPU"
        try:
            from inference.render.photo_rig import warp_graph

            graph = warp_graph.GraphWarper(rig.warper, [CUDA_PROVIDER], only=True)
        except (ImportError, RuntimeError) as exc:
            problem = (f"the onnx package, which builds its graph, is missing ({exc}): run installer/setup.sh --gpu"
                       if isinstance(exc, ImportError) else str(exc))
            if self.warp == "cuda":
                raise ConfigError(f"the photo rig's warp could not run on the GPU ({problem}); choose warp 'auto' or "
                                  "'cpu'") from exc
            log.warning("photo rig: the GPU warp could not start, warping on the CPU (%s)", problem)
            return rig.warper, "CPU"
        if self.warp == "cuda":
            return graph, "CUDA"
        cpu_ms, gpu_ms = _warp_time(rig.warper), _warp_time(graph)
        faster = "CUDA" if gpu_ms < cpu_ms else "CPU"
        log.info("photo rig: a frame's warp takes %.2f ms on the CPU and %.2f ms through ONNX Runtime's CUDA "
                 "execution provider; warping on the %s", cpu_ms, gpu_ms, faster)
        return (graph, "CUDA") if faster == "CUDA" else (rig.warper, "CPU")

    def default_portrait(self) -> None:
        """The photo rig animates whatever real portrait it is given; it has none of its own."""
        return None

    def render(self, frames: Sequence[KeypointFrame]) -> list[VideoFrame]:
        if self.rig is None:
            raise ConfigError("the photo rig has no portrait yet: call set_reference() with a portrait first")
        out = []
        for frame in frames:
            t0 = time.perf_counter()
            controls = self._reader.read(frame.keypoints, 1.0 / frame.fps)
            rgb = self.render_controls(controls, t0)
            out.append(VideoFrame(rgb=rgb, index=frame.index, fps=frame.fps, audio_heard_at=frame.audio_heard_at,
                                  meta={"renderer": self.name}))
        return out

    def render_controls(self, controls: PortraitControls, started: float | None = None) -> np.ndarray:
        """One frame (RGB uint8 ``[H, W, 3]``) of the portrait posed by ``controls``."""
        if self.rig is None:
            raise ConfigError("the photo rig has no portrait yet: call set_reference() with a portrait first")
        t0 = time.perf_counter() if started is None else started
        values = controls.vector()
        t1 = time.perf_counter()
        rgb, opening = self._warper.warp(values[_FIELD_INDEX], (values[_BLINK_INDEX[0]], values[_BLINK_INDEX[1]]))
        t2 = time.perf_counter()
        self.rig.mouth.draw(rgb, opening)
        t3 = time.perf_counter()
        self.last_timings = {"controls": (t1 - t0) * 1000, "warp": (t2 - t1) * 1000, "mouth": (t3 - t2) * 1000}
        return rgb

    def reset(self) -> None:
        self._reader.reset()

    def close(self) -> None:
        self.rig = None
        self._warper = None


def _warp_time(warper: PortraitWarper | GraphWarper) -> float:
    """Median milliseconds of a frame's warp with the jaw open and an eye closing."""
    values = np.zeros(len(FIELD_CONTROLS), np.float32)
    values[FIELD_CONTROLS.index("jaw")] = 0.25
    times = []
    for i in range(_TIMED_FRAMES + 2):
        values[FIELD_CONTROLS.index("yaw")] = 0.01 * i  # a new pose every frame
        t0 = time.perf_counter()
        warper.warp(values, (0.6, 0.0))
        times.append(time.perf_counter() - t0)
    return float(np.median(times[2:])) * 1000
