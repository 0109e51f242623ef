"""Distil the teacher into the few-step causal student, and export it as a model pack (issue 7; paper §5).

Stages, one command each (``training/gpu/distill.sh`` chains them on a GPU machine; under
``torchrun --nproc-per-node N`` the training stages use N GPUs, ``--batch-clips`` and ``--workers`` per GPU)::

    python -m training.distill ode-pairs --teacher runs/sparse/teacher_sparse --autoencoder AE --bank B \\
        --out runs/pairs --minutes 2
    python -m training.distill regress --pairs runs/pairs --teacher runs/sparse/teacher_sparse --autoencoder AE \\
        --heldout-bank H --out runs/regress --student-size pack --minutes 3
    python -m training.distill dmd --student runs/regress/student --teacher runs/sparse/teacher_sparse \\
        --autoencoder AE --bank B --heldout-bank H --out runs/region --minutes 6 [--lambda-region 0]
    python -m training.distill export --student runs/region/student --autoencoder AE \\
        --out assets/packs/podium-presenter --name podium-presenter --version 1.0.0 --metrics runs/*/metrics.json
    python -m training.distill sizes

* ``ode-pairs``: the teacher's deterministic Euler trajectories on training clips, kept at the student's
  timesteps (:mod:`training.distillation.ode_pairs`).
* ``regress``: the student (the teacher's weights, without its least useful blocks when shallower) regressed on
  the pairs while streamed exactly as the runtime streams it (:mod:`training.distillation.regression`).
* ``dmd``: DMD against the teacher with a fake-score critic, plus the region loss
  (:mod:`training.distillation.dmd`); ``--lambda-region 0`` is the ablation's "+ DMD" row.
* ``export``: the pack (encoder, reference, student with the custom op, decoder; float16), its model card,
  checked against the issue's 40 MB (:mod:`training.distillation.packaging`).
* ``sizes``: parameters and pack sizes of the presets and of the pack-sized student.

Each training stage writes ``student.pKofN.ckpt`` (bf16 weights, :mod:`training.checkpoints` parts that come
back from the GPU machine), ``resume/<stage>_resume.p1of1.ckpt`` (stays there; ``--resume`` continues exactly),
``metrics.json`` (held-out figures by the teacher's protocol, loss curve) and ``samples.png``. ``--init``
continues from weights that came back, with a fresh optimiser. Errors are one line, exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler

from inference.errors import PodiumError
from inference.render.student.sampling import validate_timesteps
from training.checkpoints import load_checkpoint, save_checkpoint
from training.data.reuse import BackgroundBatches
from training.distillation import runtime
from training.distillation.batches import loader, synthetic_clips, to_device
from training.distillation.clip_attention import MASKS, spec_for
from training.distillation.dmd import DmdSettings, DmdTrainer
from training.distillation.evaluation import evaluate, heldout_clips, write_sheet
from training.distillation.losses import RegionLoss, RegionWeights
from training.distillation.ode_pairs import OdePairs, PairsInfo, ShardWriter, generate
from training.distillation.packaging import (
    PACK_GRAPHS,
    PACK_LIMIT_BYTES,
    estimate_pack_bytes,
    export_pack,
    model_card,
    pack_student_config,
    parameter_counts,
    student_module,
)
from training.distillation.regression import regression_loss
from training.distillation.weights import load_transformer, save_student, student_from
from training.models.autoencoder import Autoencoder, check_latent_space, latent_space, load_autoencoder
from training.models.config import PRESETS, StudentConfig
from training.models.teacher import load_teacher
from training.models.transformer import VideoTransformer
from training.train_teacher import EMA

STUDENT_NAME = "student"
DEFAULT_TRAINING_DATA = ("Podium synthetic presenters (procedural identities) driven by the motion stage on "
                         "LibriVox speech and pocketsphinx test recordings")


# --------------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------------

def _run_arguments(parser: argparse.ArgumentParser, minutes: float, batch_clips: int) -> None:
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--minutes", type=float, default=minutes, help="time budget of this call (wall clock)")
    parser.add_argument("--batch-clips", type=int, default=batch_clips, help="clips per step per GPU")
    parser.add_argument("--workers", type=int, default=max(0, (os.cpu_count() or 2) - 2), help="loader processes per GPU")
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: CUDA when available")
    parser.add_argument("--seed", type=int, default=0)


def _training_arguments(parser: argparse.ArgumentParser, lr: float) -> None:
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--ema", type=float, default=0.999, help="largest EMA decay of the student")
    parser.add_argument("--no-grad-cache", action="store_true", help="detach the student's cache refresh (less memory)")
    parser.add_argument("--heldout-bank", type=Path, required=True, help="held-out motion bank (held-out speech)")
    parser.add_argument("--eval-clips", type=int, default=8, help="held-out clips scored at the end (0: none)")
    parser.add_argument("--resume", type=Path, help="this stage's resume state (RUN/resume/NAME): continue exactly")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.distill", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    pairs = sub.add_parser("ode-pairs", help="teacher trajectories at the student's timesteps")
    pairs.add_argument("--teacher", type=Path, required=True, help="the (sparse-adapted) teacher checkpoint")
    pairs.add_argument("--autoencoder", type=Path, required=True)
    pairs.add_argument("--bank", type=Path, required=True, help="training motion bank")
    pairs.add_argument("--mask", choices=MASKS, help="teacher attention (default: what it was fine-tuned with)")
    pairs.add_argument("--timesteps", default="0,0.5", help="the student's sampling times (0 = noise)")
    pairs.add_argument("--steps", type=int, default=32, help="Euler steps of each trajectory")
    pairs.add_argument("--clips", type=int, default=100_000, help="most pairs to make (per GPU)")
    pairs.add_argument("--frames", type=int, help="frames per clip (default: the teacher's clip length)")
    _run_arguments(pairs, minutes=2.0, batch_clips=8)

    regress = sub.add_parser("regress", help="initialise the causal student on ODE pairs")
    regress.add_argument("--pairs", type=Path, required=True, help="folder of ODE-pair shards")
    regress.add_argument("--teacher", type=Path, required=True, help="the teacher the pairs came from")
    regress.add_argument("--autoencoder", type=Path, required=True)
    regress.add_argument("--student-size", default="pack", help="teacher (its architecture and weights), pack "
                         "(the teacher with as many of its layers as fit the 40 MB pack, starting from its weights "
                         "without the blocks that matter least) or WIDTH,DEPTH,HEADS (fresh unless shallower only)")
    regress.add_argument("--chunk", type=int, default=StudentConfig.chunk_frames, help="frames a chunk")
    regress.add_argument("--cache", type=int, default=StudentConfig.cache_frames, help="cached frames (M)")
    regress.add_argument("--top-k", type=int, default=StudentConfig.top_k, help="cached frames attended (K)")
    regress.add_argument("--init", type=Path, help="student weights that came back: continue with a fresh optimiser")
    _run_arguments(regress, minutes=3.0, batch_clips=16)
    _training_arguments(regress, lr=3e-4)

    dmd = sub.add_parser("dmd", help="distribution matching distillation with the region loss")
    dmd.add_argument("--student", type=Path, required=True, help="the regressed student (or an earlier DMD's)")
    dmd.add_argument("--teacher", type=Path, required=True, help="the real score (the sparse-adapted teacher)")
    dmd.add_argument("--critic", type=Path, help="fake-score weights to start from (default: the teacher's)")
    dmd.add_argument("--autoencoder", type=Path, required=True)
    dmd.add_argument("--bank", type=Path, required=True, help="training motion bank")
    dmd.add_argument("--mask", choices=MASKS, help="teacher and critic attention (default: the teacher's)")
    dmd.add_argument("--frames", type=int, help="frames per clip (default: the teacher's clip length)")
    dmd.add_argument("--critic-steps", type=int, default=DmdSettings.critic_steps, help="critic updates per "
                     "generator update")
    dmd.add_argument("--critic-lr", type=float, default=2e-5)
    dmd.add_argument("--t-min", type=float, default=DmdSettings.t_min)
    dmd.add_argument("--t-max", type=float, default=DmdSettings.t_max)
    dmd.add_argument("--lambda-region", type=float, default=DmdSettings.lambda_region, help="0: DMD alone")
    dmd.add_argument("--real-guidance", type=float, default=DmdSettings.real_guidance, help="classifier-free "
                     "guidance of the real score over the pose (1: none; for teachers trained with pose dropout)")
    dmd.add_argument("--lambda-mouth", type=float, default=RegionWeights.mouth)
    dmd.add_argument("--lambda-face", type=float, default=RegionWeights.face)
    dmd.add_argument("--lambda-hands", type=float, default=RegionWeights.hands)
    dmd.add_argument("--ssim-weight", type=float, default=RegionWeights.ssim, help="1 - SSIM in each region's loss")
    dmd.add_argument("--feature-weight", type=float, default=RegionWeights.features, help="autoencoder-encoder "
                     "feature distance in each region's loss")
    dmd.add_argument("--region-frames", type=int, default=DmdSettings.region_frames, help="frames per clip decoded "
                     "for the region loss (0: all)")
    dmd.add_argument("--region-crop", type=int, default=64, help="pixels a side of each region crop")
    dmd.add_argument("--save-critic", action="store_true", help="also write the critic's weights (to continue on "
                     "another machine)")
    _run_arguments(dmd, minutes=6.0, batch_clips=8)
    _training_arguments(dmd, lr=2e-5)

    export = sub.add_parser("export", help="export the student as a model pack with its model card")
    export.add_argument("--student", type=Path, required=True, help="student weights (training.distill)")
    export.add_argument("--autoencoder", type=Path, required=True)
    export.add_argument("--out", type=Path, required=True, help="the pack folder to create (e.g. assets/packs/NAME)")
    export.add_argument("--name", required=True)
    export.add_argument("--version", required=True)
    export.add_argument("--precision", action="append", choices=["float16", "float32"],
                        help="repeatable; default float16 (what the CUDA EP runs)")
    export.add_argument("--graphs", default=",".join(PACK_GRAPHS))
    export.add_argument("--license", required=True, help="the license of the weights, one line")
    export.add_argument("--training-data", default=DEFAULT_TRAINING_DATA)
    export.add_argument("--metrics", type=Path, action="append", default=[], help="a stage's metrics.json for the "
                        "model card (repeatable)")
    export.add_argument("--portrait", type=Path, help="the presenter the pack is made for (PNG or JPEG), shown "
                        "when the user has not chosen a portrait")
    export.add_argument("--size-limit-mb", type=float, default=PACK_LIMIT_BYTES / 1e6, help="0: no limit")

    sub.add_parser("sizes", help="parameters and pack sizes of the presets and of the pack-sized student")
    return parser


def _timesteps(text: str) -> tuple[float, ...]:
    return validate_timesteps([float(t) for t in text.split(",") if t.strip()])


def student_config(teacher: StudentConfig, size: str, *, chunk: int, cache: int, top_k: int,
                   timesteps: tuple[float, ...]) -> StudentConfig:
    """The student's configuration: the teacher's (size, latents, pose encoder, block size) with the
    architecture of ``size`` ("teacher", "pack" or "WIDTH,DEPTH,HEADS") and the runtime's streaming numbers."""
    if size == "teacher":
        shape = {}
    elif size == "pack":
        shape = {"depth": pack_student_config(teacher).depth}
    else:
        try:
            width, depth, heads = (int(v) for v in size.split(","))
        except ValueError:
            raise ValueError(f"--student-size must be teacher, pack or WIDTH,DEPTH,HEADS, got {size!r}") from None
        shape = {"width": width, "depth": depth, "heads": heads}
    return teacher.with_(chunk_frames=chunk, cache_frames=cache, top_k=top_k, timesteps=timesteps, **shape)


