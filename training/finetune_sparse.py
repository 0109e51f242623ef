"""Fine-tune the teacher with input-aware sparse attention, and check that it keeps its quality (paper §4, §5.4).

One GPU::

    python -m training.finetune_sparse --teacher runs/teacher/teacher_ema --autoencoder runs/ae/autoencoder_weights \\
        --bank out/motion_train.npz --heldout-bank out/motion_heldout.npz --out runs/sparse-local --mask local \\
        --minutes 4

Several GPUs: the same command under ``torchrun --nproc-per-node N`` (``--batch-clips``, ``--workers`` per GPU).
``--resume RUN/resume/sparse_resume`` continues a run on the machine that wrote it; ``--teacher`` may also be an
earlier fine-tune's ``teacher_sparse`` (weights that came back), which continues with a fresh optimiser.

The masks (:mod:`training.distillation.clip_attention`) are the runtime's (:mod:`inference.render.student.masks`):
``--mask global`` keeps, for every frame, its own tokens and the ``top_k`` frames of the clip nearest in pose
after rigid Procrustes alignment; ``--mask local`` also restricts attention across frames to tokens of the
same body region (face, hands, arms and shoulders, torso). ``--causal`` selects among earlier frames only.
The objective, data and region weighting are the teacher's (:mod:`training.train_teacher`): velocity loss
with the mouth and hands weighted, bf16 autocast, AdamW, warm-up and cosine, an EMA of the weights.

Quality is measured by the teacher's protocol (:mod:`training.teacher_eval`: held-out identities and speech,
the same noise) before and after: the teacher as trained (dense), the same weights with the sparse mask
(no training), and the fine-tuned EMA with the sparse mask. Writes into ``--out`` (rank 0):

* ``teacher_sparse.pKofN.ckpt``: the fine-tuned EMA weights (:func:`training.models.teacher.load_teacher`), the
  mask in the manifest's ``attention`` entry;
* ``resume/sparse_resume.p1of1.ckpt``: model, EMA, optimiser, step, clock (stays on the machine);
* ``metrics.json`` (before/after figures, loss curve) and ``samples.png`` (truth / output / error × 4 columns:
  dense teacher, sparse without training, sparse fine-tuned).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from inference.errors import PodiumError
from training.checkpoints import load_checkpoint, save_checkpoint
from training.data.reuse import BackgroundBatches, ReuseBuffer
from training.distillation import runtime
from training.distillation.batches import MASK_KEYS, loader, synthetic_clips
from training.distillation.clip_attention import MASKS, ClipAttention, spec_for
from training.distillation.evaluation import evaluate, heldout_clips, write_sheet
from training.models.autoencoder import check_latent_space, latent_space, load_autoencoder
from training.models.teacher import Teacher, add_noise, load_teacher, sample_times, save_teacher, velocity_loss
from training.train_teacher import EMA, prepare_clips

WEIGHTS_NAME = "teacher_sparse"
RESUME_NAME = "sparse_resume"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.finetune_sparse", description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, required=True, help="teacher_ema (or teacher_sparse) checkpoint")
    parser.add_argument("--autoencoder", type=Path, required=True, help="the autoencoder_weights of the teacher")
    parser.add_argument("--bank", type=Path, required=True, help="training motion bank")
    parser.add_argument("--heldout-bank", type=Path, required=True, help="held-out motion bank (held-out speech)")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--mask", default="local", choices=[m for m in MASKS if m != "dense"],
                        help="global: top-K frames by pose; local: and region to region across frames")
    parser.add_argument("--causal", action="store_true", help="select among earlier frames of the clip only")
    parser.add_argument("--frames", type=int, help="frames per clip (default: the teacher's clip length)")
    parser.add_argument("--minutes", type=float, default=4.0, help="training time of this call (wall clock)")
    parser.add_argument("--batch-clips", type=int, default=8, help="clips per step per GPU")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--ema", type=float, default=0.999, help="largest EMA decay")
    parser.add_argument("--region-weight", type=float, default=3.0, help="loss weight of mouth and hand cells")
    parser.add_argument("--t-mean", type=float, default=-0.8)
    parser.add_argument("--t-std", type=float, default=0.8)
    parser.add_argument("--reuse", type=float, default=2.0, help="most times a rendered clip is trained on")
    parser.add_argument("--buffer-clips", type=int, default=256, help="clips kept on the GPU for reuse")
    parser.add_argument("--workers", type=int, default=max(0, (os.cpu_count() or 2) - 2), help="loader processes per GPU")
    parser.add_argument("--resume", type=Path, help="resume state (RUN/resume/sparse_resume): continue exactly")
    parser.add_argument("--eval-clips", type=int, default=16, help="held-out clips scored before and after")
    parser.add_argument("--eval-steps", type=int, default=25, help="Euler steps of the held-out samples")
    parser.add_argument("--skip-before", action="store_true", help="do not score the teacher before fine-tuning")
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: CUDA when available")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.batch_clips < 1 or args.eval_clips < 0 or args.eval_steps < 1:
        parser.error("--batch-clips and --eval-steps must be at least 1, --eval-clips at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    run = runtime.start(args.seed, args.device)
    try:
        autoencoder, ae_checkpoint = load_autoencoder(args.autoencoder, run.device)
        autoencoder.requires_grad_(False)
        teacher, teacher_checkpoint = load_teacher(args.teacher, run.device, to_distil=True)
        check_latent_space(teacher_checkpoint.meta, ae_checkpoint, "teacher")
        resume = load_checkpoint(args.resume, map_location="cpu") if args.resume else None
    except (PodiumError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config = teacher.config
    frames = args.frames or config.chunk_frames
    spec = spec_for(config, args.mask, causal=args.causal)
    heldout = heldout_clips(args.heldout_bank, frames=frames, size=config.size, clips=args.eval_clips,
                            pose_style=config.pose_style)
    log = runtime.Log(run)
    report: dict[str, object] = {"mask": args.mask, "causal": args.causal, "top_k": config.top_k, "frames": frames,
                                 "eval_steps": args.eval_steps, "eval_clips": args.eval_clips,
                                 "teacher": {"checkpoint": str(args.teacher), "sha256": teacher_checkpoint.sha256},
                                 "autoencoder_sha256": latent_space(ae_checkpoint)}
    sheets = []
    if run.is_main and args.eval_clips and not args.skip_before and resume is None:
        for name, mask in (("before_dense", "dense"), ("before_sparse_untrained", args.mask)):
            figures, sheet = evaluate("teacher", teacher.transformer, autoencoder, heldout, run.device,
                                      spec=spec_for(config, mask, causal=args.causal), steps=args.eval_steps)
            report[name] = figures
            sheets.append(sheet)
            log.info(f"held-out {name}: {figures}")

    teacher.train()
    ema = EMA(teacher, args.ema)
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0,
                                  fused=run.device.type == "cuda")
    step, seconds_before, history = 0, float(teacher_checkpoint.meta.get("finetune_seconds", 0.0)), []
    if resume is not None:
        teacher.load_state_dict(resume.state["teacher"])
        ema.model.load_state_dict(resume.state["ema"])
        optimizer.load_state_dict(resume.state["optimizer"])
        step, seconds_before, history = resume.state["step"], resume.state["seconds"], list(resume.state["history"])
        ema.updates = step
    runtime.broadcast_module(teacher, run)

    dataset = synthetic_clips(args.bank, "train", frames=frames, size=config.size, clips=100_000_000,
                              seed=args.seed * 1_000_003 + run.rank * 7919 + step,
                              pose_style=config.pose_style, spec=spec)
    feed = BackgroundBatches(loader(dataset, args.batch_clips, args.workers, pin=run.device.type == "cuda"))
    buffer = ReuseBuffer(max(args.buffer_clips, args.batch_clips), args.reuse,
                         torch.Generator().manual_seed(args.seed + run.rank)) if args.reuse > 1 else None
    budget = runtime.Budget(args.minutes, before=seconds_before)
    first_step = step
    try:
        while not runtime.all_ranks_agree(budget.expired(), run):
            clips = _next_clips(feed, buffer, args.batch_clips, autoencoder, run.device)
            lr = runtime.learning_rate(args.lr, step - first_step, budget.progress(), args.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = _training_step(teacher, clips, spec, args)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            runtime.average_gradients(teacher.parameters(), run)
            grad_norm = torch.nn.utils.clip_grad_norm_(teacher.parameters(), 1.0)
            optimizer.step()
            ema.update()
            step += 1
            log.step(step, budget.total, {"loss": loss.item(), "grad_norm": grad_norm.item(), "lr": lr},
                     force=step == first_step + 1)
    finally:
        feed.close()
    history += log.history
    if run.is_main:
        _finish(args, report, teacher, ema, optimizer, step, budget.total, history, heldout, autoencoder, spec,
                config, sheets, run)
    runtime.finish(run)
    return 0


def _next_clips(feed: BackgroundBatches, buffer: ReuseBuffer | None, batch_clips: int, autoencoder,  # noqa: ANN001
                device: torch.device) -> dict[str, torch.Tensor]:
    """The next training batch: :func:`training.train_teacher.prepare_clips` plus the clips' mask arrays."""
    def prepared(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        clips = prepare_clips(batch, autoencoder, device)
        clips.update({k: batch[k].to(device, non_blocking=True) for k in MASK_KEYS})
        return clips

    if buffer is None:
        return prepared(feed.get(block=True))
    block = buffer.needs_fresh(batch_clips)
    while (batch := feed.get(block=block)) is not None:
        buffer.add(prepared(batch))
        block = buffer.needs_fresh(batch_clips)
    return buffer.sample(batch_clips)


def _training_step(teacher: Teacher, clips: dict[str, torch.Tensor], spec, args: argparse.Namespace) -> torch.Tensor:  # noqa: ANN001
    """The teacher's flow-matching loss on a batch, with the sparse clip attention."""
    latent = clips["latent"]
    t = sample_times(len(latent), mean=args.t_mean, std=args.t_std, device=latent.device)
    noisy = add_noise(latent, torch.randn_like(latent), t)
    pose = clips["pose"].permute(0, 1, 3, 4, 2)
    attention = ClipAttention.from_arrays(clips, spec, latent.device)
    weight = 1.0 + (args.region_weight - 1.0) * clips["focus"].float()
    with runtime.autocast(latent.device):
        predicted = teacher.transformer.denoise_clips(noisy, t[:, None].expand(latent.shape[:2]), pose,
                                                      clips["reference"], attention)
    return velocity_loss(predicted, latent, t, weight)


def _finish(args: argparse.Namespace, report: dict, teacher: Teacher, ema: EMA, optimizer: torch.optim.Optimizer,
            step: int, seconds: float, history: list, heldout, autoencoder, spec, config, sheets: list,  # noqa: ANN001
            run: runtime.Runtime) -> None:
    """Saves the weights and the resume state, scores the fine-tuned EMA, writes metrics and the sheet."""
    save_checkpoint(args.out / "resume", RESUME_NAME,
                    {"teacher": teacher.state_dict(), "ema": ema.model.state_dict(), "optimizer": optimizer.state_dict(),
                     "step": step, "seconds": seconds, "history": history},
                    meta={"kind": "sparse-resume", "config": config.to_dict(), "step": step}, part_bytes=None)
    if args.eval_clips:
        figures, sheet = evaluate("teacher", ema.model.transformer, autoencoder, heldout, run.device, spec=spec,
                                  steps=args.eval_steps)
        report["after_sparse"] = figures
        sheets.append(sheet)
        if "before_dense" in report:
            before = report["before_dense"]
            report["change_against_dense"] = {k: figures[k] - before[k] for k in figures
                                              if isinstance(before.get(k), float)}
        write_sheet(args.out / "samples.png", sheets)
    attention = {"mask": args.mask, "causal": args.causal, "top_k": config.top_k}
    files = save_teacher(args.out, WEIGHTS_NAME, ema.model, attention=attention, step=step,
                         finetune_seconds=round(seconds, 1), autoencoder_sha256=report["autoencoder_sha256"],
                         base_teacher_sha256=report["teacher"]["sha256"], heldout=report.get("after_sparse"),
                         history=history[-200:])
    report.update(steps=step, train_seconds=round(seconds, 1), gpus=run.world, device=run.device_name,
                  weights=[p.name for p in files], history=history, args={k: str(v) for k, v in vars(args).items()})
    runtime.write_json(args.out / "metrics.json", report)
    log = {k: report[k] for k in ("before_dense", "before_sparse_untrained", "after_sparse") if k in report}
    print(f"saved {', '.join(p.name for p in files)}; held-out: {log}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
