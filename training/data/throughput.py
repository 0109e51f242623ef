"""What a training clip costs on the CPU, part by part, and how many clips a DataLoader delivers.

    python -m training.data.throughput --bank out/motion_train.npz [--frames 16] [--size 256]
        [--loader-seconds 20 --workers 14 --batch-clips 16]

Prints one table of single-core costs per clip (motion segment and perturbation, identity and presenter,
frame rendering, reference rendering, pose maps, conversion to tensors, collation, and for comparison
compressed and plain shard writes and reads), then, with ``--loader-seconds``, the clips per second a
DataLoader of ``--workers`` processes delivers. The numbers decide how the teacher is fed
(``training/README.md``, "Data throughput").
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

from inference.render.pose_map import FULL, draw_pose_map
from training.data.clips import ClipConfig, ClipSampler
from training.data.motion_bank import MotionBank
from training.data.torch_dataset import SyntheticClipDataset, _item
from training.synthetic.identity import sample_identity
from training.synthetic.presenter import SyntheticPresenter


def _ms(action: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``action`` over ``repeats`` runs after one warm-up."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0


def clip_costs(bank: MotionBank, frames: int, size: int, repeats: int = 5) -> list[tuple[str, float]]:
    """Single-core milliseconds per clip of ``frames`` frames at ``size`` px, part by part."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    sampler = ClipSampler(bank, "train", ClipConfig(length=frames, seed=1))
    spec = sampler.spec(0)
    presenter = SyntheticPresenter(sample_identity(spec.identity_seed), size)
    keypoints = presenter.personalise(sampler.keypoints(spec))
    sample = sampler.render(0, size)
    reference_keypoints = sample.reference_keypoints
    item = _item(sample.frames, sample.masks, sample.keypoints, sample.reference, reference_keypoints, 0, 0, True)
    buffer = io.BytesIO()

    def write(compressed: bool) -> None:
        buffer.seek(0)
        buffer.truncate()
        (np.savez_compressed if compressed else np.savez)(buffer, frames=sample.frames, masks=sample.masks)

    write(True)
    packed = buffer.getvalue()

    def read() -> None:
        with np.load(io.BytesIO(packed)) as data:
            data["frames"], data["masks"]

    return [
        ("motion segment + perturbation + camera", _ms(lambda: sampler.keypoints(spec), repeats)),
        ("identity + presenter", _ms(lambda: SyntheticPresenter(sample_identity(spec.identity_seed), size), repeats)),
        (f"render {frames} frames", _ms(lambda: presenter.render_sequence(keypoints), repeats)),
        ("render the reference", _ms(lambda: presenter.render(reference_keypoints), repeats)),
        (f"pose maps ({frames} + reference)",
         _ms(lambda: [draw_pose_map(k, (size, size), style=FULL)
                      for k in (*keypoints, reference_keypoints)], repeats)),
        ("to tensors (no pose maps)", _ms(lambda: _item(sample.frames, sample.masks, sample.keypoints,
                                                        sample.reference, reference_keypoints, 0, 0, False), repeats)),
        ("collate (per clip, batch of 8)", _ms(lambda: default_collate([item] * 8), repeats) / 8),
        ("for comparison: savez_compressed frames + masks", _ms(lambda: write(True), repeats)),
        ("for comparison: read them back", _ms(read, repeats)),
        ("for comparison: plain savez", _ms(lambda: write(False), repeats)),
    ]


def loader_rate(bank: MotionBank, frames: int, size: int, workers: int, batch_clips: int, seconds: float) -> float:
    """Clips per second a DataLoader of ``workers`` delivers (after its first batch), pose maps included."""
    dataset = SyntheticClipDataset(ClipSampler(bank, "train", ClipConfig(length=frames, seed=2)), size=size,
                                   num_clips=10_000_000, pose_style=FULL)
    loader = DataLoader(dataset, batch_size=batch_clips, num_workers=workers, prefetch_factor=4 if workers else None,
                        persistent_workers=workers > 0)
    batches = iter(loader)
    next(batches)
    start, clips = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        clips += len(next(batches)["frames"])
    return clips / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, required=True, help="a motion bank (training.data.motion_bank)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loader-seconds", type=float, default=0.0, help="also time a DataLoader for this long")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--batch-clips", type=int, default=16)
    args = parser.parse_args(argv)
    bank = MotionBank.load(args.bank)
    costs = clip_costs(bank, args.frames, args.size, args.repeats)
    per_clip = sum(ms for name, ms in costs if not name.startswith("for comparison"))
    print(f"one core, clip of {args.frames} frames at {args.size} px (median of {args.repeats}):")
    for name, ms in costs:
        share = "" if name.startswith("for comparison") else f"  {100 * ms / per_clip:4.1f} %"
        print(f"  {name:50s} {ms:8.2f} ms{share}")
    print(f"  {'total per clip':50s} {per_clip:8.2f} ms  → {1000 / per_clip:.1f} clips/s, "
          f"{1000 * args.frames / per_clip:.0f} frames/s per core")
    if args.loader_seconds > 0:
        rate = loader_rate(bank, args.frames, args.size, args.workers, args.batch_clips, args.loader_seconds)
        print(f"DataLoader, {args.workers} workers, batches of {args.batch_clips}: {rate:.1f} clips/s "
              f"({rate * args.frames:.0f} frames/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