def _teacher_mask(meta: dict, asked: str | None) -> str:
    """The attention a teacher is used with: the one asked for, else the one it was fine-tuned with."""
    return asked or meta.get("attention", {}).get("mask", "dense")


# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------

def run_ode_pairs(args: argparse.Namespace, run: runtime.Runtime) -> int:
    autoencoder, ae_checkpoint = load_autoencoder(args.autoencoder, run.device)
    teacher, checkpoint = load_teacher(args.teacher, run.device, to_distil=True)
    check_latent_space(checkpoint.meta, ae_checkpoint, "teacher")
    config = teacher.config
    mask = _teacher_mask(checkpoint.meta, args.mask)
    spec = spec_for(config, mask, causal=checkpoint.meta.get("attention", {}).get("causal", False))
    info = PairsInfo(timesteps=_timesteps(args.timesteps), teacher_steps=args.steps, teacher_mask=mask,
                     teacher_sha256=checkpoint.sha256, autoencoder_sha256=latent_space(ae_checkpoint))
    writer = ShardWriter(args.out, run.rank, info)
    frames = args.frames or config.chunk_frames
    dataset = synthetic_clips(args.bank, "train", frames=frames, size=config.size, clips=args.clips,
                              seed=args.seed * 1_000_003 + run.rank * 7919 + writer.shards,
                              pose_style=config.pose_style, spec=spec)
    feed = BackgroundBatches(loader(dataset, args.batch_clips, args.workers, pin=run.device.type == "cuda",
                                    drop_last=False))
    budget = runtime.Budget(args.minutes)
    generator = torch.Generator(device=run.device).manual_seed(args.seed * 7919 + run.rank + 1000 * writer.shards)
    try:
        made = generate(teacher.transformer, spec, autoencoder, _batches(feed), writer, steps=args.steps,
                        budget=budget, max_clips=args.clips, device=run.device, generator=generator)
    finally:
        feed.close()
    print(f"rank {run.rank}: {made} ODE pairs ({args.steps} steps, {mask} attention, times {list(info.timesteps)}) "
          f"in {budget.elapsed:.0f} s → {args.out}", flush=True)
    return 0


