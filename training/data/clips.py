"""Synthetic training clips: who, which motion, which perturbation, drawn deterministically from an index.

A clip is ``length`` consecutive frames of one bank stream, perturbed in pose
space, seen by a per-clip camera, worn by one identity and rendered with its
neutral reference portrait. :class:`ClipSampler` maps a clip index to a
:class:`ClipSpec` (the same index always gives the same clip) and renders it.

Identities of the training and held-out splits come from two separate seed
streams: training identity seeds are even, held-out ones odd, so the two sets
never share a person. Held-out clips should also use a held-out motion bank
(held-out speech).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from training.data.motion_bank import MotionBank
from training.data.perturb import apply_camera, perturb_stream, random_camera
from training.data.speech import SPLITS
from training.synthetic.identity import sample_identity
from training.synthetic.presenter import SyntheticPresenter

_ROOT = 0x50D1


def identity_seed(split: str, k: int) -> int:
    """The seed of the ``k``-th identity of ``split``: even for "train", odd for "heldout"."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    parity = SPLITS.index(split)
    h = int(np.random.SeedSequence([_ROOT, parity, int(k)]).generate_state(1, dtype=np.uint32)[0])
    return 2 * h + parity


@dataclass(frozen=True)
class ClipConfig:
    """How clips are cut and varied.

    Attributes:
        length: frames per clip.
        clips_per_identity: consecutive clip indices that share one identity.
        perturb: largest pose-perturbation strength (each clip draws 0..this; a fifth of clips get none).
        camera: whether each clip gets a random zoom and shift (the reference portrait shares it).
        seed: changes every draw (motion segment, perturbation, camera), not the identities.
    """

    length: int = 16
    clips_per_identity: int = 1
    perturb: float = 1.0
    camera: bool = True
    seed: int = 0


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines one clip."""

    index: int
    identity_seed: int
    stream: int
    start: int
    length: int
    framing: str
    strength: float
    zoom: float
    shift: tuple[float, float]
    perturb_seed: int


@dataclass(frozen=True)
class ClipSample:
    """A rendered clip.

    Attributes:
        frames: uint8 ``[T, S, S, 3]``.
        masks: uint8 ``[T, S, S]`` region bit fields.
        keypoints: float32 ``[T, 134, 3]`` (exactly what was drawn).
        reference: uint8 ``[S, S, 3]``, the identity in a neutral pose.
        reference_keypoints: float32 ``[134, 3]``.
        spec: how the clip was made.
    """

    frames: np.ndarray
    masks: np.ndarray
    keypoints: np.ndarray
    reference: np.ndarray
    reference_keypoints: np.ndarray
    spec: ClipSpec


class ClipSampler:
    """Clip index → :class:`ClipSpec` → :class:`ClipSample`, for one split's motion bank.

    Args:
        bank: the motion streams (use a held-out bank for the held-out split).
        split: "train" or "heldout" (chooses the identity seed stream).
        config: clip length and variation.
    """

    def __init__(self, bank: MotionBank, split: str, config: ClipConfig = ClipConfig()) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if config.length < 1 or config.clips_per_identity < 1:
            raise ValueError("clip length and clips per identity must be at least 1")
        usable = [i for i, s in enumerate(bank.streams) if len(s) >= config.length]
        if not usable:
            longest = max(len(s) for s in bank.streams)
            raise ValueError(f"no motion stream has {config.length} frames (the longest has {longest}); "
                             "use shorter clips or longer speech")
        self.bank = bank
        self.split = split
        self.config = config
        self._usable = np.array(usable, dtype=np.int64)
        # streams are drawn in proportion to their length, so every frame is equally likely
        weights = np.array([len(bank.streams[i]) - config.length + 1 for i in usable], dtype=np.float64)
        self._cumulative = np.cumsum(weights / weights.sum())
        self._presenters: OrderedDict[tuple[int, int], SyntheticPresenter] = OrderedDict()

    def spec(self, index: int) -> ClipSpec:
        """The clip with number ``index`` (any non-negative integer)."""
        if index < 0:
            raise IndexError(f"clip index must be non-negative, got {index}")
        c = self.config
        rng = np.random.default_rng(np.random.SeedSequence([_ROOT, c.seed, SPLITS.index(self.split), int(index)]))
        stream = int(self._usable[min(int(np.searchsorted(self._cumulative, rng.random())), len(self._usable) - 1)])
        start = int(rng.integers(0, len(self.bank.streams[stream]) - c.length + 1))
        strength = 0.0 if rng.random() < 0.2 else float(rng.uniform(0.2, 1.0)) * c.perturb
        zoom, shift = random_camera(rng) if c.camera else (1.0, (0.0, 0.0))
        return ClipSpec(index=int(index), identity_seed=identity_seed(self.split, index // c.clips_per_identity),
                        stream=stream, start=start, length=c.length, framing=self.bank.infos[stream].framing,
                        strength=strength, zoom=zoom, shift=shift, perturb_seed=int(rng.integers(2**63)))

    def keypoints(self, spec: ClipSpec) -> np.ndarray:
        """The clip's motion before personal proportions: float32 ``[T, 134, 3]``."""
        segment = self.bank.streams[spec.stream][spec.start : spec.start + spec.length]
        moved = perturb_stream(segment, np.random.default_rng(spec.perturb_seed), self.bank.fps, spec.strength)
        return apply_camera(moved, spec.zoom, spec.shift)

    def presenter(self, identity_seed: int, size: int) -> SyntheticPresenter:
        """The presenter of one identity at ``size`` (the last few are kept, for clips that share an identity)."""
        key = (identity_seed, size)
        if key in self._presenters:
            self._presenters.move_to_end(key)
            return self._presenters[key]
        presenter = SyntheticPresenter(sample_identity(identity_seed), size)
        self._presenters[key] = presenter
        while len(self._presenters) > 2:
            self._presenters.popitem(last=False)
        return presenter

    def render(self, index: int, size: int) -> ClipSample:
        """Render clip ``index`` at ``size`` pixels."""
        spec = self.spec(index)
        presenter = self.presenter(spec.identity_seed, size)
        keypoints = presenter.personalise(self.keypoints(spec))
        frames, masks = presenter.render_sequence(keypoints)
        ref_keypoints = apply_camera(presenter.reference_keypoints(spec.framing), spec.zoom, spec.shift)
        reference = presenter.render(ref_keypoints).rgb
        return ClipSample(frames=frames, masks=masks, keypoints=keypoints, reference=reference,
                          reference_keypoints=ref_keypoints, spec=spec)
