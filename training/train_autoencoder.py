"""Train the frame autoencoder (8× down) on synthetic presenters rendered on the fly.

One GPU::

    python -m training.train_autoencoder --bank out/motion_train.npz --heldout-bank out/motion_heldout.npz \\
        --out runs/ae --minutes 5

Several GPUs: the same command under ``torchrun --nproc-per-node N``. ``--resume runs/ae/autoencoder.pt``
continues a run (model, optimiser, step and elapsed time); ``--resume runs/ae/autoencoder_weights`` continues
from the weights alone (a fresh optimiser: what a new GPU machine has after the weights came back). The run
writes into ``--out``: ``autoencoder.pt`` (weights, optimiser, latent scale: for ``--resume``),
``autoencoder_weights.p1of1.ckpt`` (bf16 weights and latent scale only, ~8 MB at the bundled size, one part of
:mod:`training.checkpoints`; load it with :func:`training.models.autoencoder.load_autoencoder`), ``metrics.json``
(config, loss curve, held-out PSNR/SSIM/region errors, decoder time), and ``samples.png`` (held-out frames:
truth, reconstruction, error×4).

Loss: L1 + 0.2·(1 − SSIM), with the mouth and both hands weighted ``--region-weight`` times more, so the
parts viewers watch are reconstructed first.

``--decoder-only`` (with ``--resume``) fine-tunes the decoder alone: the encoder and the latent scale stay as they
were, so every teacher and student trained on the resumed autoencoder's latents works with the result. Its
checkpoint records that latent space (``meta["latent_space"]``, see
:func:`training.models.autoencoder.latent_space`), which the training and evaluation commands check.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from training.checkpoints import bf16_state_dict, load_checkpoint, save_checkpoint
from training.data.clips import ClipConfig, ClipSampler
from training.data.motion_bank import MotionBank
from training.data.torch_dataset import SyntheticClipDataset
from training.metrics import psnr, region_mae, ssim
from training.models.autoencoder import Autoencoder, autoencoder_meta, latent_space, rgb_from_uint8, rgb_to_uint8
from training.models.config import PRESETS
from training.synthetic.regions import REGION_BITS

FRAMES_PER_CLIP = 4
EVAL_CLIPS = 48


class Reconstruct(torch.nn.Module):
    """Encoder then decoder, as one module (what DistributedDataParallel wraps); with ``frozen_encoder`` the
    encoder runs without gradients."""

    def __init__(self, model: Autoencoder, frozen_encoder: bool = False) -> None:
        super().__init__()
        self.model = model
        self.frozen_encoder = frozen_encoder

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_encoder):
            latent = self.model.encoder(rgb)
        return self.model.decoder(latent)


def region_weights(masks: torch.Tensor, weight: float) -> torch.Tensor:
    """Per-pixel loss weights ``[N, 1, H, W]``: 1, or ``weight`` on the mouth and hands."""
    bits = REGION_BITS["mouth"] | REGION_BITS["left_hand"] | REGION_BITS["right_hand"]
    focus = (masks.to(torch.int32) & bits) != 0
    return 1.0 + (weight - 1.0) * focus.float().unsqueeze(1)


def loss_fn(recon: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    l1 = ((recon - target).abs() * weights).mean() / weights.mean()
    return l1 + 0.2 * (1.0 - ssim(recon, target).mean())


def batch_frames(batch: dict[str, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips ``[B, T, 3, H, W]`` uint8 → frames ``[B·T, 3, H, W]`` in [-1, 1] and masks ``[B·T, H, W]``."""
    frames = batch["frames"].to(device, non_blocking=True)
    b, t = frames.shape[:2]
    rgb = rgb_from_uint8(frames.flatten(0, 1).permute(0, 2, 3, 1))
    masks = batch["masks"].to(device, non_blocking=True).flatten(0, 1)
    return rgb, masks