def _batches(feed: BackgroundBatches):  # noqa: ANN202 - a generator of loader batches
    while True:
        try:
            yield feed.get(block=True)
        except StopIteration:
            return


def run_regress(args: argparse.Namespace, run: runtime.Runtime) -> int:
    autoencoder, ae_checkpoint = load_autoencoder(args.autoencoder, run.device)
    teacher, teacher_checkpoint = load_teacher(args.teacher, run.device, to_distil=True)
    pairs = OdePairs(args.pairs, teacher.config.size, pose_style=teacher.config.pose_style)
    if pairs.info.teacher_sha256 != teacher_checkpoint.sha256:
        raise ValueError(f"the ODE pairs in {args.pairs} were made by another teacher than {args.teacher}; give the "
                         "teacher that made them")
    check_latent_space({"autoencoder_sha256": pairs.info.autoencoder_sha256}, ae_checkpoint, "ODE pairs")
    config = student_config(teacher.config, args.student_size, chunk=args.chunk, cache=args.cache, top_k=args.top_k,
                            timesteps=pairs.info.timesteps)
    frames = pairs.arrays["x0"].shape[1]
    if frames % config.chunk_frames:
        raise ValueError(f"the pairs' clips have {frames} frames, not a whole number of {config.chunk_frames}-frame "
                         "chunks; choose another --chunk")
    sampler = DistributedSampler(pairs, num_replicas=run.world, rank=run.rank, shuffle=True, seed=args.seed)
    data = DataLoader(pairs, batch_size=args.batch_clips, sampler=sampler, num_workers=args.workers, drop_last=True,
                      pin_memory=run.device.type == "cuda", persistent_workers=args.workers > 0)
    if len(data) == 0:
        raise ValueError(f"{len(pairs)} ODE pairs make no batch of {args.batch_clips} clips per GPU; make more pairs")
    probe = next(iter(data))  # scores a shallower student's choice of blocks (rank 0's choice is broadcast)

    def probe_loss(network: VideoTransformer) -> float:
        return regression_loss(network.eval(), probe, run.device, backward=False)

    student, how = _starting_student(args, teacher.transformer, config, run.device, probe_loss)
    del teacher
    state = _TrainingState.start(student, args, run, stage="regress")
    log = runtime.Log(run)
    log.info(f"student: {how}; {len(pairs)} pairs of {frames} frames; {parameter_counts(config)['transformer']:,} "
             "parameters")
    epoch = 0
    while not state.stop():
        sampler.set_epoch(epoch)
        for batch in data:
            if state.stop():
                break
            state.set_lr(args.lr, args.warmup_steps)
            loss = regression_loss(student, batch, run.device, grad_through_cache=not args.no_grad_cache)
            grad_norm = state.optimizer_step(run)
            log.step(state.step, state.budget.total, {"loss": loss, "grad_norm": grad_norm,
                                                      "lr": state.lr, "epoch": epoch}, force=state.step == 1)
        epoch += 1
    state.finish(args, run, log, autoencoder, latent_space(ae_checkpoint), stage="regress", frames=frames,
                 extra={"init": how, "pairs": len(pairs), "teacher_sha256": teacher_checkpoint.sha256,
                        "epochs": epoch})
    return 0


