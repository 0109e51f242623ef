"""Pre-render synthetic clips into shards (fixed evaluation sets, or data for machines without the renderer).

    python -m training.data.make_synthetic OUT_DIR --split heldout --clips 64 [--size 256] [--length 16]
        [--bank motion_heldout.npz] [--seed 0] [--clips-per-identity 1]

Held-out sets use held-out identities (the odd seed stream) and held-out speech
(a motion bank built from held-out clips); without ``--bank`` the bank is built
from the split's speech first (a minute or two on one core).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from inference.errors import PodiumError
from training.data.clips import ClipConfig, ClipSampler
from training.data.motion_bank import MotionBank
from training.data.shards import ShardWriter
from training.data.speech import SPLITS


def make_synthetic(out: Path, split: str, clips: int, size: int, config: ClipConfig,
                   bank: MotionBank, frames_per_shard: int = 256) -> ShardWriter:
    """Render clips ``0 .. clips-1`` of ``split`` into shards under ``out``; returns the writer (paths, counts)."""
    if bank.split != split:
        raise ValueError(f"the motion bank is for the {bank.split!r} split, not {split!r}: build one for {split!r}")
    sampler = ClipSampler(bank, split, config)
    meta = {"source": "synthetic", "split": split, "size": size, "fps": bank.fps, "clip_length": config.length,
            "seed": config.seed}
    writer = ShardWriter(out, meta, frames_per_shard)
    for index in range(clips):
        if writer.full:
            writer.flush()
        sample = sampler.render(index, size)
        ref = writer.add_reference(sample.reference, sample.reference_keypoints, sample.spec.identity_seed)
        start = sample.spec.start
        writer.add_clip(sample.frames, sample.keypoints, sample.masks, ref, index, range(start, start + config.length))
    writer.flush()
    return writer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data.make_synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder for shard_*.npz")
    parser.add_argument("--split", choices=SPLITS, default="heldout")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--length", type=int, default=16, help="frames per clip")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--bank", type=Path, help="motion bank (.npz) of the same split; built if not given")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips-per-identity", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        bank = MotionBank.load(args.bank) if args.bank else MotionBank.build(args.split)
        config = ClipConfig(length=args.length, clips_per_identity=args.clips_per_identity, seed=args.seed)
        t0 = time.perf_counter()
        writer = make_synthetic(args.out, args.split, args.clips, args.size, config, bank)
    except (PodiumError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t0
    print(f"{args.out}: {writer.total_frames} frames in {len(writer.paths)} shards "
          f"({args.clips} {args.split} clips of {args.length} at {args.size} px) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
