"""The distilled student as a model pack: export, pack, model card, and the issue's 40 MB limit.

The graphs are exported by :func:`training.export_student.export_all` (the custom op in the student graph)
and packed by :func:`training.pack.build_pack` (manifest with sha256 of every file, verified as the app
verifies it); ``MODEL_CARD.md`` is added to the pack and to its manifest. Everything is built in a
temporary folder first: a pack over the size limit is reported (file by file, with the sizes that would
fit) and nothing is written to the destination.

Sizes: the graphs of a precision share one weight file (:func:`training.pack.share_weights`), so the
transformer is stored once however many graphs hold it; in float16 a pack is about
``2 · (transformer + autoencoder)`` bytes (:func:`estimate_pack_bytes`). The pack-sized student
(:func:`pack_student_config`) is the teacher with as many of its layers as fit.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inference.packs import MANIFEST, load_pack, sha256_of
from training.export_student import export_all
from training.models.autoencoder import Autoencoder
from training.models.config import StudentConfig
from training.models.student import Student
from training.models.transformer import VideoTransformer
from training.pack import build_pack

#: The issue's limit on a pack's files together.
PACK_LIMIT_BYTES = 40_000_000
#: What the app needs, and the dense-attention fallback for machines where the custom op cannot load (its
#: weights are the student graph's: it costs only its structure).
PACK_GRAPHS = ("encoder", "reference", "student", "student_fallback", "decoder")
MODEL_CARD = "MODEL_CARD.md"


class PackTooLargeError(ValueError):
    """The exported pack is over the size limit (nothing was written)."""


@dataclass(frozen=True)
class PackReport:
    """What was written: the pack folder, each file's size in bytes and the total."""

    path: Path
    sizes: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def parameter_counts(config: StudentConfig) -> dict[str, int]:
    """Parameters of the transformer and of the autoencoder of a configuration."""
    return {"transformer": sum(p.numel() for p in VideoTransformer(config).parameters()),
            "autoencoder": sum(p.numel() for p in Autoencoder(config).parameters())}


def estimate_pack_bytes(config: StudentConfig, bytes_per_value: int = 2) -> int:
    """About how large a pack of :data:`PACK_GRAPHS` is: one copy of the weights in the shared file, plus the
    graphs' structure (a few percent)."""
    counts = parameter_counts(config)
    return int(bytes_per_value * (counts["transformer"] + counts["autoencoder"]) * 1.05)


def pack_student_config(teacher: StudentConfig, limit_bytes: int = PACK_LIMIT_BYTES) -> StudentConfig:
    """The deepest student with the teacher's architecture whose float16 pack fits ``limit_bytes``: it starts
    from the teacher's weights without the blocks that matter least (:mod:`training.distillation.weights`).

    Raises:
        ValueError: not even one layer fits.
    """
    for depth in range(teacher.depth, 0, -1):
        config = teacher.with_(depth=depth)
        if estimate_pack_bytes(config) <= limit_bytes:
            return config
    raise ValueError(f"no student of the teacher's width {teacher.width} fits a {limit_bytes / 1e6:.0f} MB pack; "
                     "give --student-size WIDTH,DEPTH,HEADS")


def student_module(transformer: VideoTransformer, autoencoder: Autoencoder) -> Student:
    """The exportable :class:`~training.models.student.Student` of a distilled transformer and its autoencoder."""
    student = Student(transformer.config)
    student.transformer.load_state_dict(transformer.state_dict())
    student.autoencoder.load_state_dict(autoencoder.state_dict())
    return student.eval()


def export_pack(student: Student, out: Path, *, name: str, version: str, card: str, license: str,
                training_data: str, precisions: tuple[str, ...] = ("float16",),
                graphs: tuple[str, ...] = PACK_GRAPHS, limit_bytes: int | None = PACK_LIMIT_BYTES,
                notes: str = "", portrait: Path | None = None) -> PackReport:
    """Exports ``student`` and builds the pack ``out`` (a new folder) with its model card and, if given, the
    portrait it was made for (shown when the user has not chosen one).

    Raises:
        PackTooLargeError: the files together exceed ``limit_bytes`` (nothing is written to ``out``).
        FileExistsError: ``out`` exists and is not empty.
    """
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new pack folder")
    with tempfile.TemporaryDirectory(prefix="podium-pack-") as tmp:
        files = export_all(student, Path(tmp) / "export", precisions, graphs)
        staged = build_pack(Path(tmp) / "export", Path(tmp) / "pack", student.config, files, name=name,
                            version=version, license=license, training_data=training_data, notes=notes,
                            portrait=portrait)
        add_model_card(staged, card)
        sizes = {p.name: p.stat().st_size for p in sorted(staged.iterdir())}
        total = sum(sizes.values())
        if limit_bytes is not None and total > limit_bytes:
            listing = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items())
            try:
                smaller = f"--student-size pack: depth {pack_student_config(student.config, limit_bytes).depth}"
            except ValueError:
                smaller = "--student-size WIDTH,DEPTH,HEADS with fewer parameters"
            raise PackTooLargeError(
                f"the pack would be {total / 1e6:.1f} MB, over the {limit_bytes / 1e6:.0f} MB limit ({listing}); "
                f"distil into a smaller student ({smaller}) or export fewer graphs")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staged, out, dirs_exist_ok=True)
    load_pack(out)
    return PackReport(out, sizes)


