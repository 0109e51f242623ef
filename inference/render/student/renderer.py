"""The IASA student behind the :class:`~inference.stages.Renderer` interface."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from inference.errors import ModelLoadError
from inference.packs import ModelPack
from inference.render.student.engine import StudentEngine
from inference.types import KeypointFrame, VideoFrame

log = logging.getLogger(__name__)


def fit_portrait(portrait: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crops ``portrait`` (uint8 ``[H, W, 3]``) to the aspect of ``size`` (width, height) and resizes
    it to ``size``."""
    height, width = portrait.shape[:2]
    target = size[0] / size[1]
    if width / height > target:
        crop = int(round(height * target))
        portrait = portrait[:, (width - crop) // 2:(width - crop) // 2 + crop]
    else:
        crop = int(round(width / target))
        portrait = portrait[(height - crop) // 2:(height - crop) // 2 + crop]
    shrinking = portrait.shape[1] > size[0]
    return cv2.resize(np.ascontiguousarray(portrait), size, interpolation=cv2.INTER_AREA if shrinking
                      else cv2.INTER_CUBIC)


def pack_portrait(pack: ModelPack) -> np.ndarray | None:
    """The portrait ``pack`` was made for (its manifest's ``portrait``), decoded to RGB uint8 ``[H, W, 3]`` and
    read-only; None when the pack has none.

    Raises:
        ModelLoadError: the portrait file is not an image OpenCV can decode.
    """
    data = pack.portrait()
    if data is None:
        return None
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None:
        raise ModelLoadError(f"model pack {pack.path}: its portrait {pack.manifest.portrait} is not a PNG or JPEG "
                             f"image that can be decoded; rebuild the pack with training/pack.py and a PNG or JPEG "
                             f"portrait, or download it again")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb.flags.writeable = False
    return rgb


class StudentRenderer:
    """Renders chunks of ``chunk_size`` keypoint frames with a :class:`StudentEngine`.

    The engine renders at its pack's resolution; frames are resized to ``size`` when that differs. A
    short last chunk is padded with its last pose (the padding frames are not returned). A stream that
    restarts (frame index 0, or a jump) resets the cache. ``portrait`` is the pack's own portrait
    (:func:`pack_portrait`), offered by :meth:`default_portrait`.
    """

    name = "student"

    def __init__(self, engine: StudentEngine, size: tuple[int, int], portrait: np.ndarray | None = None) -> None:
        self.engine = engine
        self._portrait = portrait
        self.size = (int(size[0]), int(size[1]))
        self.chunk_size = engine.manifest.chunk_size
        self.device = engine.provider.upper()
        self._expected_index = 0
        if self.size != engine.manifest.resolution:
            log.info("student renders at %dx%d and resizes to %dx%d", *engine.manifest.resolution, *self.size)

    def set_reference(self, portrait: np.ndarray) -> None:
        self.engine.set_reference(fit_portrait(portrait, self.engine.manifest.resolution))
        self._expected_index = 0

    def default_portrait(self) -> np.ndarray | None:
        """The presenter the pack was made for (the student renders it best), or None when the pack has none."""
        return self._portrait

    def render(self, frames: Sequence[KeypointFrame]) -> list[VideoFrame]:
        out: list[VideoFrame] = []
        for start in range(0, len(frames), self.chunk_size):
            out += self._render_chunk(frames[start:start + self.chunk_size])
        return out

    def _render_chunk(self, frames: Sequence[KeypointFrame]) -> list[VideoFrame]:
        if frames[0].index != self._expected_index:
            self.engine.reset()
        keypoints = np.stack([frame.keypoints for frame in frames])
        if len(frames) < self.chunk_size:
            keypoints = np.concatenate([keypoints, np.repeat(keypoints[-1:], self.chunk_size - len(frames), axis=0)])
        images, timings = self.engine.render_chunk(keypoints)
        self._expected_index = frames[-1].index + 1
        meta = {"renderer": self.name, "chunk_ms": round(timings.total * 1000.0, 3)}
        out = []
        for frame, image in zip(frames, images[: len(frames)], strict=True):
            if image.shape[1::-1] != self.size:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_LINEAR)
            out.append(VideoFrame(rgb=image, index=frame.index, fps=frame.fps, audio_heard_at=frame.audio_heard_at,
                                  meta=dict(meta)))
        return out

    def reset(self) -> None:
        self.engine.reset()
        self._expected_index = 0

    def close(self) -> None:
        self.engine.close()
