"""Train the many-step teacher: flow matching over 16-frame clips in the autoencoder's latent space.

One GPU::

    python -m training.train_teacher --bank out/motion_train.npz --heldout-bank out/motion_heldout.npz \\
        --autoencoder runs/ae/autoencoder_weights --out runs/teacher --minutes 7

Several GPUs: the same command under ``torchrun --nproc-per-node N`` (``--batch-clips`` and ``--workers`` are
per GPU). Continuing a run:

* ``--resume RUN/resume/teacher_resume``: everything (model, EMA, optimiser, step, clock, loss curve). The
  resume state is about 260 MB at the teacher preset, so it stays on the machine that wrote it;
* ``--init RUN/teacher_ema``: the EMA weights that came back from an earlier machine. Model and EMA start
  from them, the optimiser starts afresh with a new warm-up; step, clock and loss curve continue.

Writes into ``--out`` (rank 0 only):

* ``teacher_ema.pKofN.ckpt``: the EMA weights in bf16, in parts of at most 15 MiB (three at the teacher
  preset), with the configuration, step, clock, loss curve and the autoencoder's checksum in every part's
  manifest (:mod:`training.checkpoints`; load with :func:`training.models.teacher.load_teacher`);
* ``resume/teacher_resume.p1of1.ckpt``: the resume state (does not come back from the GPU machine);
* ``metrics.json``: configuration, throughput, loss curve, held-out figures (:mod:`training.teacher_eval`);
* ``samples.png``, ``closeups.png`` and ``sample.mp4`` (or ``sample_video.npz`` where PyAV is missing).

Data: synthetic clips rendered on the fly by ``--workers`` DataLoader processes (training identities,
training speech), pulled by a background thread, encoded to latents on the GPU and kept in a
:class:`~training.data.reuse.ReuseBuffer`; each step trains on clips drawn from it, each clip about
``--reuse`` times at most with fresh noise and time, so the GPU does not wait for a slow loader.

Objective: x-prediction with the velocity loss, ``t ~ sigmoid(N(--t-mean, --t-std))``, the mouth and hands
(region masks pooled to the latent grid) weighted ``--region-weight`` times, the pose maps of a
``--pose-dropout`` fraction of the clips blacked out (so the teacher also learns the pose-free prediction that
classifier-free guidance over the pose needs, :func:`training.models.teacher.guided`); AdamW (0.9, 0.95), linear
warm-up, time-based cosine to 5 % of ``--lr`` over ``--schedule-minutes``, gradient clipping at 1, bf16
autocast, EMA of the weights (decay ramping up to ``--ema``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from inference.errors import PodiumError
from training.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from training.data.clips import ClipConfig, ClipSampler
from training.data.motion_bank import MotionBank
from training.data.reuse import BackgroundBatches, ReuseBuffer
from training.data.torch_dataset import SyntheticClipDataset
from training.models.autoencoder import Autoencoder, check_latent_space, latent_space, load_autoencoder, rgb_from_uint8
from training.models.config import POSE_STYLE_FIELDS, PRESETS, StudentConfig
from training.models.teacher import (
    Teacher,
    add_noise,
    load_teacher,
    sample_times,
    save_teacher,
    velocity_loss,
    without_pose,
)
from training.synthetic.regions import REGION_BITS
from training.teacher_eval import EvalSettings, parse_guidance, write_evaluation

FOCUS_BITS = REGION_BITS["mouth"] | REGION_BITS["left_hand"] | REGION_BITS["right_hand"]
RESUME_NAME = "teacher_resume"
EMA_NAME = "teacher_ema"


@dataclass
class RunState:
    """What carries over between calls: counters, the clock and the loss curve."""

    step: int = 0
    train_seconds: float = 0.0
    fresh_clips: int = 0
    trained_clips: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class EMA:
    """Exponential moving average of a model's parameters (decay ``min(decay, (1 + k) / (10 + k))`` at update k)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self._targets = list(self.model.parameters())
        self._sources = list(model.parameters())

    @torch.no_grad()
    def update(self) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._targets, [p.detach() for p in self._sources], 1.0 - decay)
        self.updates += 1


