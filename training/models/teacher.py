"""The many-step teacher: the student's latent video transformer run bidirectionally over whole clips,
trained with flow matching and sampled with 25–50 Euler steps.

Convention (shared with the student, :mod:`inference.render.student.sampling`): a noisy latent at time
``t`` is ``z_t = t · x + (1 - t) · ε``, ``t = 0`` pure noise and ``t = 1`` clean; the network predicts
the clean latent ``x̂`` (x-prediction) and is trained with the velocity loss
``‖(x̂ - x) / (1 - t)‖²`` (JiT style; ``1 - t`` clamped at 0.05), ``t ~ sigmoid(N(-0.8, 0.8))``.

Conditioning: each frame's pose map (the pose encoder's tokens are added to the frame's tokens), the
reference portrait's latent tokens in context (every layer's keys and values are a prefix of every
attention call), the timestep (and the pooled reference) through adaLN-single. The parameters are
exactly a :class:`~training.models.transformer.VideoTransformer`'s, so a student of the same
configuration can start from them (``student.transformer.load_state_dict(teacher.transformer.state_dict())``).
There is no temporal position embedding: frames are told apart by their pose and content, as in the
student, whose cached frames come in pose-similarity order.

Public API (the distillation stage imports these):

* :class:`Teacher` — ``teacher(z [B,T,C,h,w], t [B] or [B,T], pose uint8 [B,T,H,W,3], reference latent [B,C,h,w])
  → x̂ [B,T,C,h,w]``;
* :func:`load_teacher` / :func:`save_teacher` — the ``teacher_ema`` checkpoint (:mod:`training.checkpoints`);
* :func:`sample_times`, :func:`add_noise`, :func:`velocity_loss` — the flow-matching pieces;
* :func:`euler_sample` — many-step sampling of clips, and of long streams by fusing overlapping windows at
  every step (MimicMotion's progressive latent fusion), optionally with classifier-free guidance over the pose
  (:func:`guided`; the teacher learns the pose-free prediction from clips whose pose maps were dropped,
  ``train_teacher --pose-dropout``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from inference.render.student.sampling import step_coefficients
from training.checkpoints import Checkpoint, CheckpointError, bf16_state_dict, load_checkpoint, save_checkpoint
from training.models.config import StudentConfig
from training.models.transformer import VideoTransformer

#: ``meta["kind"]`` of teacher weight checkpoints.
CHECKPOINT_KIND = "teacher"
#: Smallest ``1 - t`` in the velocity loss (the loss weight ``1 / (1 - t)²`` is at most 400).
MIN_ONE_MINUS_T = 0.05


class Teacher(nn.Module):
    """Pose- and reference-conditioned clip denoiser (x-prediction), bidirectional over each clip.

    Args:
        config: the network's configuration (``preset("teacher")`` for the 256×256 teacher).
    """

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = VideoTransformer(config)

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor, pose: torch.Tensor,
                reference: torch.Tensor, warped: torch.Tensor | None = None) -> torch.Tensor:
        """Predict clean latents.

        Args:
            latent: noisy latents ``[B, T, C, h, w]`` (the autoencoder's scaled latents, unit variance).
            timestep: ``[B]`` (one time per clip) or ``[B, T]``, in ``[0, 1]`` (0 noise, 1 clean).
            pose: pose maps (:func:`inference.render.pose_map.draw_pose_map`), uint8 ``[B, T, H, W, 3]``.
            reference: the reference portraits' clean latents ``[B, C, h, w]``.
            warped: with ``config.warped_reference`` only: the latents of the reference warped to each frame's
                keypoints ``[B, T, C, h, w]`` (:meth:`VideoTransformer.denoise_clips`).

        Returns:
            predicted clean latents ``[B, T, C, h, w]``.
        """
        clips, frames = latent.shape[:2]
        if timestep.dim() == 1:
            timestep = timestep[:, None].expand(clips, frames)
        return self.transformer.denoise_clips(latent, timestep, pose, reference, warped=warped)


# -- flow matching --------------------------------------------------------------------------------------

def sample_times(count: int, *, mean: float = -0.8, std: float = 0.8, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Training times ``t ~ sigmoid(N(mean, std))``, float32 ``[count]`` in ``(0, 1)`` (the default leans to noise)."""
    normal = torch.randn(count, generator=generator, device=generator.device if generator else device)
    return torch.sigmoid(normal * std + mean).to(device)


def add_noise(clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``z_t = t · x + (1 - t) · ε`` for clips ``[B, T, ...]`` and times ``[B]`` (one per clip)."""
    shape = (-1,) + (1,) * (clean.dim() - 1)
    t = t.reshape(shape).to(clean.dtype)
    return t * clean + (1.0 - t) * noise


def velocity_loss(predicted: torch.Tensor, clean: torch.Tensor, t: torch.Tensor,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``‖(x̂ - x) / max(1 - t, 0.05)‖²``: the velocity error of an x-prediction, in float32.

    Args:
        predicted, clean: ``[B, T, C, h, w]``.
        t: ``[B]``.
        weight: optional per-cell weights broadcastable to ``[B, T, 1, h, w]`` (e.g. more on mouth and hands);
            the loss is the weighted mean.
    """
    shape = (-1,) + (1,) * (clean.dim() - 1)
    scale = (1.0 - t.float()).clamp_min(MIN_ONE_MINUS_T).reshape(shape)
    error = ((predicted.float() - clean.float()) / scale) ** 2
    if weight is None:
        return error.mean()
    weight = weight.float().expand_as(error[:, :, :1]).expand_as(error)
    return (error * weight).sum() / weight.sum()


Prediction = TypeVar("Prediction", torch.Tensor, np.ndarray)


def without_pose(pose: torch.Tensor) -> torch.Tensor:
    """The pose-free condition of classifier-free guidance: black pose maps of ``pose``'s shape (what pose dropout
    trains on, ``train_teacher --pose-dropout``; the ONNX teacher feeds the same zeros)."""
    return torch.zeros_like(pose)


def guided(conditional: Prediction, unconditional: Prediction, scale: float) -> Prediction:
    """Classifier-free guidance of x-predictions: ``x̂_u + scale · (x̂_c - x̂_u)`` (1: the conditional one);
    torch tensors or numpy arrays (the ONNX teacher's)."""
    return unconditional + scale * (conditional - unconditional)


def _window_starts(frames: int, window: int, overlap: int) -> list[int]:
    if frames <= window:
        return [0]
    stride = max(1, window - overlap)
    starts = list(range(0, frames - window, stride))
    return starts + [frames - window]


def _triangle(window: int) -> torch.Tensor:
    """MimicMotion's fusion weights ``min((i + 0.5) · 2 / L, 2 - (i + 0.5) · 2 / L)``, ``[L]``."""
    position = (torch.arange(window, dtype=torch.float32) + 0.5) * 2.0 / window
    return torch.minimum(position, 2.0 - position)


@torch.no_grad()
def predict_stream(teacher: Teacher, latent: torch.Tensor, t: float, pose: torch.Tensor, reference: torch.Tensor,
                   window: int, overlap: int = 4, max_clips: int = 16, guidance: float = 1.0,
                   warped: torch.Tensor | None = None) -> torch.Tensor:
    """x̂ for streams longer than a clip: overlapping windows, each denoised as a clip, fused with triangular
    weights (progressive latent fusion).

    Args:
        latent: ``[B, N, C, h, w]``; pose: uint8 ``[B, N, H, W, 3]``; reference: ``[B, C, h, w]``.
        t: the time of every frame.
        window: frames per clip (what the teacher was trained on); overlap: frames shared by neighbours.
        max_clips: windows denoised together in one call.
        guidance: classifier-free guidance scale over the pose (1: none; otherwise a second, pose-free call
            per window, its pose maps black and its warped reference zeros: :func:`guided`).
        warped: the warped reference's latents ``[B, N, C, h, w]`` of a ``warped_reference`` teacher.
    """
    batch, frames = latent.shape[:2]
    window = min(window, frames)
    starts = _window_starts(frames, window, overlap)
    jobs = [(b, s) for b in range(batch) for s in starts]
    fused = torch.zeros(latent.shape, dtype=torch.float32, device=latent.device)
    total = torch.zeros((batch, frames), dtype=torch.float32, device=latent.device)
    weights = _triangle(window).to(latent.device) if len(starts) > 1 else torch.ones(window, device=latent.device)
    for i in range(0, len(jobs), max_clips):
        group = jobs[i:i + max_clips]
        z = torch.stack([latent[b, s:s + window] for b, s in group])
        poses = torch.stack([pose[b, s:s + window] for b, s in group])
        refs = torch.stack([reference[b] for b, _ in group])
        # the fifth input only for a teacher that takes it (any other denoiser keeps its four)
        moved = (torch.stack([warped[b, s:s + window] for b, s in group]),) if warped is not None else ()
        times = torch.full((len(group),), float(t), device=latent.device)
        predicted = teacher(z, times, poses, refs, *moved).float()
        if guidance != 1.0:
            unmoved = tuple(torch.zeros_like(m) for m in moved)
            predicted = guided(predicted, teacher(z, times, without_pose(poses), refs, *unmoved).float(), guidance)
        for (b, s), x in zip(group, predicted, strict=True):
            fused[b, s:s + window] += x * weights[:, None, None, None]
            total[b, s:s + window] += weights
    return (fused / total[:, :, None, None, None]).to(latent.dtype)


@torch.no_grad()
def euler_sample(teacher: Teacher, pose: torch.Tensor, reference: torch.Tensor, noise: torch.Tensor, steps: int = 25,
                 *, window: int | None = None, overlap: int = 4, max_clips: int = 16,
                 guidance: float = 1.0, warped: torch.Tensor | None = None) -> torch.Tensor:
    """Sample clean latents with ``steps`` Euler steps of the flow ODE, from ``t = 0`` (``noise``) to 1.

    Times are uniform (``k / steps``); the last step lands on the network's ``x̂``. Streams longer than
    ``window`` frames are denoised as overlapping clips fused at every step (:func:`predict_stream`).

    Args:
        pose: uint8 ``[B, N, H, W, 3]``; reference: clean reference latents ``[B, C, h, w]``.
        noise: the starting latents ``[B, N, C, h, w]`` (standard normal).
        steps: 1 (the network's one-shot prediction, about the conditional mean) or more; 25–50 for the teacher.
        window: frames per clip (default: the teacher's ``config.chunk_frames``).
        guidance: classifier-free guidance scale over the pose (1: none; see :func:`predict_stream`).
        warped: the warped reference's latents ``[B, N, C, h, w]`` of a ``warped_reference`` teacher.

    Returns:
        clean latents ``[B, N, C, h, w]``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    window = window or teacher.config.chunk_frames
    times = np.linspace(0.0, 1.0, steps + 1)
    z = noise
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        predicted = predict_stream(teacher, z, float(t), pose, reference, window, overlap, max_clips, guidance,
                                   warped)
        a, b, _ = step_coefficients(float(t), float(t_next), "euler")
        z = float(a) * predicted + float(b) * z
    return z


# -- checkpoints ------------------------------------------------------------------------------------------

def save_teacher(folder: str | Path, name: str, teacher: Teacher, **facts: object) -> list[Path]:
    """Write ``teacher``'s transformer in bf16 as checkpoint parts ``folder/NAME.pKofN.ckpt``.

    The manifest's meta holds ``kind`` ("teacher"), ``config`` (:meth:`StudentConfig.to_dict`) and ``facts``
    (step, training seconds, the autoencoder's sha256, held-out metrics, the loss curve: JSON-able values).
    The state is ``{"transformer": state dict}``, the same keys as ``Student.transformer``.
    """
    meta = {"kind": CHECKPOINT_KIND, "config": teacher.config.to_dict(), **facts}
    return save_checkpoint(folder, name, {"transformer": bf16_state_dict(teacher.transformer)}, meta=meta)


def load_teacher(path: str | Path, device: torch.device | str = "cpu", *,
                 to_distil: bool = False) -> tuple[Teacher, Checkpoint]:
    """A teacher checkpoint (any part file, or ``folder/NAME``) → float32 :class:`Teacher` in eval mode.
    ``to_distil``: for the sparse fine-tune, the distillation and the ONNX teacher, which do not take a warped
    reference yet.

    Raises:
        CheckpointError: missing or damaged parts, the checkpoint holds something else, or (``to_distil``) the
            teacher takes a warped reference.
    """
    checkpoint = load_checkpoint(path)
    if checkpoint.meta.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(checkpoint.files[0], f"holds {checkpoint.meta.get('kind') or 'unknown'} weights, not a "
                              "teacher", "Give the teacher_ema checkpoint that training.train_teacher wrote")
    config = StudentConfig.from_dict(checkpoint.meta["config"])
    if to_distil and config.warped_reference:
        raise CheckpointError(checkpoint.files[0], "is a teacher that takes the reference warped to each frame "
                              "(warped_reference), which the sparse fine-tune, the distillation and the ONNX teacher "
                              "do not support yet", "Distil a teacher trained without --warped-reference")
    teacher = Teacher(config)
    teacher.transformer.load_state_dict({k: v.float() for k, v in checkpoint.state["transformer"].items()})
    return teacher.to(device).eval(), checkpoint