@torch.no_grad()
def evaluate(model: Autoencoder, loader: DataLoader, device: torch.device) -> tuple[dict[str, float], np.ndarray]:
    """Held-out PSNR, SSIM and region errors; also returns a sample sheet (uint8 RGB)."""
    model.eval()
    psnrs, ssims, mouth, hands, whole, latents = [], [], [], [], [], []
    sheet_rows = None
    for batch in loader:
        rgb, masks = batch_frames(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            latent = model.encoder(rgb)
            recon = model.decoder(latent).float()
        latents.append(latent.float().flatten())
        psnrs.append(psnr(recon, rgb))
        ssims.append(ssim(recon, rgb))
        m = masks.to(torch.int32)
        mouth.append(region_mae(recon, rgb, (m & REGION_BITS["mouth"]) != 0))
        hands.append(region_mae(recon, rgb, (m & (REGION_BITS["left_hand"] | REGION_BITS["right_hand"])) != 0))
        whole.append(region_mae(recon, rgb, torch.ones_like(masks, dtype=torch.bool)))
        if sheet_rows is None:
            truth = rgb_to_uint8(rgb[:6]).cpu().numpy()
            out = rgb_to_uint8(recon[:6]).cpu().numpy()
            err = np.clip(np.abs(truth.astype(np.int16) - out.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
            sheet_rows = np.concatenate([np.concatenate(list(row), axis=1) for row in (truth, out, err)], axis=0)
    model.train()
    std = torch.cat(latents).std().item()
    metrics = {
        "psnr_db": torch.cat(psnrs).mean().item(),
        "ssim": torch.cat(ssims).mean().item(),
        "mae_mouth": float(np.nanmean([v.item() for v in mouth])),
        "mae_hands": float(np.nanmean([v.item() for v in hands])),
        "mae_frame": float(np.mean([v.item() for v in whole])),
        "latent_std": std,
        "frames": int(sum(len(x) for x in psnrs)),
    }
    return metrics, sheet_rows


@torch.no_grad()
def decoder_time_ms(model: Autoencoder, size: int, device: torch.device) -> dict[str, float]:
    """Decoder time per frame (bf16, median of 50 runs after warm-up), for batches of 1, 2 and 8 frames."""
    if device.type != "cuda":
        return {}
    model.eval()
    latent_side = size // 8
    out = {}
    for batch in (1, 2, 8):
        z = torch.randn(batch, model.decoder.net[0].in_channels, latent_side, latent_side, device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(10):
                model.decoder(z)
            times = []
            for _ in range(50):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model.decoder(z)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
        out[f"batch{batch}_ms_per_frame"] = float(np.median(times)) / batch
    model.train()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train_autoencoder", description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, required=True, help="training motion bank (training.data.motion_bank)")
    parser.add_argument("--heldout-bank", type=Path, required=True, help="held-out motion bank")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--preset", default="bundled", choices=sorted(PRESETS), help="model size preset")
    parser.add_argument("--latent-channels", type=int, help="latent channels (default: the preset's; more keep more "
                        "detail, and the teacher and student then take that many)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time budget (wall clock)")
    parser.add_argument("--batch-clips", type=int, default=16, help=f"clips per batch per GPU ({FRAMES_PER_CLIP} frames each)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--region-weight", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--resume", type=Path, help="checkpoint to continue from: autoencoder.pt (everything) or "
                        "the autoencoder_weights checkpoint (weights only)")
    parser.add_argument("--decoder-only", action="store_true", help="with --resume: train the decoder alone; the "
                        "encoder and latent scale stay, so networks trained on the resumed latents keep working")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(args.seed + rank)

    if args.latent_channels is not None and args.latent_channels < 1:
        parser.error(f"--latent-channels must be at least 1, got {args.latent_channels}")
    if args.decoder_only and not args.resume:
        parser.error("--decoder-only fine-tunes an autoencoder's decoder: give the autoencoder with --resume")
    state = resumed = None
    parent_space = None  # a decoder-only run: the latent space it keeps
    if args.resume and args.resume.suffix == ".pt":
        state = torch.load(args.resume, map_location=device)
        parent_space = state.get("latent_space")
        if args.decoder_only != (parent_space is not None):
            parser.error(f"{args.resume} is {'a decoder-only fine-tune' if parent_space else 'a whole-network run'}: "
                         f"continue it {'with' if parent_space else 'without'} --decoder-only (or start a decoder-only "
                         "fine-tune from its autoencoder_weights)")
    elif args.resume:  # weights only (training.checkpoints parts): optimiser, warm-up and schedule start afresh
        resumed = load_checkpoint(args.resume)
        parent_space = latent_space(resumed) if args.decoder_only else None
    config = PRESETS[args.preset]
    trained_with = (state.get("latent_channels", config.latent_channels) if state is not None else
                    resumed.meta["config"]["latent_channels"] if resumed is not None else None)
    if trained_with is not None and args.latent_channels not in (None, trained_with):
        parser.error(f"{args.resume} has {trained_with} latent channels, not --latent-channels {args.latent_channels}; "
                     "leave the option out to continue it")
    config = config.with_(latent_channels=trained_with or args.latent_channels or config.latent_channels)
    size = config.size
    model = Autoencoder(config).to(device)
    model.encoder.requires_grad_(not args.decoder_only)
    trainable = model.decoder.parameters() if args.decoder_only else model.parameters()
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step, elapsed_before, history = 0, 0.0, []
    if state is not None:
        model.load_state_dict({k: v.float() for k, v in state["model"].items()})
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed_before, history = state["step"], state["elapsed"], state.get("history", [])
    elif resumed is not None:
        model.load_state_dict({k: v.float() for k, v in resumed.state["model"].items()})
    reconstruct = Reconstruct(model, frozen_encoder=args.decoder_only)
    trained = (torch.nn.parallel.DistributedDataParallel(reconstruct, device_ids=[device.index]) if distributed
               else reconstruct)

    train_bank = MotionBank.load(args.bank)
    train_set = SyntheticClipDataset(
        ClipSampler(train_bank, "train", ClipConfig(length=FRAMES_PER_CLIP, seed=args.seed * 1000 + rank + step)),
        size=size, num_clips=10_000_000, pose_maps=False)
    loader = DataLoader(train_set, batch_size=args.batch_clips, shuffle=False, num_workers=args.workers,
                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
                        prefetch_factor=4 if args.workers > 0 else None, drop_last=True)
    heldout = SyntheticClipDataset(ClipSampler(MotionBank.load(args.heldout_bank), "heldout",
                                               ClipConfig(length=FRAMES_PER_CLIP, seed=12345)),
                                   size=size, num_clips=EVAL_CLIPS, pose_maps=False)
    eval_loader = DataLoader(heldout, batch_size=8, num_workers=min(4, args.workers))

    budget = args.minutes * 60.0
    start = time.monotonic()
    last_log = start
    frames_seen = 0
    for batch in loader:
        elapsed = time.monotonic() - start
        if elapsed >= budget:
            break
        progress = min(1.0, (elapsed_before + elapsed) / (elapsed_before + budget))
        lr = args.lr * (min(1.0, (step + 1) / 200) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))))
        for group in optimizer.param_groups:
            group["lr"] = lr
        rgb, masks = batch_frames(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            recon = trained(rgb)
        loss = loss_fn(recon.float(), rgb, region_weights(masks, args.region_weight))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        frames_seen += rgb.shape[0] * world
        if rank == 0 and (time.monotonic() - last_log > 15 or step == 1):
            last_log = time.monotonic()
            rate = frames_seen / (last_log - start)
            history.append({"step": step, "seconds": round(elapsed_before + elapsed, 1), "loss": loss.item(),
                            "lr": lr, "frames_per_s": round(rate)})
            print(f"step {step:6d}  {elapsed_before + elapsed:7.0f} s  loss {loss.item():.4f}  lr {lr:.2e}  "
                  f"{rate:.0f} frames/s", flush=True)
    train_seconds = time.monotonic() - start

    if rank == 0:
        metrics, sheet = evaluate(model, eval_loader, device)
        if not args.decoder_only:  # a decoder-only run keeps the latent space, scale included
            model.latent_scale.fill_(1.0 / max(metrics["latent_std"], 1e-6))
        timing = decoder_time_ms(model, size, device)
        args.out.mkdir(parents=True, exist_ok=True)
        weights = bf16_state_dict(model)
        torch.save({"preset": args.preset, "latent_channels": config.latent_channels, "model": weights,
                    "optimizer": optimizer.state_dict(), "step": step,
                    "elapsed": elapsed_before + train_seconds, "history": history, "latent_space": parent_space},
                   args.out / "autoencoder.pt")
        kept = {"latent_space": parent_space} if parent_space else {}
        save_checkpoint(args.out, "autoencoder_weights", {"model": weights},
                        meta=autoencoder_meta(config, preset=args.preset, step=step, heldout=metrics, **kept))
        report = {"preset": args.preset, "size": size, "steps": step, "train_seconds": elapsed_before + train_seconds,
                  "frames_seen": frames_seen, "gpus": world, "decoder_only": args.decoder_only, **kept,
                  "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "args": {k: str(v) for k, v in vars(args).items() if k != "out"}, "heldout": metrics, "decoder": timing,
                  "history": history}
        (args.out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        import cv2

        cv2.imwrite(str(args.out / "samples.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(json.dumps({"heldout": metrics, "decoder": timing, "steps": step}, indent=2))
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