@torch.no_grad()
def prepare_clips(batch: dict[str, torch.Tensor], autoencoder: Autoencoder, device: torch.device) -> dict[str, torch.Tensor]:
    """A loader batch → what a training step needs, on ``device``.

    Returns:
        ``latent`` float32 ``[B, T, C, h, w]``; ``reference`` float32 ``[B, C, h, w]``; ``pose`` uint8
        ``[B, T, 3, S, S]``; ``focus`` uint8 ``[B, T, 1, h, w]``: 1 where a latent cell touches the mouth or a hand;
        with the loader's ``warped_reference``, ``warped`` float32 ``[B, T, C, h, w]``: its latents.
    """
    frames = batch["frames"].to(device, non_blocking=True)
    clips, length = frames.shape[:2]
    rgb = rgb_from_uint8(frames.flatten(0, 1).permute(0, 2, 3, 1))
    reference_rgb = rgb_from_uint8(batch["reference"].to(device, non_blocking=True).permute(0, 2, 3, 1))
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        latent = autoencoder.encode(rgb).float()
        reference = autoencoder.encode(reference_rgb).float()
    factor = frames.shape[-1] // latent.shape[-1]
    masks = batch["masks"].to(device, non_blocking=True).flatten(0, 1).to(torch.int32)
    focus = F.max_pool2d(((masks & FOCUS_BITS) != 0).float()[:, None], factor)
    prepared = {"latent": latent.unflatten(0, (clips, length)), "reference": reference,
                "pose": batch["pose_maps"].to(device, non_blocking=True),
                "focus": focus.to(torch.uint8).unflatten(0, (clips, length))}
    if "warped_reference" in batch:
        warped_rgb = rgb_from_uint8(batch["warped_reference"].to(device, non_blocking=True).flatten(0, 1)
                                    .permute(0, 2, 3, 1))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            prepared["warped"] = autoencoder.encode(warped_rgb).float().unflatten(0, (clips, length))
    return prepared


def step_loss(network: torch.nn.Module, clips: dict[str, torch.Tensor], args: argparse.Namespace,
              device: torch.device) -> torch.Tensor:
    """One step's forward and backward on clips from :func:`prepare_clips`: fresh times and noise, the velocity
    loss with mouth and hands weighted; leaves the gradients in the parameters and returns the loss."""
    latent = clips["latent"]
    t = sample_times(len(latent), mean=args.t_mean, std=args.t_std, device=device)
    noisy = add_noise(latent, torch.randn_like(latent), t)
    weight = 1.0 + (args.region_weight - 1.0) * clips["focus"].float()
    pose, warped = clips["pose"], clips.get("warped")
    if args.pose_dropout > 0:  # the warped reference comes from the pose: it goes with it
        dropped = torch.rand(len(pose), device=pose.device) < args.pose_dropout
        pose = torch.where(dropped.reshape(-1, *([1] * (pose.dim() - 1))), without_pose(pose), pose)
        if warped is not None:
            warped = torch.where(dropped.reshape(-1, *([1] * (warped.dim() - 1))), torch.zeros_like(warped), warped)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        predicted = network(noisy, t, pose.permute(0, 1, 3, 4, 2), clips["reference"], warped)
    loss = velocity_loss(predicted, latent, t, weight)
    loss.backward()
    return loss


