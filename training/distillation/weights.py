"""Student weights and the networks a distillation stage starts from.

Students are saved like teachers (:func:`training.models.teacher.save_teacher`): the transformer's state dict
in bf16, as :mod:`training.checkpoints` parts of at most 15 MiB (what comes back from the GPU machine), with
the configuration (the streaming numbers included: chunk, cache, top-K, timesteps) and the run's facts in
the manifest. A student starts from its teacher's weights when it has the teacher's architecture, or the
teacher's with fewer layers (the shipped pack must stay under 40 MB): then it keeps the teacher's blocks but
the ones whose removal hurts least (:func:`choose_dropped_blocks`, measured on the regression's own loss).
Any other shape starts from scratch and the ODE regression trains it alone (slow: see training/runs.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from training.checkpoints import Checkpoint, CheckpointError, bf16_state_dict, load_checkpoint, save_checkpoint
from training.models.config import StudentConfig
from training.models.teacher import CHECKPOINT_KIND as TEACHER_KIND
from training.models.transformer import VideoTransformer

#: ``meta["kind"]`` of student weight checkpoints.
STUDENT_KIND = "student"
#: Configuration fields that decide the transformer's parameters (the rest are streaming numbers).
ARCHITECTURE_FIELDS = ("size", "latent_channels", "pose_channels", "patch", "width", "depth", "heads", "mlp_ratio",
                       "pooled_reference", "aligned_reference", "frame_positions")


def same_architecture(a: StudentConfig, b: StudentConfig) -> bool:
    """Whether two configurations have the same parameters (so one's weights load into the other)."""
    return all(getattr(a, name) == getattr(b, name) for name in ARCHITECTURE_FIELDS)


def save_student(folder: str | Path, name: str, transformer: VideoTransformer, **facts: object) -> list[Path]:
    """Write a student's transformer in bf16 as checkpoint parts ``folder/NAME.pKofN.ckpt`` (meta: ``kind``
    "student", ``config``, and ``facts``: JSON-able values such as the stage, step and held-out metrics)."""
    meta = {"kind": STUDENT_KIND, "config": transformer.config.to_dict(), **facts}
    return save_checkpoint(folder, name, {"transformer": bf16_state_dict(transformer)}, meta=meta)


def load_transformer(path: str | Path, device: torch.device | str = "cpu",
                     kinds: tuple[str, ...] = (STUDENT_KIND, TEACHER_KIND)) -> tuple[VideoTransformer, Checkpoint]:
    """A student or teacher checkpoint (a part file, or ``folder/NAME``) → float32 transformer in eval mode.

    Raises:
        CheckpointError: missing or damaged parts, or weights of another kind.
    """
    checkpoint = load_checkpoint(path)
    kind = checkpoint.meta.get("kind")
    if kind not in kinds:
        raise CheckpointError(checkpoint.files[0], f"holds {kind or 'unknown'} weights, not {' or '.join(kinds)} "
                              "weights", "Give a checkpoint written by training.distill or training.train_teacher")
    transformer = VideoTransformer(StudentConfig.from_dict(checkpoint.meta["config"]))
    transformer.load_state_dict({k: v.float() for k, v in checkpoint.state["transformer"].items()})
    return transformer.to(device).eval(), checkpoint


def is_shallower(teacher: StudentConfig, config: StudentConfig) -> bool:
    """Whether ``config`` is the teacher's architecture with fewer layers (so it can keep some of its blocks)."""
    return config.depth < teacher.depth and same_architecture(teacher.with_(depth=config.depth), config)


def without_blocks(teacher: VideoTransformer, config: StudentConfig, dropped: Sequence[int]) -> VideoTransformer:
    """A network of ``config`` holding the teacher's weights without the blocks ``dropped`` (the rest in order).

    Raises:
        ValueError: ``config`` is not the teacher's architecture with ``len(dropped)`` fewer layers.
    """
    kept = [b for b in range(teacher.config.depth) if b not in set(dropped)]
    if len(kept) != config.depth or not same_architecture(teacher.config.with_(depth=config.depth), config):
        raise ValueError(f"dropping blocks {list(dropped)} of a depth-{teacher.config.depth} teacher does not give "
                         f"this depth-{config.depth} student")
    renumber = {f"blocks.{old}.": f"blocks.{new}." for new, old in enumerate(kept)}
    state = {}
    for key, value in teacher.state_dict().items():
        if key.startswith("blocks."):
            prefix = ".".join(key.split(".")[:2]) + "."
            if prefix not in renumber:
                continue
            key = renumber[prefix] + key[len(prefix):]
        state[key] = value
    student = VideoTransformer(config).to(next(teacher.parameters()).device)
    student.load_state_dict(state)
    return student


def choose_dropped_blocks(teacher: VideoTransformer, config: StudentConfig,
                          loss_of: Callable[[VideoTransformer], float]) -> list[int]:
    """The teacher's blocks a shallower student leaves out, chosen greedily: at each round, the block whose
    removal gives the lowest ``loss_of(network)`` (the regression loss of a batch, without gradients)."""
    dropped: list[int] = []
    for depth in range(teacher.config.depth - 1, config.depth - 1, -1):
        candidates = [b for b in range(teacher.config.depth) if b not in dropped]
        losses = {b: loss_of(without_blocks(teacher, config.with_(depth=depth), [*dropped, b])) for b in candidates}
        dropped.append(min(losses, key=losses.get))
    return sorted(dropped)


def student_from(teacher: VideoTransformer, config: StudentConfig,
                 loss_of: Callable[[VideoTransformer], float] | None = None) -> tuple[VideoTransformer, str]:
    """A student of ``config``: the teacher's weights when the architectures match, the teacher's without the
    blocks :func:`choose_dropped_blocks` picks (by ``loss_of``; the last ones without it) when the student is
    shallower, else a fresh network.

    Returns:
        ``(student, how)``, ``how`` saying which ("teacher weights", "teacher weights without blocks ..." or
        "fresh: ...").
    """
    if same_architecture(teacher.config, config):
        student = VideoTransformer(config).to(next(teacher.parameters()).device)
        student.load_state_dict(teacher.state_dict())
        return student, "teacher weights"
    if is_shallower(teacher.config, config):
        dropped = (choose_dropped_blocks(teacher, config, loss_of) if loss_of is not None
                   else list(range(config.depth, teacher.config.depth)))
        return without_blocks(teacher, config, dropped), f"teacher weights without blocks {dropped}"
    student = VideoTransformer(config).to(next(teacher.parameters()).device)
    return student, (f"fresh: width {config.width}, depth {config.depth} against the teacher's width "
                     f"{teacher.config.width}, depth {teacher.config.depth}")
