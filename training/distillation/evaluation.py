"""Held-out quality of a teacher (many Euler steps over clips, any attention) or a student (streamed as the
runtime streams it), by the teacher's evaluation protocol (:mod:`training.teacher_eval`): the same held-out
clips (unseen identities driven by held-out speech, seed ``EVAL_SEED``), the same noise, and its
:class:`~training.teacher_eval.Scores` (PSNR, SSIM, MAE of the mouth, the hands and the frame, flicker).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from inference.render.pose_map import PoseMapStyle
from training.distillation.batches import DeviceClips, synthetic_clips, to_device
from training.distillation.clip_attention import ClipMaskSpec, clip_attention
from training.distillation.rollout import StreamRollout, encode_reference, torch_noise
from training.distillation.runtime import autocast
from training.distillation.sampler import clip_denoiser, euler_trajectory
from training.models.autoencoder import Autoencoder, rgb_to_uint8
from training.models.transformer import VideoTransformer
from training.teacher_eval import EVAL_SEED, EvalSettings, Scores


def heldout_clips(bank: Path, *, frames: int, size: int, clips: int, pose_style: PoseMapStyle) -> DataLoader:
    """The held-out clips of the teacher's evaluation (same seed, same batches)."""
    return DataLoader(synthetic_clips(bank, "heldout", frames=frames, size=size, clips=clips, seed=EVAL_SEED,
                                      pose_style=pose_style),
                      batch_size=EvalSettings.batch, num_workers=0)


@torch.no_grad()
def decode_clips(autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
    """Latents ``[B, T, C, h, w]`` → frames ``[B, T, 3, S, S]`` in about ``[-1, 1]``."""
    return autoencoder.decode(latents.flatten(0, 1).float()).unflatten(0, latents.shape[:2])


@torch.no_grad()
def teacher_latents(transformer: VideoTransformer, clips: DeviceClips, spec: ClipMaskSpec, steps: int,
                    noise: torch.Tensor) -> torch.Tensor:
    """The teacher's Euler samples of a batch of clips with the ``spec`` attention, from ``noise``."""
    attention = clip_attention(spec, keypoints=clips.keypoints, arrays=clips.masks, device=clips.pose.device)
    with autocast(clips.pose.device):
        x0, _ = euler_trajectory(clip_denoiser(transformer, clips.pose, clips.reference, attention), noise, steps)
    return x0


@torch.no_grad()
def student_latents(transformer: VideoTransformer, clips: DeviceClips, seed: int, sparse: bool = True) -> torch.Tensor:
    """The student's streamed samples of a batch of clips (every step of its schedule, as the runtime runs)."""
    device = clips.pose.device
    generator = torch.Generator(device=device).manual_seed(seed)
    with autocast(device):
        reference = encode_reference(transformer, clips.reference)
        result = StreamRollout(transformer, sparse=sparse).run_batch(reference, clips.keypoints, clips.pose,
                                                                     noise=torch_noise(generator, device))
    return result.x0.float()


def evaluate(sample: str, transformer: VideoTransformer, autoencoder: Autoencoder, heldout: DataLoader,
             device: torch.device, *, spec: ClipMaskSpec | None = None, steps: int = 25,
             sparse: bool = True) -> tuple[dict[str, float], np.ndarray]:
    """Held-out metrics and a sample sheet of a ``"teacher"`` (Euler, ``steps``, ``spec`` attention) or a
    ``"student"`` (streamed, ``sparse`` or dense cache attention).

    Returns:
        ``(metrics, sheet)``: :meth:`~training.teacher_eval.Scores.result`, and uint8 RGB rows of (truth, generated, error × 4)
        for the first clips' first, middle and last frames.
    """
    if sample not in ("teacher", "student"):
        raise ValueError(f"sample must be 'teacher' or 'student', got {sample!r}")
    if sample == "teacher" and spec is None:
        raise ValueError("a teacher evaluation needs its attention spec")
    scores, rows = Scores(), []
    config = transformer.config
    noise_generator = torch.Generator().manual_seed(EVAL_SEED)
    was_training = transformer.training
    transformer.eval()
    try:
        for batch_index, batch in enumerate(heldout):
            clips = to_device(batch, autoencoder, device, encode_frames=False)
            if sample == "teacher":
                shape = (clips.clips, clips.pose.shape[1], config.latent_channels, config.latent_size,
                         config.latent_size)
                noise = torch.randn(shape, generator=noise_generator).to(device)
                latents = teacher_latents(transformer, clips, spec, steps, noise)
            else:
                latents = student_latents(transformer, clips, seed=EVAL_SEED + batch_index, sparse=sparse)
            generated = decode_clips(autoencoder, latents)
            scores.add(generated, clips.frames, clips.label_masks)
            if not rows:
                rows = [sheet_row(clips.frames[0], generated[0])]
    finally:
        transformer.train(was_training)
    return scores.result(), rows[0]


def sheet_row(truth: torch.Tensor, generated: torch.Tensor) -> np.ndarray:
    """uint8 RGB: the first, middle and last frame of a clip ``[T, 3, S, S]``, as truth / generated / error × 4."""
    picks = sorted({0, truth.shape[0] // 2, truth.shape[0] - 1})
    truth_u8 = rgb_to_uint8(truth[picks]).cpu().numpy()
    ours_u8 = rgb_to_uint8(generated[picks]).cpu().numpy()
    error = np.clip(np.abs(truth_u8.astype(np.int16) - ours_u8.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    return np.concatenate([np.concatenate(list(images), axis=1) for images in (truth_u8, ours_u8, error)], axis=0)


def write_sheet(path: Path, rows: list[np.ndarray]) -> None:
    """Stacks sheet rows side by side (one column per model) and writes a PNG."""
    import cv2

    height = max(r.shape[0] for r in rows)
    padded = [np.pad(r, ((0, height - r.shape[0]), (0, 8), (0, 0))) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(padded, axis=1), cv2.COLOR_RGB2BGR))
