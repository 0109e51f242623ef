"""PyTorch datasets over synthetic clips (rendered on the fly) and over shards (synthetic or personal video).

Both yield the same item, a dict of tensors for one clip of T frames at S×S:

==========================  =======================  =============================================
key                         shape, dtype             meaning
==========================  =======================  =============================================
``frames``                  ``[T, 3, S, S]`` uint8   target frames (RGB)
``masks``                   ``[T, S, S]`` uint8      region bit fields (``training.synthetic.regions``)
``keypoints``               ``[T, 134, 3]`` float32  DWPose-134 per frame
``pose_maps``               ``[T, 3, S, S]`` uint8   DWPose-style pose maps (if ``pose_maps=True``)
``reference``               ``[3, S, S]`` uint8      the identity's neutral portrait
``reference_keypoints``     ``[134, 3]`` float32     its keypoints
``reference_pose_map``      ``[3, S, S]`` uint8      its pose map (if ``pose_maps=True``)
``identity``                ``[]`` int64             identity seed (-1 if unknown)
``index``                   ``[]`` int64             item index
==========================  =======================  =============================================

Items depend only on their index, so any number of DataLoader workers gives the
same data in the same order (each worker renders with one OpenCV thread):

    ds = SyntheticClipDataset(ClipSampler(MotionBank.load("motion_train.npz"), "train"), size=256)
    loader = DataLoader(ds, batch_size=32, num_workers=16, persistent_workers=True)
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from inference.render.pose_map import DWPOSE, PoseMapStyle, draw_pose_map
from training.data.clips import ClipSampler
from training.data.reference_warp import warp_reference
from training.data.shards import Shard, list_shards, read_shard

_THREADS_SET = False


def _one_thread() -> None:
    """OpenCV's own threads fight DataLoader workers for cores: use one per process."""
    global _THREADS_SET
    if not _THREADS_SET:
        cv2.setNumThreads(1)
        _THREADS_SET = True


def _item(frames: np.ndarray, masks: np.ndarray, keypoints: np.ndarray, reference: np.ndarray,
          reference_keypoints: np.ndarray, identity: int, index: int, pose_maps: bool,
          pose_style: PoseMapStyle = DWPOSE, warped_reference: bool = False) -> dict[str, torch.Tensor]:
    size = frames.shape[1]
    item = {
        "frames": torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),
        "masks": torch.from_numpy(np.ascontiguousarray(masks)),
        "keypoints": torch.from_numpy(np.ascontiguousarray(keypoints, dtype=np.float32)),
        "reference": torch.from_numpy(np.ascontiguousarray(reference.transpose(2, 0, 1))),
        "reference_keypoints": torch.from_numpy(np.ascontiguousarray(reference_keypoints, dtype=np.float32)),
        "identity": torch.tensor(identity, dtype=torch.int64),
        "index": torch.tensor(index, dtype=torch.int64),
    }
    if pose_maps:
        maps = np.stack([draw_pose_map(k, (size, size), style=pose_style) for k in keypoints])
        item["pose_maps"] = torch.from_numpy(np.ascontiguousarray(maps.transpose(0, 3, 1, 2)))
        ref_map = draw_pose_map(reference_keypoints, (size, size), style=pose_style)
        item["reference_pose_map"] = torch.from_numpy(np.ascontiguousarray(ref_map.transpose(2, 0, 1)))
    if warped_reference:
        warped = np.stack([warp_reference(reference, reference_keypoints, k) for k in keypoints])
        item["warped_reference"] = torch.from_numpy(np.ascontiguousarray(warped.transpose(0, 3, 1, 2)))
    return item


class SyntheticClipDataset(Dataset):
    """Synthetic clips rendered on the fly from a :class:`~training.data.clips.ClipSampler`.

    Args:
        sampler: the clip sampler (its split decides the identities and should match its motion bank).
        size: frame side in pixels.
        num_clips: the dataset's length; item ``i`` is clip ``i + epoch * num_clips``.
        pose_maps: also draw the pose maps.
        pose_style: how to draw them (``StudentConfig.pose_style`` of the network they are for).
        warped_reference: also warp the reference to every frame's keypoints (``warped_reference``, uint8
            ``[T, 3, H, W]``; :func:`training.data.reference_warp.warp_reference`, about 8 ms a frame).
    """

    def __init__(self, sampler: ClipSampler, size: int = 256, num_clips: int = 100_000, pose_maps: bool = True,
                 pose_style: PoseMapStyle = DWPOSE, warped_reference: bool = False) -> None:
        if num_clips < 1:
            raise ValueError(f"num_clips must be at least 1, got {num_clips}")
        self.sampler = sampler
        self.size = int(size)
        self.num_clips = int(num_clips)
        self.pose_maps = pose_maps
        self.pose_style = pose_style
        self.warped_reference = warped_reference
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use a fresh set of clips for ``epoch`` (call before creating the epoch's iterator)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"item {index} is outside 0..{self.num_clips - 1}")
        _one_thread()
        clip_index = index + self.epoch * self.num_clips
        sample = self.sampler.render(clip_index, self.size)
        return _item(sample.frames, sample.masks, sample.keypoints, sample.reference, sample.reference_keypoints,
                     sample.spec.identity_seed, index, self.pose_maps, self.pose_style, self.warped_reference)


class ShardClipDataset(Dataset):
    """Clips of ``clip_length`` consecutive frames read from a folder of shards.

    A window never crosses a clip boundary (a synthetic clip, or a run of kept
    video frames). Each worker keeps the last ``cache_shards`` shards decoded.

    Args:
        folder: the dataset folder (``shard_*.npz``).
        clip_length: frames per item.
        stride: step between windows (default: ``clip_length``, no overlap).
        pose_maps: also draw the pose maps.

    Raises:
        InputFileError: the folder or a shard is missing or damaged.
        ValueError: no clip is long enough.
    """

    def __init__(self, folder: str | Path, clip_length: int = 16, stride: int | None = None, pose_maps: bool = True,
                 cache_shards: int = 2) -> None:
        self.paths = list_shards(folder)
        self.clip_length = int(clip_length)
        self.pose_maps = pose_maps
        self.cache_shards = max(1, int(cache_shards))
        step = int(stride or clip_length)
        windows = []
        for s, path in enumerate(self.paths):
            clip = read_shard(path).clip
            starts = np.flatnonzero(np.r_[True, clip[1:] != clip[:-1]])
            ends = np.r_[starts[1:], len(clip)]
            for a, b in zip(starts, ends, strict=True):
                windows += [(s, int(w)) for w in range(a, b - self.clip_length + 1, step)]
        if not windows:
            raise ValueError(f"{folder}: no clip holds {self.clip_length} consecutive frames; use a shorter clip_length")
        self.windows = windows
        self._cache: OrderedDict[int, Shard] = OrderedDict()

    def __len__(self) -> int:
        return len(self.windows)

    def _shard(self, s: int) -> Shard:
        if s in self._cache:
            self._cache.move_to_end(s)
            return self._cache[s]
        shard = read_shard(self.paths[s])
        self._cache[s] = shard
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return shard

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        _one_thread()
        s, start = self.windows[index]
        shard = self._shard(s)
        rows = slice(start, start + self.clip_length)
        ref = int(shard.reference_index[start])
        return _item(shard.frames[rows], shard.masks[rows], shard.keypoints[rows], shard.references[ref],
                     shard.reference_keypoints[ref], int(shard.identity[ref]), index, self.pose_maps)