def run_dmd(args: argparse.Namespace, run: runtime.Runtime) -> int:
    autoencoder, ae_checkpoint = load_autoencoder(args.autoencoder, run.device)
    autoencoder.requires_grad_(False)
    teacher, teacher_checkpoint = load_teacher(args.teacher, run.device, to_distil=True)
    check_latent_space(teacher_checkpoint.meta, ae_checkpoint, "teacher")
    student, student_checkpoint = load_transformer(args.student, run.device)
    check_latent_space(student_checkpoint.meta, ae_checkpoint, "student")
    student.train()
    config = student.config
    frames = args.frames or teacher.config.chunk_frames
    if frames % config.chunk_frames:
        raise ValueError(f"--frames {frames} is not a whole number of the student's {config.chunk_frames}-frame chunks")
    mask = _teacher_mask(teacher_checkpoint.meta, args.mask)
    spec = spec_for(teacher.config, mask, causal=teacher_checkpoint.meta.get("attention", {}).get("causal", False))
    critic = load_transformer(args.critic, run.device)[0] if args.critic else None
    weights = RegionWeights(mouth=args.lambda_mouth, face=args.lambda_face, hands=args.lambda_hands,
                            ssim=args.ssim_weight, features=args.feature_weight)
    settings = DmdSettings(critic_steps=args.critic_steps, t_min=args.t_min, t_max=args.t_max,
                           lambda_region=args.lambda_region, real_guidance=args.real_guidance,
                           region_frames=args.region_frames, grad_through_cache=not args.no_grad_cache)
    region = RegionLoss(autoencoder.encoder, weights, crop=args.region_crop).to(run.device) if args.lambda_region \
        else None
    trainer = DmdTrainer(student, teacher.transformer, spec, autoencoder, settings, critic=critic, region_loss=region,
                         seed=args.seed * 7919 + run.rank)
    state = _TrainingState.start(student, args, run, stage="dmd", critic=trainer.critic, critic_lr=args.critic_lr)
    dataset = synthetic_clips(args.bank, "train", frames=frames, size=config.size, clips=100_000_000,
                              seed=args.seed * 1_000_003 + run.rank * 7919 + state.step,
                              pose_style=config.pose_style, spec=spec,
                              region_masks=bool(args.lambda_region))
    feed = BackgroundBatches(loader(dataset, args.batch_clips, args.workers, pin=run.device.type == "cuda"))
    log = runtime.Log(run)
    log.info(f"DMD: {mask} teacher, {settings.critic_steps} critic steps per generator step, λ_region "
             f"{settings.lambda_region}, clips of {frames} frames")
    try:
        while not state.stop():
            values = {}
            for _ in range(settings.critic_steps):
                clips = to_device(feed.get(block=True), autoencoder, run.device, encode_frames=False)
                values["critic"] = state.critic_step(trainer.critic_loss(clips), run)
            clips = to_device(feed.get(block=True), autoencoder, run.device, encode_frames=False)
            state.set_lr(args.lr, args.warmup_steps)
            loss, parts = trainer.generator_loss(clips)
            loss.backward()
            values.update(parts, grad_norm=state.optimizer_step(run), lr=state.lr)
            log.step(state.step, state.budget.total, values, force=state.step == 1)
    finally:
        feed.close()
    extra = {"teacher_sha256": teacher_checkpoint.sha256, "teacher_mask": mask, "student_init": str(args.student),
             "settings": settings.__dict__, "region_weights": weights.__dict__}
    state.finish(args, run, log, autoencoder, latent_space(ae_checkpoint), stage="dmd", frames=frames, extra=extra)
    return 0


