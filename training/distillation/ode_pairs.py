"""ODE pairs: the teacher's deterministic trajectories, kept at the student's timesteps (CausVid's initialisation).

For each training clip the (sparse-adapted) teacher integrates the flow ODE from a noise draw to clean
latents (:func:`.sampler.euler_trajectory`), and the states at the student's timesteps are stored with the
clean end: ``states[i]`` is ``z_{t_i}`` (``states[0]`` the noise itself, ``t_0 = 0``) and ``x0`` the teacher's
sample. The student is then trained to map every ``z_{t_i}`` of a chunk to ``x0`` while streaming
(:mod:`.rollout`, teacher forcing).

Shards (``pairs_r<rank>_<k>.npz``, written atomically, a few tens of MB each; they stay on the machine that
made them, the regression reads them there):

=================  =================================  ===========================================
key                shape, dtype                        meaning
=================  =================================  ===========================================
``states``         ``[n, S, T, C, h, w]`` float16      trajectory states at the S student times
``x0``             ``[n, T, C, h, w]`` float16         the teacher's clean sample
``keypoints``      ``[n, T, 134, 3]`` float32          the frames' keypoints (pose maps are redrawn)
``reference``      ``[n, C, h, w]`` float32            the portrait's clean latent
``meta``           JSON string                         times, teacher steps and mask, checksums
=================  =================================  ===========================================
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from inference.errors import InputFileError
from inference.render.pose_map import PoseMapStyle, draw_pose_map
from training.distillation.batches import to_device
from training.distillation.clip_attention import ClipMaskSpec, clip_attention
from training.distillation.runtime import Budget, autocast
from training.distillation.sampler import clip_denoiser, euler_trajectory
from training.models.autoencoder import Autoencoder
from training.models.transformer import VideoTransformer

FORMAT = "podium-ode-pairs/1"
_FIX = "Make them with `python -m training.distill ode-pairs`"


@dataclass(frozen=True)
class PairsInfo:
    """What a set of ODE pairs was made with (stored in every shard).

    Attributes:
        timesteps: the student's times the states are kept at.
        teacher_steps: Euler steps of the trajectories; teacher_mask: the teacher's attention.
        teacher_sha256, autoencoder_sha256: the weights (checksums of their checkpoints).
    """

    timesteps: tuple[float, ...]
    teacher_steps: int
    teacher_mask: str
    teacher_sha256: str
    autoencoder_sha256: str


class ShardWriter:
    """Collects pairs and writes them ``clips_per_shard`` at a time."""

    def __init__(self, folder: Path, rank: int, info: PairsInfo, clips_per_shard: int = 64) -> None:
        self.folder = folder
        self.rank = rank
        self.info = info
        self.clips_per_shard = clips_per_shard
        self.buffer: dict[str, list[np.ndarray]] = {k: [] for k in ("states", "x0", "keypoints", "reference")}
        self.shards = len(list(folder.glob(f"pairs_r{rank}_*.npz"))) if folder.exists() else 0
        self.written = 0

    def add(self, states: torch.Tensor, x0: torch.Tensor, keypoints: np.ndarray, reference: torch.Tensor) -> None:
        """A batch: ``states`` ``[S, B, T, C, h, w]``, ``x0`` ``[B, T, C, h, w]``, ``keypoints`` ``[B, T, 134, 3]``,
        ``reference`` ``[B, C, h, w]``."""
        self.buffer["states"] += list(states.transpose(0, 1).to(torch.float16).cpu().numpy())
        self.buffer["x0"] += list(x0.to(torch.float16).cpu().numpy())
        self.buffer["keypoints"] += list(np.asarray(keypoints, dtype=np.float32))
        self.buffer["reference"] += list(reference.float().cpu().numpy())
        while len(self.buffer["x0"]) >= self.clips_per_shard:
            self._write(self.clips_per_shard)

    def close(self) -> None:
        """Writes what is left."""
        if self.buffer["x0"]:
            self._write(len(self.buffer["x0"]))

    def _write(self, count: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.stack(v[:count]) for k, v in self.buffer.items()}
        for v in self.buffer.values():
            del v[:count]
        meta = {"format": FORMAT, "timesteps": list(self.info.timesteps), "teacher_steps": self.info.teacher_steps,
                "teacher_mask": self.info.teacher_mask, "teacher_sha256": self.info.teacher_sha256,
                "autoencoder_sha256": self.info.autoencoder_sha256}
        path = self.folder / f"pairs_r{self.rank}_{self.shards:05d}.npz"
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as f:
            np.savez(f, **arrays, meta=np.array(json.dumps(meta)))
        partial.replace(path)
        self.shards += 1
        self.written += count


def _read_info(meta: dict, where: Path) -> PairsInfo:
    if meta.get("format") != FORMAT:
        raise InputFileError(where, f"unknown ODE-pair format {meta.get('format')!r}", _FIX)
    return PairsInfo(timesteps=tuple(meta["timesteps"]), teacher_steps=int(meta["teacher_steps"]),
                     teacher_mask=meta["teacher_mask"], teacher_sha256=meta["teacher_sha256"],
                     autoencoder_sha256=meta["autoencoder_sha256"])


class OdePairs(Dataset):
    """Every pair in a folder of shards, held in memory; items add the pose maps (drawn in the worker).

    Item: ``states`` float32 ``[S, T, C, h, w]``, ``x0`` ``[T, C, h, w]``, ``keypoints`` ``[T, 134, 3]``,
    ``reference`` ``[C, h, w]``, ``pose`` uint8 ``[T, size, size, 3]``, drawn as the teacher that made the pairs
    was trained (``pose_style``: its ``StudentConfig.pose_style``).

    Raises:
        InputFileError: no shards, a damaged shard, or shards made with different settings.
    """

    def __init__(self, folder: str | Path, size: int, *, pose_style: PoseMapStyle) -> None:
        folder = Path(folder)
        paths = sorted(folder.glob("pairs_r*_*.npz"))
        if not paths:
            raise InputFileError(folder, "holds no ODE-pair shards (pairs_r*_*.npz)", _FIX)
        arrays: dict[str, list[np.ndarray]] = {k: [] for k in ("states", "x0", "keypoints", "reference")}
        self.info: PairsInfo | None = None
        for path in paths:
            try:
                with np.load(path, allow_pickle=False) as data:
                    info = _read_info(json.loads(str(data["meta"])), path)
                    for key in arrays:
                        arrays[key].append(data[key])
            except (OSError, ValueError, KeyError, EOFError) as exc:
                raise InputFileError(path, f"is not a readable ODE-pair shard ({exc})", _FIX) from exc
            if self.info is not None and info != self.info:
                raise InputFileError(path, "was made with other settings than the other shards of its folder",
                                     "Keep one set of ODE pairs per folder")
            self.info = info
        self.arrays = {k: np.concatenate(v) for k, v in arrays.items()}
        self.size = size
        self.pose_style = pose_style

    def __len__(self) -> int:
        return len(self.arrays["x0"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        keypoints = self.arrays["keypoints"][index]
        pose = np.stack([draw_pose_map(k, (self.size, self.size), style=self.pose_style) for k in keypoints])
        return {"states": torch.from_numpy(self.arrays["states"][index].astype(np.float32)),
                "x0": torch.from_numpy(self.arrays["x0"][index].astype(np.float32)),
                "keypoints": torch.from_numpy(keypoints), "reference": torch.from_numpy(self.arrays["reference"][index]),
                "pose": torch.from_numpy(pose)}


@torch.no_grad()
def generate(teacher: VideoTransformer, spec: ClipMaskSpec, autoencoder: Autoencoder, batches: Iterable[dict],
             writer: ShardWriter, *, steps: int, budget: Budget, max_clips: int, device: torch.device,
             generator: torch.Generator) -> int:
    """Runs the teacher's sampler on training clips until ``max_clips`` pairs or the budget; returns the count.

    Args:
        teacher: the (sparse-adapted) teacher transformer; spec: its attention.
        batches: loader batches of :class:`~training.distillation.batches.DistillationClips` made with ``spec``.
        writer: where the pairs go (its ``info.timesteps`` are the recorded times).
        steps: Euler steps of each trajectory.
        generator: the noise (on ``device``).
    """
    teacher.eval()
    config = teacher.config
    made = 0
    for batch in batches:
        if made >= max_clips or budget.expired():
            break
        clips = to_device(batch, autoencoder, device, encode_frames=False)
        shape = (clips.clips, clips.pose.shape[1], config.latent_channels, config.latent_size, config.latent_size)
        noise = torch.randn(shape, generator=generator, device=device)
        attention = clip_attention(spec, keypoints=clips.keypoints, arrays=clips.masks, device=device)
        with autocast(device):
            x0, states = euler_trajectory(clip_denoiser(teacher, clips.pose, clips.reference, attention), noise, steps,
                                          record=writer.info.timesteps)
        writer.add(states, x0, clips.keypoints, clips.reference)
        made += clips.clips
    writer.close()
    return made