def learning_rate(args: argparse.Namespace, steps_warmed: int, seconds: float, schedule_seconds: float) -> float:
    """Linear warm-up over ``--warmup-steps`` of the optimiser's life, then a cosine in training time down to 5 %."""
    warm = min(1.0, (steps_warmed + 1) / max(1, args.warmup_steps))
    progress = min(1.0, seconds / max(schedule_seconds, 1e-9))
    return args.lr * warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train_teacher", description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, required=True, help="training motion bank (training.data.motion_bank)")
    parser.add_argument("--heldout-bank", type=Path, required=True, help="held-out motion bank (held-out speech)")
    parser.add_argument("--autoencoder", type=Path, required=True,
                        help="autoencoder_weights checkpoint (a part file, or FOLDER/NAME) whose latents the teacher learns")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--preset", default="teacher", choices=sorted(PRESETS), help="network size (ignored with "
                        "--resume/--init: the checkpoint's configuration is used; the latent channels and the "
                        "autoencoder's widths are the autoencoder's)")
    parser.add_argument("--aligned-reference", action="store_true", help="add the reference's patch embedding to "
                        "every frame's tokens (StudentConfig.aligned_reference; a fresh start only)")
    parser.add_argument("--warped-reference", action="store_true", help="add the reference warped to each frame's "
                        "keypoints to the frame's tokens (StudentConfig.warped_reference; fresh, or with --init: the "
                        "checkpoint's weights grow a zero-initialised layer and start where they were)")
    for name in POSE_STYLE_FIELDS:
        parser.add_argument(f"--{name.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=None,
                            help=f"pose maps with (or without) StudentConfig.{name} (see PoseMapStyle; default: the "
                            "preset's, or the checkpoint's; with --init it can be switched, and the teacher learns the "
                            "new maps; with --resume it cannot)")
    parser.add_argument("--no-frame-positions", dest="frame_positions", action="store_false",
                        help="leave out the frames' place-in-clip embedding (StudentConfig.frame_positions; an "
                        "ablation, a fresh start only)")
    parser.add_argument("--pose-dropout", type=float, default=0.1, help="fraction of clips trained with black pose "
                        "maps (the pose-free prediction of classifier-free guidance; 0: none)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time of this call (wall clock)")
    parser.add_argument("--schedule-minutes", type=float, help="training time the cosine schedule spans, over all "
                        "calls (default: this call's end, counted from the run's start)")
    parser.add_argument("--batch-clips", type=int, default=16, help="clips per step per GPU")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=300)
    parser.add_argument("--ema", type=float, default=0.9995, help="largest EMA decay")
    parser.add_argument("--region-weight", type=float, default=3.0, help="loss weight of mouth and hand cells")
    parser.add_argument("--t-mean", type=float, default=-0.8, help="mean of the logit-normal training times")
    parser.add_argument("--t-std", type=float, default=0.8, help="spread of the logit-normal training times")
    parser.add_argument("--reuse", type=float, default=2.0, help="most times a rendered clip is trained on (1: each "
                        "fresh batch once, in order)")
    parser.add_argument("--buffer-clips", type=int, default=512, help="clips kept on the GPU for reuse")
    parser.add_argument("--workers", type=int, default=max(0, (os.cpu_count() or 2) - 2), help="loader processes per GPU")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step (eager if it fails)")
    parser.add_argument("--resume", type=Path, help="resume state (RUN/resume/teacher_resume): continue exactly")
    parser.add_argument("--init", type=Path, help="teacher_ema weights: continue with a fresh optimiser")
    parser.add_argument("--eval-clips", type=int, default=32)
    parser.add_argument("--eval-steps", default="25,1", help="Euler step counts scored (the first makes the video)")
    parser.add_argument("--eval-guidance", default="", help="pose guidance scales also scored at the first step "
                        "count, comma-separated (e.g. 2)")
    parser.add_argument("--video-segments", type=int, default=2, help="held-out speech streams in the video (0: none)")
    parser.add_argument("--log-seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.resume and args.init:
        parser.error("give --resume or --init, not both")
    if args.frames < 1 or args.batch_clips < 1:
        parser.error("--frames and --batch-clips must be at least 1")
    try:
        args.eval_guidance = parse_guidance(args.eval_guidance)
    except ValueError as exc:
        parser.error(f"--eval-guidance: {exc}")
    if not 0.0 <= args.pose_dropout < 1.0:
        parser.error(f"--pose-dropout must be in [0, 1), got {args.pose_dropout:g}")
    if (args.aligned_reference or not args.frame_positions) and (args.resume or args.init):
        parser.error("--aligned-reference and --no-frame-positions shape a fresh teacher; a checkpoint keeps its own "
                     "configuration")
    if args.warped_reference and args.resume:
        parser.error("--resume continues a run exactly, with its own configuration; use --init to add "
                     "--warped-reference to a teacher")
    return args


def _pose_style_changes(args: argparse.Namespace) -> dict[str, bool]:
    """The pose-map style fields the command line sets (the others stay as the preset or checkpoint has them)."""
    return {name: getattr(args, name) for name in POSE_STYLE_FIELDS if getattr(args, name) is not None}


def _load_start(args: argparse.Namespace, device: torch.device,
                ae_checkpoint: Checkpoint) -> tuple[StudentConfig, Teacher, dict | None, RunState]:
    """The configuration, the teacher (weights loaded), the resume state (or None) and the run state
    (``ae_checkpoint``: the autoencoder's, whose latent a fresh teacher takes and a continued one must have been
    trained in).

    Raises:
        CheckpointError: a continued teacher was trained in another latent space.
        ValueError: ``--resume`` asked to switch the pose maps.
    """
    autoencoder = StudentConfig.from_dict(ae_checkpoint.meta["config"])
    if args.resume:
        resume = load_checkpoint(args.resume, map_location="cpu")
        check_latent_space(resume.meta, ae_checkpoint, "teacher")
        config = StudentConfig.from_dict(resume.meta["config"])
        teacher = Teacher(config)
        teacher.load_state_dict(resume.state["teacher"])
        run = resume.state["run"]
        for name, value in _pose_style_changes(args).items():
            if value != getattr(config, name):
                raise ValueError(f"the run to resume was trained with {name}={getattr(config, name)}; --resume "
                                 "continues it exactly. Use --init to switch the pose maps")
        return config, teacher.to(device), resume.state, RunState(run["step"], run["train_seconds"], run["fresh_clips"],
                                                                    run["trained_clips"], list(run["history"]))
    if args.init:
        teacher, checkpoint = load_teacher(args.init, "cpu")
        meta = checkpoint.meta
        check_latent_space(meta, ae_checkpoint, "teacher")
        state = RunState(int(meta.get("step", 0)), float(meta.get("train_seconds", 0.0)),
                         history=list(meta.get("history", [])))
        warped = teacher.config.warped_reference or args.warped_reference
        switched_config = teacher.config.with_(**_pose_style_changes(args), warped_reference=warped)
        if switched_config != teacher.config:  # the same weights, new maps (and perhaps a new, zeroed layer)
            switched = Teacher(switched_config)
            missing, unexpected = switched.load_state_dict(teacher.state_dict(), strict=False)
            if unexpected or any(not name.startswith("transformer.reference_warp.") for name in missing):
                raise ValueError(f"{args.init} does not fit the switched configuration (missing {missing}, "
                                 f"unexpected {unexpected})")
            teacher = switched
        return teacher.config, teacher.train().to(device), None, state
    config = PRESETS[args.preset].with_(latent_channels=autoencoder.latent_channels,
                                        autoencoder_channels=autoencoder.autoencoder_channels,
                                        aligned_reference=args.aligned_reference,
                                        warped_reference=args.warped_reference,
                                        frame_positions=args.frame_positions)
    return config.with_(**_pose_style_changes(args)), Teacher(config).to(device), None, RunState()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:  # NCCL between GPUs; gloo lets a CPU-only machine try the same code under torchrun
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    try:
        autoencoder, ae_checkpoint = load_autoencoder(args.autoencoder, device)
        autoencoder.requires_grad_(False)
        ae_config = StudentConfig.from_dict(ae_checkpoint.meta["config"])
        config, teacher, resume, run = _load_start(args, device, ae_checkpoint)
        train_bank, heldout_bank = MotionBank.load(args.bank), MotionBank.load(args.heldout_bank)
    except (PodiumError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if ae_config.latent_channels != config.latent_channels:
        print(f"error: {args.autoencoder} makes {ae_config.latent_channels} latent channels, the teacher's checkpoint "
              f"expects {config.latent_channels}; give the autoencoder it was trained with", file=sys.stderr)
        return 1
    torch.manual_seed(args.seed * 7919 + rank + run.step)

    ema = EMA(teacher, args.ema)
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0, fused=fused)
    if resume is not None:
        ema.model.load_state_dict(resume["ema"])
        ema.updates = int(resume["run"]["ema_updates"])
        optimizer.load_state_dict(resume["optimizer"])
    model: torch.nn.Module = teacher
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(teacher, device_ids=[device.index] if device.index is not None
                                                          else None)
    compiled = torch.compile(model) if args.compile else None

    sampler = ClipSampler(train_bank, "train", ClipConfig(length=args.frames, seed=args.seed * 1_000_003 + rank * 7919 + run.step))
    dataset = SyntheticClipDataset(sampler, size=config.size, num_clips=100_000_000, pose_maps=True,
                                   pose_style=config.pose_style, warped_reference=config.warped_reference)
    loader = DataLoader(dataset, batch_size=args.batch_clips, num_workers=args.workers, drop_last=True,
                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
                        prefetch_factor=2 if args.workers > 0 else None)  # 2 × 14 workers × 110 MB pinned
    feed = BackgroundBatches(loader, depth=4)
    buffer = (ReuseBuffer(max(args.buffer_clips, args.batch_clips), args.reuse,
                          torch.Generator().manual_seed(args.seed + rank)) if args.reuse > 1 else None)

    budget = args.minutes * 60.0
    schedule_seconds = args.schedule_minutes * 60.0 if args.schedule_minutes else run.train_seconds + budget
    first_step, seconds_before = run.step, run.train_seconds
    warm_from = run.step if args.init else 0  # a fresh optimiser warms up again; a resumed one does not
    start = last_log = time.monotonic()
    waited, loss_sum, loss_count, fresh_this_run, trained_this_run = 0.0, torch.zeros((), device=device), 0, 0, 0
    stop = torch.zeros(1, device=device)
    while True:
        elapsed = time.monotonic() - start
        if (run.step - first_step) % 8 == 0:
            stop.fill_(float(elapsed >= budget))
            if distributed:
                dist.all_reduce(stop, op=dist.ReduceOp.MAX)
            if stop.item() > 0:
                break
        # data: at most one ready batch per step, and waiting only while the reuse budget is spent. Only the time
        # blocked on the loader counts as waiting: the encoding is GPU work like the step's own
        if buffer is None:
            batch, blocked = _next_batch(feed, block=True)
            waited += blocked
            clips = prepare_clips(batch, autoencoder, device)
            fresh_this_run += len(clips["latent"])
        else:
            batch, blocked = _next_batch(feed, block=buffer.needs_fresh(args.batch_clips))
            waited += blocked
            while batch is not None:
                buffer.add(prepare_clips(batch, autoencoder, device))
                fresh_this_run += args.batch_clips
                batch, blocked = (_next_batch(feed, block=True) if buffer.needs_fresh(args.batch_clips)
                                  else (None, 0.0))
                waited += blocked
            clips = buffer.sample(args.batch_clips)

        lr = learning_rate(args, run.step - warm_from, seconds_before + elapsed, schedule_seconds)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        if compiled is not None:
            try:
                loss = step_loss(compiled, clips, args, device)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: the run goes on eager
                print(f"torch.compile failed ({type(exc).__name__}: {exc}); training eager", flush=True)
                compiled = None
                optimizer.zero_grad(set_to_none=True)
                loss = step_loss(model, clips, args, device)
        else:
            loss = step_loss(model, clips, args, device)
        grad_norm = torch.nn.utils.clip_grad_norm_(teacher.parameters(), 1.0)
        optimizer.step()
        ema.update()
        run.step += 1
        trained_this_run += args.batch_clips
        loss_sum += loss.detach()
        loss_count += 1
        now = time.monotonic()
        if rank == 0 and (now - last_log > args.log_seconds or run.step == first_step + 1):
            seconds = now - start
            entry = {"step": run.step, "seconds": round(seconds_before + seconds, 1),
                     "loss": round(float(loss_sum) / loss_count, 5), "grad_norm": round(float(grad_norm), 3),
                     "lr": lr, "trained_clips_per_s": round(trained_this_run * world / seconds, 1),
                     "fresh_clips_per_s": round(fresh_this_run * world / seconds, 1),
                     "waiting": round(waited / seconds, 3)}
            run.history.append(entry)
            print(json.dumps(entry), flush=True)
            last_log, loss_sum, loss_count = now, torch.zeros((), device=device), 0
    feed.close()
    del feed, loader  # lets the loader's workers end before the evaluation starts its own
    this_call = time.monotonic() - start
    run.train_seconds += this_call
    run.fresh_clips += fresh_this_run * world
    run.trained_clips += trained_this_run * world

    if rank == 0:
        _finish(args, config, teacher, ema, optimizer, run, autoencoder, ae_checkpoint, heldout_bank, device, world,
                this_call, fresh_this_run * world, trained_this_run * world, waited)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return 0


def _next_batch(feed: BackgroundBatches, block: bool) -> tuple[dict[str, torch.Tensor] | None, float]:
    """The next loader batch (None if ``block`` is False and none is ready) and the seconds spent blocked on it."""
    if not block:
        return feed.get(block=False), 0.0
    start = time.monotonic()
    batch = feed.get(block=True)
    return batch, time.monotonic() - start


def _finish(args: argparse.Namespace, config: StudentConfig, teacher: Teacher, ema: EMA, optimizer: torch.optim.Optimizer,
            run: RunState, autoencoder: Autoencoder, ae_checkpoint: Checkpoint, heldout_bank: MotionBank,
            device: torch.device, world: int, this_call: float, fresh: int, trained: int, waited: float) -> None:
    """Save the weights and the resume state, evaluate, and write metrics.json (rank 0)."""
    curve = [{k: e[k] for k in ("step", "seconds", "loss")} for e in run.history[-200:]]  # fits the manifest
    facts = {"step": run.step, "train_seconds": round(run.train_seconds, 1), "frames_per_clip": args.frames,
             "autoencoder_sha256": latent_space(ae_checkpoint), "history": curve}
    ema_files = save_teacher(args.out, EMA_NAME, ema.model, **facts)
    run_state = {"step": run.step, "train_seconds": run.train_seconds, "fresh_clips": run.fresh_clips,
                 "trained_clips": run.trained_clips, "history": run.history, "ema_updates": ema.updates}
    save_checkpoint(args.out / "resume", RESUME_NAME,
                    {"teacher": teacher.state_dict(), "ema": ema.model.state_dict(), "optimizer": optimizer.state_dict(),
                     "run": run_state},
                    meta={"kind": "teacher-resume", "config": config.to_dict(), "step": run.step,
                          "autoencoder_sha256": facts["autoencoder_sha256"]}, part_bytes=None)
    print(f"saved {', '.join(p.name for p in ema_files)} and resume/{RESUME_NAME}", flush=True)

    report = {
        "preset": args.preset if not (args.resume or args.init) else "from checkpoint", "config": config.to_dict(),
        "parameters": sum(p.numel() for p in teacher.parameters()), "frames_per_clip": args.frames,
        "steps": run.step, "train_seconds": round(run.train_seconds, 1), "this_call_seconds": round(this_call, 1),
        "gpus": world, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "throughput": {"trained_clips_per_s": trained / this_call, "fresh_clips_per_s": fresh / this_call,
                       "trained_frames_per_s": trained * args.frames / this_call,
                       "reuse": trained / max(1, fresh), "waiting_for_data": waited / this_call},
        "autoencoder": {"checkpoint": str(args.autoencoder), "sha256": ae_checkpoint.sha256,
                        "heldout": ae_checkpoint.meta.get("heldout")},
        "weights": [p.name for p in ema_files],
        "args": {k: str(v) for k, v in vars(args).items()},
        "heldout": None, "history": run.history,
    }
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")  # in case the evaluation fails
    steps = tuple(int(s) for s in args.eval_steps.split(",") if s.strip())
    settings = EvalSettings(clips=args.eval_clips, frames=args.frames, steps=steps, guidance=args.eval_guidance,
                            workers=min(8, args.workers), video_segments=args.video_segments)
    figures = write_evaluation(args.out, ema.model, autoencoder, heldout_bank, settings, device)
    report["heldout"] = figures
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    main_steps = str(steps[0])
    print(json.dumps({"steps": run.step, "heldout": figures["teacher"][main_steps],
                      "autoencoder_ceiling": figures["autoencoder_ceiling"]}, indent=2), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