def _starting_student(args: argparse.Namespace, teacher: VideoTransformer, config: StudentConfig,
                      device: torch.device, loss_of: Callable[[VideoTransformer], float]) -> tuple[VideoTransformer, str]:
    """The student a regression starts from: ``--init`` weights, or :func:`student_from` the teacher (a shallower
    student keeps the teacher's blocks whose removal raises ``loss_of`` least)."""
    if args.init:
        student, checkpoint = load_transformer(args.init, device)
        if student.config != config:
            raise ValueError(f"--init {args.init} has another configuration than this run asks for; drop the "
                             "size and streaming options or give matching ones")
        return student.train(), f"weights of {args.init}"
    student, how = student_from(teacher, config, loss_of)
    return student.train(), how


class _TrainingState:
    """A student's optimiser, EMA, clock and resume state (and the DMD critic's optimiser)."""

    def __init__(self, student: VideoTransformer, optimizer: torch.optim.Optimizer, ema: EMA, budget: runtime.Budget,
                 step: int, history: list, critic: VideoTransformer | None,
                 critic_optimizer: torch.optim.Optimizer | None) -> None:
        self.student, self.optimizer, self.ema, self.budget = student, optimizer, ema, budget
        self.step, self.first_step, self.history = step, step, history
        self.critic, self.critic_optimizer = critic, critic_optimizer
        self.lr = 0.0
        self.run: runtime.Runtime | None = None

    @classmethod
    def start(cls, student: VideoTransformer, args: argparse.Namespace, run: runtime.Runtime, *, stage: str,
              critic: VideoTransformer | None = None, critic_lr: float = 0.0) -> _TrainingState:
        fused = run.device.type == "cuda"
        optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0, fused=fused)
        critic_optimizer = (torch.optim.AdamW(critic.parameters(), lr=critic_lr, betas=(0.9, 0.95), weight_decay=0.0,
                                              fused=fused) if critic is not None else None)
        step, seconds, history = 0, 0.0, []
        ema = EMA(student, args.ema)
        if args.resume:
            resume = load_checkpoint(args.resume, map_location="cpu")
            if resume.meta.get("kind") != f"{stage}-resume":
                raise ValueError(f"--resume {args.resume} is a {resume.meta.get('kind')} state, not a {stage} one")
            student.load_state_dict(resume.state["student"])
            ema.model.load_state_dict(resume.state["ema"])
            optimizer.load_state_dict(resume.state["optimizer"])
            if critic is not None:
                critic.load_state_dict(resume.state["critic"])
                critic_optimizer.load_state_dict(resume.state["critic_optimizer"])
            step, seconds, history = resume.state["step"], resume.state["seconds"], list(resume.state["history"])
            ema.updates = step
        runtime.broadcast_module(student, run)
        if critic is not None:
            runtime.broadcast_module(critic, run)
        state = cls(student, optimizer, ema, runtime.Budget(args.minutes, before=seconds), step, history, critic,
                    critic_optimizer)
        state.run = run
        return state

    def stop(self) -> bool:
        return runtime.all_ranks_agree(self.budget.expired(), self.run)

    def set_lr(self, base: float, warmup: int) -> None:
        self.lr = runtime.learning_rate(base, self.step - self.first_step, self.budget.progress(), warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def optimizer_step(self, run: runtime.Runtime) -> float:
        """Averages the gradients over GPUs, clips them at 1, steps, updates the EMA; returns the gradient norm."""
        runtime.average_gradients(self.student.parameters(), run)
        norm = torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update()
        self.step += 1
        return float(norm)

    def critic_step(self, loss: torch.Tensor, run: runtime.Runtime) -> float:
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        runtime.average_gradients(self.critic.parameters(), run)
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), 1.0)
        self.critic_optimizer.step()
        return loss.item()

    def finish(self, args: argparse.Namespace, run: runtime.Runtime, log: runtime.Log, autoencoder: Autoencoder,
               autoencoder_sha256: str, *, stage: str, frames: int, extra: dict) -> None:
        """Saves the resume state and the EMA weights, scores them on held-out clips, writes metrics (rank 0)."""
        self.history += log.history
        if run.is_main:
            state = {"student": self.student.state_dict(), "ema": self.ema.model.state_dict(),
                     "optimizer": self.optimizer.state_dict(), "step": self.step, "seconds": self.budget.total,
                     "history": self.history}
            if self.critic is not None:
                state.update(critic=self.critic.state_dict(), critic_optimizer=self.critic_optimizer.state_dict())
            save_checkpoint(args.out / "resume", f"{stage}_resume", state,
                            meta={"kind": f"{stage}-resume", "config": self.student.config.to_dict(), "step": self.step},
                            part_bytes=None)
            report: dict[str, object] = {"stage": stage, "steps": self.step, "train_seconds": round(self.budget.total, 1),
                                         "gpus": run.world, "device": run.device_name,
                                         "config": self.student.config.to_dict(),
                                         "parameters": parameter_counts(self.student.config)["transformer"],
                                         "autoencoder_sha256": autoencoder_sha256, **extra}
            if args.eval_clips:
                heldout = heldout_clips(args.heldout_bank, frames=frames, size=self.student.config.size,
                                        clips=args.eval_clips,
                                        pose_style=self.student.config.pose_style)
                figures, sheet = evaluate("student", self.ema.model, autoencoder, heldout, run.device)
                report["heldout"] = figures
                write_sheet(args.out / "samples.png", [sheet])
            files = save_student(args.out, STUDENT_NAME, self.ema.model, stage=stage, step=self.step,
                                 train_seconds=round(self.budget.total, 1), autoencoder_sha256=autoencoder_sha256,
                                 heldout=report.get("heldout"), history=self.history[-200:])
            if self.critic is not None and getattr(args, "save_critic", False):
                files += save_student(args.out, "critic", self.critic, stage="critic", step=self.step)
            report.update(weights=[p.name for p in files], history=self.history,
                          args={k: str(v) for k, v in vars(args).items()})
            runtime.write_json(args.out / "metrics.json", report)
            print(f"saved {', '.join(p.name for p in files)}; held-out: {report.get('heldout')}", flush=True)
        runtime.finish(run)


