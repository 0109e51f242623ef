"""Synthetic presenter speed: renders per second on one core, and training clips per second.

Usage: python main.py bench synthetic [--frames 400] [--workers N] [--bank motion_heldout.npz]

Measures, on motion from the motion stage (held-out speech, perturbed as in training), both wall time and
CPU time (on a shared machine the CPU time per frame is what one core costs; frames/s per core = 1 / CPU time):
* the renderer alone (one frame + its masks) at 256 and 512 px, one OpenCV thread;
* whole training items (16-frame clip + reference + pose maps, as the DataLoader gets them) on one core;
* with ``--workers N``, a DataLoader with N worker processes (the GPU machine has 16 cores).
The issue's target: at least 200 renders per second per core at 256 px.
"""

from __future__ import annotations

import argparse
import time

import cv2

from bench.common import format_table, summarize, write_results
from training.data.clips import ClipConfig, ClipSampler
from training.data.motion_bank import MotionBank
from training.data.speech import speech_clips
from training.synthetic.identity import sample_identity
from training.synthetic.presenter import SyntheticPresenter


def _render_times(sampler: ClipSampler, size: int, frames: int) -> tuple[list[float], float]:
    """Wall time of each render, and the mean CPU time per render (what one core spends, load or not)."""
    times: list[float] = []
    cpu = 0.0
    index = 0
    while len(times) < frames:
        spec = sampler.spec(index)
        presenter = SyntheticPresenter(sample_identity(spec.identity_seed), size)
        for k in presenter.personalise(sampler.keypoints(spec)):
            c, t = time.process_time(), time.perf_counter()
            presenter.render(k)
            times.append(time.perf_counter() - t)
            cpu += time.process_time() - c
        index += 1
    return times[:frames], cpu / len(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400, help="renders timed per size")
    parser.add_argument("--clips", type=int, default=12, help="training items timed")
    parser.add_argument("--workers", type=int, default=0, help="also time a DataLoader with this many workers")
    parser.add_argument("--bank", help="motion bank (.npz); default: the held-out demo sentence, one style")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)

    if args.bank:
        bank = MotionBank.load(args.bank)
    else:
        bank = MotionBank.build("heldout", styles=("lively",), seeds=(0,), clips=speech_clips("heldout")[:1])
    sampler = ClipSampler(bank, bank.split, ClipConfig(length=16))
    rows, figures = [], {}
    for size in (256, 512):
        wall, cpu = _render_times(sampler, size, args.frames)
        stats = summarize(wall)
        figures[f"render_{size}"] = {**stats, "cpu_ms": cpu * 1000.0, "fps_per_core": 1.0 / cpu}
        rows.append([f"render {size} px (frame + masks)", stats["median_ms"], stats["p95_ms"], cpu * 1000.0, 1.0 / cpu])

    from training.data.torch_dataset import SyntheticClipDataset

    dataset = SyntheticClipDataset(sampler, size=256, num_clips=max(args.clips, 1))
    dataset[0]
    wall, cpu = [], 0.0
    for i in range(1, args.clips + 1):
        c, t = time.process_time(), time.perf_counter()
        dataset[i % len(dataset)]
        wall.append(time.perf_counter() - t)
        cpu += time.process_time() - c
    stats = summarize(wall)
    cpu_per_frame = cpu / args.clips / 16
    figures["item_256_clip16_posemaps"] = {**stats, "cpu_ms_per_frame": cpu_per_frame * 1000.0,
                                           "frames_per_s_per_core": 1.0 / cpu_per_frame}
    rows.append(["training item 256 px (16 frames + ref + pose maps), per frame", stats["median_ms"] / 16,
                 stats["p95_ms"] / 16, cpu_per_frame * 1000.0, 1.0 / cpu_per_frame])

    if args.workers > 0:
        from torch.utils.data import DataLoader

        big = SyntheticClipDataset(sampler, size=256, num_clips=args.workers * 24)
        loader = DataLoader(big, batch_size=8, num_workers=args.workers, persistent_workers=False)
        it = iter(loader)
        next(it)  # workers started
        t = time.perf_counter()
        n = sum(batch["frames"].shape[0] * batch["frames"].shape[1] for batch in it)
        rate = n / (time.perf_counter() - t)
        figures["dataloader"] = {"workers": args.workers, "frames_per_s": rate}
        rows.append([f"DataLoader, {args.workers} workers (wall clock)", float("nan"), float("nan"), float("nan"), rate])

    table = format_table(["what", "wall median ms", "wall p95 ms", "CPU ms", "frames/s per core (CPU time)"], rows)
    print(table)
    figures["motion_frames"] = bank.total_frames
    print(f"results: {write_results('synthetic', figures, table)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
