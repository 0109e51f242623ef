"""The causal few-step student, streamed chunk by chunk exactly as the runtime streams it, with gradients.

:class:`StreamRollout` is :class:`training.models.student.TorchStream` (the ONNX Runtime engine's reference)
made trainable: the same :class:`~inference.render.student.planner.StreamPlanner` (top-K of the cache by
Procrustes pose distance, region layout, block mask, slots), the same schedule and update
(:mod:`inference.render.student.sampling`), the same cache refresh at the clean time, and the runtime's
noise order when given the runtime's noise source. A clip of ``L`` frames is ``L / chunk`` chunks; each
chunk attends to its reference, itself and the cached frames the planner binds.

Two ways to run a clip:

* **teacher forcing** (ODE regression, CausVid): each step of a chunk is fed a given state ``z_{t_i}`` of
  the teacher's trajectory and predicts ``x̂``; the cache is filled from given clean ``context`` latents
  (the teacher's ``x_0``), so every chunk sees a perfect past;
* **self rollout** (DMD, Self-Forcing style): each chunk starts from noise and runs the student's own
  steps; only the chunk's *exit step* is differentiable (earlier steps run without gradients), and its
  prediction is the chunk's output and what the cache is filled from. A random exit step per chunk trains
  every step of the schedule; the last step everywhere is exactly the runtime.

With ``grad_through_cache`` the cache refresh keeps its graph, so a chunk's loss also trains how earlier
frames are written into the cache (the runtime's keys and values come from that pass).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from inference.render.student.planner import ChunkPlan
from inference.render.student.sampling import CLEAN_TIME, chunk_noise, schedule
from training.models.attention import DenseAttention, FullAttention, SparseAttention, TrainingSparseAttention
from training.models.config import StudentConfig
from training.models.student import csr_tensors, planner_for
from training.models.transformer import KeyValue, ReferenceEncoding, VideoTransformer

#: ``noise(steps, shape) → steps`` float32 tensors: a chunk's starting latent, then one per step update.
NoiseSource = Callable[[int, tuple[int, ...]], list[torch.Tensor]]
def encode_reference(transformer: VideoTransformer, latent: torch.Tensor) -> ReferenceEncoding:
    """The reference portrait's encoding (``latent`` ``[1, C, h, w]``), differentiably.

    The same computation as ``transformer.encode_reference(latent)`` (every reference token attends to every
    other), through torch's attention: the default's custom op cannot be back-propagated through (its backward
    calls itself).
    """
    return transformer.encode_reference(latent, FullAttention())


def runtime_noise(seed: int, device: torch.device | str = "cpu") -> NoiseSource:
    """The runtime's noise: :func:`~inference.render.student.sampling.chunk_noise` from ``numpy``'s generator
    seeded with ``seed``, chunk after chunk (what the engine and ``TorchStream`` draw)."""
    rng = np.random.default_rng(seed)

    def draw(steps: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
        return [torch.from_numpy(n).to(device) for n in chunk_noise(rng, steps, shape)]

    return draw


def torch_noise(generator: torch.Generator | None, device: torch.device | str) -> NoiseSource:
    """Training noise drawn on ``device`` (from ``generator`` when given)."""
    def draw(steps: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
        return [torch.randn(shape, generator=generator, device=device) for _ in range(steps)]

    return draw


@dataclass
class Rollout:
    """One streamed clip.

    Attributes:
        x0: ``[L, C, h, w]``, each chunk's output (its exit step's prediction; teacher forcing: the last step's).
        predictions: teacher forcing only: ``[S, L, C, h, w]``, every step's prediction.
        plans: each chunk's plan (frame selection, layout, block mask, slots), as the runtime makes them.
        attentions: the attention each chunk's calls used.
    """

    x0: torch.Tensor
    predictions: torch.Tensor | None
    plans: list[ChunkPlan] = field(default_factory=list)
    attentions: list[SparseAttention | DenseAttention] = field(default_factory=list)


class StreamRollout:
    """Streams clips through a student transformer as the runtime does.

    Args:
        transformer: the student (its ``config.chunk_frames``, cache, top-K and timesteps are the runtime's).
        sparse: the input-aware block mask over the top-K cached frames (the shipped student), or dense
            attention to the whole cache.
    """

    def __init__(self, transformer: VideoTransformer, *, sparse: bool = True) -> None:
        self.transformer = transformer
        self.config: StudentConfig = transformer.config
        self.sparse = sparse
        self.schedule = schedule(self.config.timesteps, self.config.sampler)

    @property
    def steps(self) -> int:
        return len(self.schedule)

    def run(self, reference: ReferenceEncoding, keypoints: np.ndarray, pose: torch.Tensor, *,
            noise: NoiseSource | None = None, forced: torch.Tensor | None = None, context: torch.Tensor | None = None,
            exit_steps: Sequence[int] | None = None, grad_through_cache: bool = True) -> Rollout:
        """Streams one clip.

        Args:
            reference: ``transformer.encode_reference(latent)`` of the clip's portrait (``[1, C, h, w]``).
            keypoints: float ``[L, 134, 3]``, ``L`` a multiple of the chunk size.
            pose: the frames' pose maps, uint8 ``[L, H, W, 3]`` (on the transformer's device).
            noise: self rollout: where each chunk's noise comes from.
            forced: teacher forcing: ``[S, L, C, h, w]`` states at the student's S timesteps.
            context: clean latents ``[L, C, h, w]`` to fill the cache from (default: the chunks' outputs).
            exit_steps: self rollout: per chunk, the step whose prediction is the output (default: the last).
            grad_through_cache: keep the cache refresh differentiable.

        Raises:
            ValueError: inconsistent arguments (no noise and no forced states, a partial chunk, bad steps).
        """
        result = self.run_batch(reference, np.asarray(keypoints)[None], pose[None], noise=noise,
                                forced=None if forced is None else forced[None],
                                context=None if context is None else context[None], exit_steps=exit_steps,
                                grad_through_cache=grad_through_cache)
        result.x0 = result.x0[0]
        result.predictions = None if result.predictions is None else result.predictions[0]
        return result

    def run_batch(self, reference: ReferenceEncoding, keypoints: np.ndarray, pose: torch.Tensor, *,
                  noise: NoiseSource | None = None, forced: torch.Tensor | None = None,
                  context: torch.Tensor | None = None, exit_steps: Sequence[int] | None = None,
                  grad_through_cache: bool = True) -> Rollout:
        """Streams B clips side by side, each exactly as :meth:`run` streams it alone, in one network call per
        chunk and step for all of them (at batch 1 a GPU is bound by launching kernels, not by computing).

        Arguments as :meth:`run` with a leading clip axis: ``reference`` of ``[B, C, h, w]`` portraits,
        ``keypoints`` ``[B, L, 134, 3]``, ``pose`` ``[B, L, H, W, 3]``, ``forced`` ``[B, S, L, C, h, w]``,
        ``context`` ``[B, L, C, h, w]``; ``noise`` draws ``[B · chunk, C, h, w]`` per step; ``exit_steps`` is
        shared by the clips. Returns ``x0`` ``[B, L, C, h, w]``, ``predictions`` ``[B, S, L, C, h, w]`` and the
        first clip's plans and attentions.
        """
        config = self.config
        clips, frames = keypoints.shape[:2]
        chunk = config.chunk_frames
        if frames % chunk or frames == 0:
            raise ValueError(f"a clip must be a whole number of {chunk}-frame chunks, got {frames} frames")
        if (noise is None) == (forced is None):
            raise ValueError("give either noise (self rollout) or forced states (teacher forcing)")
        if forced is not None and forced.shape[1] != self.steps:
            raise ValueError(f"teacher forcing needs one state per timestep ({self.steps}), got {forced.shape[1]}")
        chunks = frames // chunk
        if exit_steps is not None and (len(exit_steps) != chunks or not all(0 <= s < self.steps for s in exit_steps)):
            raise ValueError(f"exit_steps needs one step in 0..{self.steps - 1} per chunk ({chunks})")
        device = pose.device
        planners = [planner_for(config, sparse=self.sparse) for _ in range(clips)]
        slots: list[dict[int, list[KeyValue]]] = [{} for _ in range(clips)]
        outputs, predictions, result = [], [], Rollout(x0=torch.empty(0), predictions=None)
        shape = (clips * chunk, config.latent_channels, config.latent_size, config.latent_size)
        for c in range(chunks):
            window = slice(c * chunk, (c + 1) * chunk)
            plans = [planner.plan(keypoints[b, window], c * chunk) for b, planner in enumerate(planners)]
            bound = [[s for s in plan.position_slots if s is not None] for plan in plans]
            if len({len(b) for b in bound}) != 1:
                raise AssertionError("clips streamed side by side bind the same number of cached frames")
            past = [[tuple(torch.cat([slots[b][clip_slots[p]][layer][i] for b, clip_slots in enumerate(bound)])
                           for i in (0, 1))
                     for p in range(len(bound[0]))] for layer in range(config.depth)]
            attention = self._attention(plans, device)
            order = torch.from_numpy(np.stack([plan.order for plan in plans])).to(device)
            restore = torch.from_numpy(np.stack([plan.restore for plan in plans])).to(device)
            inputs = _ChunkInputs(pose[:, window].flatten(0, 1), reference, past, order, restore, attention)
            if forced is not None:
                chunk_predictions = [self._forward(inputs, forced[:, i, window].flatten(0, 1), t)[0]
                                     for i, (t, _) in enumerate(self.schedule)]
                predictions.append(torch.stack(chunk_predictions).unflatten(1, (clips, chunk)))
                out = chunk_predictions[-1]
            else:
                out = self._self_rollout(inputs, noise(self.steps, shape),
                                         exit_steps[c] if exit_steps is not None else self.steps - 1)
            outputs.append(out.unflatten(0, (clips, chunk)))
            if c + 1 < chunks:  # the last chunk's keys and values would never be read
                clean = context[:, window].flatten(0, 1) if context is not None else out
                with torch.set_grad_enabled(grad_through_cache and torch.is_grad_enabled()):
                    _, present = self._forward(inputs, clean if grad_through_cache else clean.detach(), CLEAN_TIME)
                tokens = config.tokens_per_frame
                for b, plan in enumerate(plans):
                    for f, slot in enumerate(plan.destination_slots):
                        slots[b][slot] = [(k[b:b + 1, :, f * tokens:(f + 1) * tokens],
                                           v[b:b + 1, :, f * tokens:(f + 1) * tokens]) for k, v in present]
            for b, (planner, plan) in enumerate(zip(planners, plans, strict=True)):
                for slot in planner.commit(plan):
                    slots[b].pop(slot, None)
            result.plans.append(plans[0])
            result.attentions.append(attention)
        result.x0 = torch.cat(outputs, dim=1)
        result.predictions = torch.cat(predictions, dim=2).transpose(0, 1) if predictions else None
        return result

    def _attention(self, plans: list[ChunkPlan], device: torch.device) -> TrainingSparseAttention | DenseAttention:
        """The clips' attention for a chunk: their block masks (sparse) or key lengths (dense), one per clip."""
        if self.sparse:
            csr = [csr_tensors(plan.block_mask, device) for plan in plans]
            return TrainingSparseAttention(torch.cat([r for r, _ in csr]), torch.cat([c for _, c in csr]),
                                           self.config.block_size)
        return DenseAttention(torch.tensor([plan.key_length for plan in plans], dtype=torch.int32, device=device))

    def _forward(self, inputs: _ChunkInputs, latent: torch.Tensor, t: float) -> tuple[torch.Tensor, list[KeyValue]]:
        """One student call on a chunk at time ``t`` (all frames)."""
        timestep = torch.full((latent.shape[0],), t, device=latent.device)
        return self.transformer(latent, timestep, inputs.pose, inputs.reference, inputs.past, inputs.order,
                                inputs.restore, inputs.attention)

    def _self_rollout(self, inputs: _ChunkInputs, noise: list[torch.Tensor], exit_step: int) -> torch.Tensor:
        """Runs a chunk's steps up to ``exit_step`` (only that one with gradients); returns its prediction."""
        latent = noise[0]
        for index, (t, (a, b, c)) in enumerate(self.schedule[:exit_step + 1]):
            with torch.set_grad_enabled(index == exit_step and torch.is_grad_enabled()):
                x0, _ = self._forward(inputs, latent, t)
            if index == exit_step:
                return x0
            latent = float(a) * x0 + float(b) * latent + float(c) * noise[index + 1]
        raise AssertionError("unreachable: the exit step is inside the schedule")


@dataclass(frozen=True)
class _ChunkInputs:
    """Everything but the latent and the time that a chunk's student calls take."""

    pose: torch.Tensor
    reference: ReferenceEncoding
    past: list[list[KeyValue]]
    order: torch.Tensor
    restore: torch.Tensor
    attention: SparseAttention | DenseAttention