def run_export(args: argparse.Namespace) -> int:
    if args.portrait is not None:
        from inference.sources.portrait import load_portrait

        if args.portrait.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise ValueError(f"--portrait {args.portrait} is not a PNG or JPEG file; give the presenter's picture as one")
        load_portrait(args.portrait)  # raises with what is wrong when it is not a usable picture
    autoencoder, ae_checkpoint = load_autoencoder(args.autoencoder)
    student, checkpoint = load_transformer(args.student, kinds=("student",))
    check_latent_space(checkpoint.meta, ae_checkpoint, "student")
    stages = {}
    for path in args.metrics:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        stage, run_name = metrics.get("stage", path.parent.name), path.parent.name
        stages[stage if stage == run_name else f"{stage} ({run_name})"] = metrics
    card = model_card(student.config, name=args.name, version=args.version, stages=stages, license=args.license,
                      training_data=args.training_data)
    report = export_pack(student_module(student, autoencoder), args.out, name=args.name, version=args.version,
                         card=card, license=args.license, training_data=args.training_data,
                         precisions=tuple(args.precision or ["float16"]), graphs=tuple(args.graphs.split(",")),
                         limit_bytes=int(args.size_limit_mb * 1e6) if args.size_limit_mb else None,
                         notes="IASA student distilled by Podium; see MODEL_CARD.md", portrait=args.portrait)
    for name, size in report.sizes.items():
        print(f"  {name}: {size / 1e6:.2f} MB")
    print(f"pack written and verified: {report.path} ({report.total / 1e6:.1f} MB)")
    return 0


def run_sizes() -> int:
    configs = {name: config for name, config in PRESETS.items() if name != "tiny"}
    configs["pack student"] = pack_student_config(PRESETS["teacher"]).with_(chunk_frames=2)
    print(f"| configuration | width | depth | heads | transformer | autoencoder | pack (float16, {len(PACK_GRAPHS)} graphs) |")
    print("|---|---|---|---|---|---|---|")
    for name, config in configs.items():
        counts = parameter_counts(config)
        print(f"| {name} | {config.width} | {config.depth} | {config.heads} | {counts['transformer'] / 1e6:.2f} M | "
              f"{counts['autoencoder'] / 1e6:.2f} M | ≈ {estimate_pack_bytes(config) / 1e6:.0f} MB |")
    print(f"\nlimit: {PACK_LIMIT_BYTES / 1e6:.0f} MB (the graphs share one copy of the weights)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "sizes":
            return run_sizes()
        if args.command == "export":
            return run_export(args)
        run = runtime.start(args.seed, args.device)
        stage = {"ode-pairs": run_ode_pairs, "regress": run_regress, "dmd": run_dmd}[args.command]
        return stage(args, run)
    except (PodiumError, ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
