"""Student weights and the networks a distillation stage starts from.

Students are saved like teachers (:func:`training.models.teacher.save_teacher`): the transformer's state dict
in bf16, as :mod:`training.checkpoints` parts of at most 15 MiB (what comes back from the GPU machine), with
the configuration (the streaming numbers included: chunk, cache, top-K, timesteps) and the run's facts in
the manifest. A student may be smaller than its teacher (the shipped pack must stay under 40 MB); it then
starts from scratch and the ODE regression trains it, else it starts from the teacher's weights.
"""

from __future__ import annotations

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
                       "pooled_reference")


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


def student_from(teacher: VideoTransformer, config: StudentConfig) -> tuple[VideoTransformer, str]:
    """A student of ``config``: the teacher's weights when the architectures match, else a fresh network.

    Returns:
        ``(student, how)``, ``how`` saying which ("teacher weights" or "fresh: ...").
    """
    student = VideoTransformer(config).to(next(teacher.parameters()).device)
    if same_architecture(teacher.config, config):
        student.load_state_dict(teacher.state_dict())
        return student, "teacher weights"
    return student, (f"fresh: width {config.width}, depth {config.depth} against the teacher's width "
                     f"{teacher.config.width}, depth {teacher.config.depth}")


def check_latent_space(meta: dict, autoencoder: Checkpoint, what: str) -> None:
    """Raises when a network's record names another autoencoder than ``autoencoder`` (``meta["autoencoder_sha256"]``).

    Raises:
        CheckpointError: the latent spaces differ.
    """
    expected = meta.get("autoencoder_sha256")
    if expected and expected != autoencoder.sha256:
        raise CheckpointError(autoencoder.files[0], f"is not the autoencoder the {what} was trained with (its "
                              "checksum differs from the record)", f"Give the autoencoder_weights of the {what}'s run")
