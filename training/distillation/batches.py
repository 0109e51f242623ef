"""Synthetic clips for the fine-tune and distillation stages: loaders, per-clip masks, tensors on the device.

Items are :class:`~training.data.torch_dataset.SyntheticClipDataset` clips (frames, renderer masks, keypoints,
pose maps, reference portrait) with what each stage needs computed in the loader's worker processes, off
the training loop: the teacher's sparse clip mask (:func:`.clip_attention.mask_arrays`) and the region
masks of each frame from its keypoints with their crop boxes (for the region loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from inference.render.pose_map import PoseMapStyle
from training.data.clips import ClipConfig, ClipSampler
from training.data.keypoint_regions import region_masks_from_keypoints
from training.data.motion_bank import MotionBank
from training.data.torch_dataset import SyntheticClipDataset
from training.distillation.clip_attention import ClipMaskSpec, mask_arrays
from training.distillation.losses import region_boxes
from training.distillation.runtime import autocast
from training.models.autoencoder import Autoencoder, rgb_from_uint8

MASK_KEYS = ("token_order", "token_restore", "row_ptr", "col_idx")


class DistillationClips(Dataset):
    """Clips with their teacher mask and keypoint region masks.

    Args:
        clips: the clips (any dataset of :mod:`training.data.torch_dataset` items with pose maps).
        spec: the teacher's sparse mask (None: dense, nothing to compute).
        region_masks: add ``region_masks`` uint8 ``[T, S, S]`` (bit fields from each frame's keypoints) and
            ``region_boxes`` int64 ``[T, regions, 4]`` (:func:`.losses.region_boxes`).
    """

    def __init__(self, clips: Dataset, spec: ClipMaskSpec | None = None, region_masks: bool = False) -> None:
        self.clips = clips
        self.spec = spec if spec is not None and spec.sparse else None
        self.region_masks = region_masks

    def __len__(self) -> int:
        return len(self.clips)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.clips[index]
        keypoints = item["keypoints"].numpy()
        if self.spec is not None:
            item.update({k: torch.from_numpy(v) for k, v in mask_arrays(keypoints, self.spec).items()})
        if self.region_masks:
            size = item["frames"].shape[-1]
            masks = np.stack([region_masks_from_keypoints(k, size) for k in keypoints])
            item["region_masks"] = torch.from_numpy(masks)
            item["region_boxes"] = torch.from_numpy(region_boxes(masks))
        return item


def synthetic_clips(bank: Path | MotionBank, split: str, *, frames: int, size: int, clips: int, seed: int,
                    pose_style: PoseMapStyle, spec: ClipMaskSpec | None = None,
                    region_masks: bool = False) -> DistillationClips:
    """``clips`` synthetic clips of ``frames`` frames at ``size`` px from a motion bank of ``split``
    ("train": training identities, or "heldout"), deterministic for a ``seed``; pose maps drawn as the networks
    were trained (``pose_style``)."""
    motion = bank if isinstance(bank, MotionBank) else MotionBank.load(bank)
    sampler = ClipSampler(motion, split, ClipConfig(length=frames, seed=seed))
    dataset = SyntheticClipDataset(sampler, size=size, num_clips=clips, pose_maps=True,
                                   pose_style=pose_style)
    return DistillationClips(dataset, spec, region_masks)


def loader(dataset: Dataset, batch_clips: int, workers: int, *, pin: bool, shuffle: bool = False,
           drop_last: bool = True) -> DataLoader:
    """A DataLoader over ``dataset`` (workers persist; a few batches are prefetched)."""
    return DataLoader(dataset, batch_size=batch_clips, shuffle=shuffle, num_workers=workers, pin_memory=pin,
                      persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None, drop_last=drop_last)


@dataclass
class DeviceClips:
    """A batch of clips on the training device.

    Attributes:
        frames: ground truth ``[B, T, 3, S, S]`` in ``[-1, 1]``.
        pose: pose maps, uint8 ``[B, T, S, S, 3]``.
        reference: the portraits' clean latents ``[B, C, h, w]``.
        keypoints: float32 ``[B, T, 134, 3]`` (host).
        label_masks: the renderer's region bit fields, uint8 ``[B, T, S, S]`` (exact; for evaluation).
        latents: the frames' latents ``[B, T, C, h, w]`` (when encoded).
        region_masks, region_boxes: keypoint region masks ``[B, T, S, S]`` and crop boxes (host, int64
            ``[B, T, regions, 4]``), when the dataset made them.
        masks: the teacher's clip-mask arrays (``[B, ...]`` each), when the dataset made them.
    """

    frames: torch.Tensor
    pose: torch.Tensor
    reference: torch.Tensor
    keypoints: np.ndarray
    label_masks: torch.Tensor
    latents: torch.Tensor | None = None
    region_masks: torch.Tensor | None = None
    region_boxes: np.ndarray | None = None
    masks: dict[str, torch.Tensor] | None = None

    @property
    def clips(self) -> int:
        return self.frames.shape[0]


@torch.no_grad()
def to_device(batch: dict[str, torch.Tensor], autoencoder: Autoencoder, device: torch.device, *,
              encode_frames: bool) -> DeviceClips:
    """Moves a collated batch to ``device`` and encodes its references (and frames, if asked) with the frozen
    autoencoder."""
    frames_u8 = batch["frames"].to(device, non_blocking=True)
    clips, count = frames_u8.shape[:2]
    frames = rgb_from_uint8(frames_u8.flatten(0, 1).permute(0, 2, 3, 1)).unflatten(0, (clips, count))
    with autocast(device):  # as the teacher was trained (training.train_teacher.prepare_clips)
        reference = autoencoder.encode(rgb_from_uint8(batch["reference"].to(device).permute(0, 2, 3, 1)))
        latents = autoencoder.encode(frames.flatten(0, 1)).unflatten(0, (clips, count)) if encode_frames else None
    out = DeviceClips(frames=frames, pose=batch["pose_maps"].to(device, non_blocking=True).permute(0, 1, 3, 4, 2),
                      reference=reference.float(), keypoints=batch["keypoints"].numpy(),
                      label_masks=batch["masks"].to(device, non_blocking=True),
                      latents=latents.float() if latents is not None else None)
    if "region_masks" in batch:
        out.region_masks = batch["region_masks"].to(device, non_blocking=True)
        out.region_boxes = batch["region_boxes"].numpy()
    if all(k in batch for k in MASK_KEYS):
        out.masks = {k: batch[k].to(device, non_blocking=True) for k in MASK_KEYS}
    return out
