"""DMD distillation of the causal student (paper §5; DMD/DMD2, CausVid), with the input-aware region loss.

Three networks: the student (generator, trained), the teacher (the *real score*, frozen: the sparse-adapted
teacher with its clip attention) and the *fake score* (the critic: a copy of the teacher, trained online on
the student's samples). Every generator update is preceded by ``critic_steps`` critic updates (DMD2's
two-time-scale rule; CausVid uses 5).

* **Student samples** are streamed exactly as the runtime streams them (:class:`.rollout.StreamRollout`:
  same chunks, cache, top-K and masks), each chunk from fresh noise through the student's few steps, with a
  random exit step per chunk (only that step differentiable): the Self-Forcing way to train every step.
* **Critic update:** the flow-matching loss of the fake score on samples made without gradients
  (:func:`training.models.teacher.velocity_loss`, the teacher's time distribution).
* **Generator update:** the sample ``x̂`` is noised at ``t ~ U[t_min, t_max]``; :func:`.losses.dmd_loss` from the
  real prediction (optionally guided over the pose: DMD's real guidance scale) and the fake one, plus
  ``λ_region ·`` :class:`.losses.RegionLoss` of the decoded frames against the ground truth, with region masks
  from each frame's keypoints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from training.distillation.batches import DeviceClips
from training.distillation.clip_attention import ClipMaskSpec, clip_attention
from training.distillation.losses import RegionLoss, dmd_loss
from training.distillation.rollout import StreamRollout, encode_reference, torch_noise
from training.distillation.runtime import autocast
from training.models.autoencoder import Autoencoder
from training.models.teacher import add_noise, guided, sample_times, velocity_loss, without_pose
from training.models.transformer import VideoTransformer


@dataclass(frozen=True)
class DmdSettings:
    """Knobs of a DMD run.

    Attributes:
        critic_steps: critic updates per generator update.
        t_min, t_max: range of the times the student's samples are noised at for the scores (0 = noise).
        critic_t_mean, critic_t_std: the critic's training times (the teacher's logit-normal).
        lambda_region: weight of the region loss (0: DMD alone).
        real_guidance: classifier-free guidance scale of the real score over the pose (1: none; the teacher must
            have been trained with pose dropout).
        region_frames: frames per clip decoded for the region loss (0: all).
        grad_through_cache: the student's cache refresh stays differentiable.
    """

    critic_steps: int = 5
    t_min: float = 0.02
    t_max: float = 0.98
    critic_t_mean: float = -0.8
    critic_t_std: float = 0.8
    lambda_region: float = 1.0
    real_guidance: float = 1.0
    region_frames: int = 8
    grad_through_cache: bool = True

    def __post_init__(self) -> None:
        if not self.real_guidance > 0:
            raise ValueError(f"real_guidance must be above 0 (1: no guidance), got {self.real_guidance:g}")


class DmdTrainer:
    """The generator's and the critic's losses on batches of clips (optimiser steps are the caller's).

    Args:
        student: the causal student (trained); teacher: the real score (frozen, eval mode); critic: the fake
            score (trained; default: a copy of the teacher).
        spec: the clip attention of the teacher and the critic.
        autoencoder: frozen; decodes the student's samples for the region loss (and its encoder's features).
        region_loss: the region loss (None when ``lambda_region`` is 0).
        seed: of the noise (drawn on the student's device), times, exit steps and region frames.
    """

    def __init__(self, student: VideoTransformer, teacher: VideoTransformer, spec: ClipMaskSpec,
                 autoencoder: Autoencoder, settings: DmdSettings, *, critic: VideoTransformer | None = None,
                 region_loss: RegionLoss | None = None, seed: int = 0) -> None:
        self.student = student
        self.teacher = teacher.eval().requires_grad_(False)
        self.critic = critic if critic is not None else copy.deepcopy(teacher).train().requires_grad_(True)
        self.spec = spec
        self.autoencoder = autoencoder
        self.settings = settings
        self.region_loss = region_loss if settings.lambda_region else None
        if settings.lambda_region and region_loss is None:
            raise ValueError("a region loss is needed when lambda_region is not 0")
        self.device = next(student.parameters()).device
        self.draws = torch.Generator().manual_seed(seed)
        self.noise = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.rollout = StreamRollout(student)

    # -- samples ------------------------------------------------------------------------------------------

    def exit_steps(self, chunks: int) -> list[int]:
        """A random exit step for each chunk (shared by the clips streamed side by side)."""
        steps = self.rollout.steps
        return torch.randint(0, steps, (chunks,), generator=self.draws).tolist()

    def samples(self, clips: DeviceClips) -> torch.Tensor:
        """The student's samples of a batch of clips, ``[B, T, C, h, w]`` (differentiable when grad is enabled)."""
        chunks = clips.pose.shape[1] // self.student.config.chunk_frames
        with autocast(self.device):
            reference = encode_reference(self.student, clips.reference)
            result = self.rollout.run_batch(reference, clips.keypoints, clips.pose,
                                            noise=torch_noise(self.noise, self.device),
                                            exit_steps=self.exit_steps(chunks),
                                            grad_through_cache=self.settings.grad_through_cache)
        return result.x0.float()

    def _scores(self, network: VideoTransformer, noisy: torch.Tensor, t: torch.Tensor, clips: DeviceClips,
                guidance: float = 1.0) -> torch.Tensor:
        """A network's x-prediction of the noisy samples; with ``guidance`` ≠ 1 guided over the pose (a second call
        with black pose maps)."""
        attention = clip_attention(self.spec, keypoints=clips.keypoints, arrays=clips.masks, device=noisy.device)
        times = t[:, None].expand(noisy.shape[:2])
        with autocast(noisy.device):
            predicted = network.denoise_clips(noisy, times, clips.pose, clips.reference, attention).float()
            if guidance == 1.0:
                return predicted
            free = network.denoise_clips(noisy, times, without_pose(clips.pose), clips.reference, attention)
        return guided(predicted, free.float(), guidance)

    # -- losses -------------------------------------------------------------------------------------------

    def critic_loss(self, clips: DeviceClips) -> torch.Tensor:
        """The fake score's flow-matching loss on fresh student samples (made without gradients)."""
        with torch.no_grad():
            samples = self.samples(clips)
        t = sample_times(len(samples), mean=self.settings.critic_t_mean, std=self.settings.critic_t_std,
                         generator=self.draws, device=self.device)
        noisy = add_noise(samples, self._randn(samples.shape), t)
        return velocity_loss(self._scores(self.critic, noisy, t, clips), samples, t)

    def generator_loss(self, clips: DeviceClips) -> tuple[torch.Tensor, dict[str, float]]:
        """DMD plus ``λ_region ·`` the region loss, on fresh differentiable student samples; with the parts."""
        samples = self.samples(clips)
        settings = self.settings
        t = settings.t_min + (settings.t_max - settings.t_min) * torch.rand(len(samples), generator=self.draws)
        t = t.to(self.device)
        noisy = add_noise(samples.detach(), self._randn(samples.shape), t)
        with torch.no_grad():
            real = self._scores(self.teacher, noisy, t, clips, settings.real_guidance)
            fake = self._scores(self.critic, noisy, t, clips)
        losses, parts = [], {}
        for b in range(len(samples)):
            loss, stats = dmd_loss(samples[b], real[b], fake[b])
            losses.append(loss)
            for key, value in stats.items():
                parts[key] = parts.get(key, 0.0) + value / len(samples)
        total = torch.stack(losses).mean()
        parts["dmd"] = float(total)
        if self.region_loss is not None:
            region, region_parts = self._region(samples, clips)
            total = total + settings.lambda_region * region
            parts["region"] = float(region)
            parts.update({f"region_{k}": v for k, v in region_parts.items()})
        return total, parts

    def _region(self, samples: torch.Tensor, clips: DeviceClips) -> tuple[torch.Tensor, dict[str, float]]:
        """The region loss of some decoded frames of every clip."""
        if clips.region_masks is None or clips.region_boxes is None:
            raise ValueError("the region loss needs the clips' keypoint region masks (DistillationClips(region_masks="
                             "True))")
        frames = samples.shape[1]
        count = frames if not self.settings.region_frames else min(frames, self.settings.region_frames)
        picks = [np.sort(torch.randperm(frames, generator=self.draws)[:count].numpy()) for _ in samples]
        latents = torch.cat([samples[b, p] for b, p in enumerate(picks)])
        with autocast(samples.device):
            generated = self.autoencoder.decode(latents).float()
        truth = torch.cat([clips.frames[b, p] for b, p in enumerate(picks)])
        masks = torch.cat([clips.region_masks[b, p] for b, p in enumerate(picks)])
        boxes = np.concatenate([clips.region_boxes[b, p] for b, p in enumerate(picks)])
        return self.region_loss(generated, truth, masks, boxes)

    def _randn(self, shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=self.noise, device=self.device)