def add_model_card(pack: Path, card: str) -> None:
    """Writes ``MODEL_CARD.md`` into a pack folder and lists it (with its sha256) in the manifest."""
    (pack / MODEL_CARD).write_text(card, encoding="utf-8")
    manifest_path = pack / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"][MODEL_CARD] = sha256_of(pack / MODEL_CARD)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    load_pack(pack)


def _figure(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def model_card(config: StudentConfig, *, name: str, version: str, stages: dict[str, dict], license: str,
               training_data: str) -> str:
    """The pack's ``MODEL_CARD.md``: what it is, the data, intended use, limits, how it was trained (and how
    that departs from the paper) and the held-out figures of each stage.

    Args:
        stages: per training stage ("sparse fine-tune", "ODE regression", "DMD"...), its ``metrics.json``.
    """
    counts = parameter_counts(config)
    lines = [
        f"# {name} {version}: the IASA student", "",
        "A few-step, causal, pose- and reference-conditioned latent video transformer with input-aware sparse "
        "attention (Lu et al., *Input-Aware Sparse Attention for Real-Time Co-Speech Video Generation*, SIGGRAPH "
        "Asia 2025), distilled by Podium from its own teacher. It renders a presenter from a keypoint stream "
        "(DWPose-134) and one reference portrait.", "",
        "## Model", "",
        f"- {config.size}×{config.size} frames at 25 fps; latents {config.latent_channels}×{config.latent_size}²; "
        f"transformer width {config.width}, depth {config.depth}, {config.heads} heads "
        f"({counts['transformer'] / 1e6:.2f} M parameters), autoencoder {counts['autoencoder'] / 1e6:.2f} M.",
        f"- Streams chunks of {config.chunk_frames} frames in {len(config.timesteps)} step(s) (times "
        f"{', '.join(f'{t:g}' for t in config.timesteps)}, {config.sampler} sampler), attending to the "
        f"{config.top_k} of its last {config.cache_frames} frames most similar in pose (rigid Procrustes), "
        "region to region (face, hands, arms and shoulders, torso) across frames, through the BlockSparseAttention "
        "custom op.", "",
        "## Training data", "",
        f"{training_data}", "",
        "Synthetic presenters: procedurally drawn cartoon people (every identity, pose, mouth shape and hand pose "
        "known), driven by keypoint streams of Podium's motion stage on public-domain LibriVox speech and the "
        "Debian pocketsphinx test recordings, widened by pose perturbations. Held-out identities (odd seeds) and "
        "held-out speech (the last demo sentence, card 005) never enter training; every figure below is on them.",
        "",
        "## Intended use", "",
        "Podium's default avatar on a CUDA GPU: a cartoon presenter that talks and gestures in real time from the "
        "user's microphone (through the motion stage), in the preview and on the virtual camera, and offline "
        "renders. Trained on synthetic cartoons only: it does not render real people (use the photo rig, or "
        "train a personal pack from a video of yourself). A pack may carry the presenter it renders best "
        "(`portrait.png`): Podium shows it whenever the user has not chosen a portrait.", "",
        "## Limits", "",
        "- Only the synthetic presenters' look (flat colours, simple clothes, static background and camera).",
        f"- {config.size}×{config.size}: fingers are a few pixels wide and come out soft; teeth and eyes lose detail.",
        "- Lip shapes follow the keypoints the motion stage makes from English speech; it has never seen other "
        "languages' mouth movements.",
        "- It renders whatever keypoints it gets: anyone can be made to appear to say anything. Podium marks "
        "recordings as generated and shows an \"AI avatar\" badge on the virtual camera by default.", "",
        "## How it was trained, and how that departs from the paper", "",
        "1. A bidirectional many-step flow-matching teacher (Podium's own, not MimicMotion) on 16-frame clips.",
        "2. The teacher fine-tuned with the input-aware sparse attention (the runtime's masks, over each clip).",
        "3. The causal student initialised by regression on the teacher's ODE trajectories (CausVid), streamed "
        "exactly as the runtime streams it (same chunks, cache, top-K and masks).",
        "4. DMD: the sparse teacher as the real score, a fake score trained online on the student's samples "
        "(several critic updates per generator update), the student rolled out chunk by chunk with its own cache.",
        "5. The input-aware region loss on the mouth, the face and the hands, with masks from each frame's "
        "keypoints. **Departure:** the paper uses ArcFace embeddings on the face and LPIPS on the other regions; "
        "their pretrained weights are not available here, so each region's loss is pixel L1 inside the mask, "
        "1 − SSIM of the masked crop, and a perceptual distance on the features of Podium's own autoencoder "
        "encoder (LPIPS-style, channel-normalised activations of its four stages).",
        "6. Other choices the paper leaves open are Podium's: K, the chunk size and the key/value cache, the "
        "region polygons, the block size (64) and max-pooling of the mask.", "",
        "## Held-out figures", "",
    ]
    for stage, metrics in stages.items():
        heldout = {k: v for k, v in metrics.items() if isinstance(v, dict) and "psnr_db" in v}
        for label, figures in heldout.items():
            shown = ", ".join(f"{k} {_figure(figures[k])}" for k in ("psnr_db", "ssim", "mae_mouth", "mae_hands",
                                                                    "flicker") if k in figures)
            lines.append(f"- {stage}, {label.replace('_', ' ')}: {shown}")
    if not stages:
        lines.append("- none recorded (the pack was exported without its training metrics)")
    lines += ["", "## License", "", license, ""]
    return "\n".join(lines)
