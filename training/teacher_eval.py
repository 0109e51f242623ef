"""Held-out evaluation of the teacher: figures, a contact sheet, and a video with the speech that drove it.

    python -m training.teacher_eval evaluate --teacher RUN/teacher_ema --autoencoder AE/autoencoder_weights \\
        --heldout-bank out/motion_heldout.npz --out RUN/eval [--clips 32 --frames 16 --steps 25,1]
    python -m training.teacher_eval video RUN/sample_video.npz --heldout-bank out/motion_heldout.npz

Held out means identities from the odd seed stream (never trained on) driven by keypoint streams of
held-out speech (:mod:`training.data.speech`). For every ``--steps`` count the teacher samples each clip
from the same noise with that many Euler steps; the frames are compared with the renderer's ground
truth: PSNR and SSIM per frame, mean absolute error (0..255) pooled over the pixels of the mouth, of each
hand and of the whole frame, and temporal flicker (:mod:`training.metrics`). The same figures for the
autoencoder's reconstruction of the truth (the ceiling: the teacher works in its latent space), for
copying the reference portrait (the floor) and for warping it to each frame's keypoints
(:func:`training.data.reference_warp.warp_reference`, a baseline that learns nothing) put them in scale. On
the first clip, how much each layer's queries prefer their own frame's keys to other frames'
(:func:`own_frame_attention`; 1: they cannot tell them apart).

Files (each small enough to come back from the GPU machine):

* ``samples.png`` (< 2 MB): one held-out clip per row: the reference, then for the frame with the widest
  mouth and the frame with the highest hand: pose map, truth, teacher, error × 4;
* ``closeups.png``: the same clips' mouth (at the widest mouth) and hands (at the highest hand): truth, the
  autoencoder's reconstruction of it (the best the teacher's latents can show) and teacher, cut around their
  keypoints and enlarged with nearest-neighbour pixels, to judge teeth and fingers;
* ``sample.mp4``: reference | pose map | truth | teacher, at 25 fps, with the held-out speech (H.264 + AAC
  through :class:`inference.sinks.mp4.Mp4Sink`); written where PyAV and the speech files are. Elsewhere
  (the GPU machine has no PyAV) ``sample_video.npz`` holds the teacher's frames as JPEG and what they
  show; the ``video`` command turns it into ``sample.mp4`` on a machine that has both (everything but
  the teacher's frames is re-rendered deterministically there).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from inference import keypoints as kp
from inference.errors import InputFileError, PodiumError
from inference.render.pose_map import PoseMapStyle, draw_pose_map
from inference.types import AudioBlock, VideoFrame
from training.data.clips import ClipConfig, ClipSampler, identity_seed
from training.data.motion_bank import MotionBank
from training.data.reference_warp import warp_reference
from training.data.sheets import _pick_frame, save_png
from training.data.speech import read_blocks, speech_clips
from training.data.torch_dataset import SyntheticClipDataset
from training.metrics import flicker, psnr, region_mae, ssim
from training.models.autoencoder import Autoencoder, check_latent_space, load_autoencoder, rgb_from_uint8, rgb_to_uint8
from training.models.teacher import Teacher, add_noise, euler_sample, load_teacher
from training.synthetic.identity import sample_identity
from training.synthetic.presenter import SyntheticPresenter
from training.synthetic.regions import REGION_BITS, REGIONS

#: Seed of the held-out clips (motion segments, perturbations, cameras) and of the sampling noise.
EVAL_SEED = 12345
#: Regions whose error is reported (bits of :data:`training.synthetic.regions.REGION_BITS`); "frame" is every pixel.
FOCUS: dict[str, int] = {
    "mouth": REGION_BITS["mouth"], "left_hand": REGION_BITS["left_hand"], "right_hand": REGION_BITS["right_hand"],
    "hands": REGION_BITS["left_hand"] | REGION_BITS["right_hand"],
}
SHEET_ROWS = 6
CLOSEUP_TILE = 128
#: (label, keypoints, frame kind of :func:`_pick_frame`, least side of the cut in pixels at 256)
_CLOSEUPS = (("mouth", np.array([kp.face_index(i) for i in kp.FACE_OUTER_LIPS]), 0, 36),
             ("right hand", kp.RIGHT_HAND, 1, 48), ("left hand", kp.LEFT_HAND, 1, 48))
PNG_LIMIT = 1_900_000
VIDEO_ARCHIVE = "sample_video.npz"
VIDEO_FILE = "sample.mp4"
CLOSEUPS_FILE = "closeups.png"
_LABEL_HEIGHT = 24
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class EvalSettings:
    """What the evaluation samples.

    Attributes:
        clips: held-out clips; frames: frames per clip (the teacher's clip length).
        steps: Euler step counts to score (the first one makes the sheet and the video).
        guidance: classifier-free guidance scales over the pose also scored at the first step count (figures
            under ``"{steps}g{scale}"``); for teachers trained with pose dropout.
        batch: clips sampled together; workers: DataLoader processes rendering the truth.
        video_segments: held-out speech streams in the video (one held-out identity each; 0: no video).
    """

    clips: int = 32
    frames: int = 16
    steps: tuple[int, ...] = (25, 1)
    guidance: tuple[float, ...] = ()
    batch: int = 8
    workers: int = 0
    video_segments: int = 2


class Scores:
    """Accumulates held-out figures over batches of clips (frames in ``[-1, 1]``)."""

    def __init__(self) -> None:
        self.psnr: list[torch.Tensor] = []
        self.ssim: list[torch.Tensor] = []
        self.error = dict.fromkeys([*FOCUS, "frame"], 0.0)
        self.pixels = dict.fromkeys([*FOCUS, "frame"], 0.0)
        self.flicker = 0.0
        self.clips = 0
        self.squared = dict.fromkeys([*REGIONS, "frame"], 0.0)

    def add(self, output: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> None:
        """Clips ``[B, T, 3, H, W]`` (output and truth) and their region masks uint8 ``[B, T, H, W]``."""
        out, gt = output.flatten(0, 1).float(), truth.flatten(0, 1).float()
        self.psnr.append(psnr(out, gt).cpu())
        self.ssim.append(ssim(out, gt).cpu())
        bits = masks.flatten(0, 1).to(torch.int32)
        regions = {name: (bits & bit) != 0 for name, bit in FOCUS.items()}
        regions["frame"] = torch.ones_like(bits, dtype=torch.bool)
        for name, mask in regions.items():
            pixels = float(mask.sum())
            if pixels:
                self.error[name] += float(region_mae(out, gt, mask)) * pixels
                self.pixels[name] += pixels
        squared = ((out - gt) * 127.5).square().mean(dim=1)  # [N, H, W], in levels²
        self.squared["frame"] += float(squared.sum())
        for name in REGIONS:
            self.squared[name] += float(squared[(bits & REGION_BITS[name]) != 0].sum())
        self.flicker += float(flicker(output.float(), truth.float())) * len(output)
        self.clips += len(output)

    def result(self) -> dict[str, float]:
        """PSNR (dB) and SSIM averaged over frames; MAE (0..255) pooled over each region's pixels; flicker; and
        ``error_share``: the share of the frame's squared error inside each region of
        :data:`~training.synthetic.regions.REGIONS` (where the PSNR is lost; regions overlap, e.g. the mouth is
        inside the face, so the shares may add up to more than 1)."""
        scores = {"psnr_db": float(torch.cat(self.psnr).mean()), "ssim": float(torch.cat(self.ssim).mean())}
        for name in self.error:
            scores[f"mae_{name}"] = self.error[name] / self.pixels[name] if self.pixels[name] else float("nan")
        scores["flicker"] = self.flicker / max(1, self.clips)
        total = self.squared["frame"]
        scores["error_share"] = {name: self.squared[name] / total if total else 0.0 for name in REGIONS}
        scores["frames"] = int(sum(len(p) for p in self.psnr))
        return scores


def _autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _decode(autoencoder: Autoencoder, latent: torch.Tensor) -> torch.Tensor:
    """Latent clips ``[B, T, C, h, w]`` → RGB clips ``[B, T, 3, H, W]`` in float32."""
    return autoencoder.decode(latent.flatten(0, 1)).float().unflatten(0, latent.shape[:2])


def _label_strip(labels: list[str], tile: int, scale: float = 0.5) -> np.ndarray:
    """A black strip ``[24, len(labels) · tile, 3]`` with one white label per column."""
    strip = np.zeros((_LABEL_HEIGHT, tile * len(labels), 3), np.uint8)
    for i, text in enumerate(labels):
        cv2.putText(strip, text, (i * tile + 4, 17), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def _error_tile(truth: np.ndarray, output: np.ndarray) -> np.ndarray:
    return np.clip(np.abs(truth.astype(np.int16) - output.astype(np.int16)) * 4, 0, 255).astype(np.uint8)


def _sheet_row(reference: np.ndarray, pose: np.ndarray, truth: np.ndarray, output: np.ndarray,
               keypoints: np.ndarray) -> np.ndarray:
    """One clip's row: reference, then (pose, truth, teacher, error × 4) for its widest mouth and highest hand."""
    tiles = [reference]
    for kind in (0, 1):
        t = _pick_frame(keypoints, kind)
        tiles += [pose[t], truth[t], output[t], _error_tile(truth[t], output[t])]
    return np.concatenate(tiles, axis=1)


def closeup_cut(keypoints: np.ndarray, points: slice | np.ndarray, size: int,
                least: float) -> tuple[int, int, int] | None:
    """The square ``(x, y, side)`` (pixels, may reach past the frame) around ``points`` of one frame's keypoints
    ``[134, 3]``: 1.5 times their extent, at least ``least`` × size / 256; None if none of them is confident and
    inside the frame."""
    xy = keypoints[points, :2]
    seen = kp.seen_in_frame(keypoints[points])
    if not seen.any():
        return None
    lo, hi = xy[seen].min(axis=0) * size, xy[seen].max(axis=0) * size
    side = int(round(max(float((hi - lo).max()) * 1.5, least * size / 256)))
    centre = (lo + hi) / 2
    return int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2)), side


def _cut(frame: np.ndarray, box: tuple[int, int, int] | None) -> np.ndarray:
    """``frame`` cut to ``box`` (black past its edges), enlarged to the close-up tile; black if ``box`` is None."""
    if box is None:
        return np.zeros((CLOSEUP_TILE, CLOSEUP_TILE, 3), np.uint8)
    x, y, side = box
    padded = cv2.copyMakeBorder(frame, side, side, side, side, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    crop = padded[y + side:y + 2 * side, x + side:x + 2 * side]
    return cv2.resize(crop, (CLOSEUP_TILE, CLOSEUP_TILE), interpolation=cv2.INTER_NEAREST)


def _closeup_row(truth: np.ndarray, reconstruction: np.ndarray, output: np.ndarray,
                 keypoints: np.ndarray) -> np.ndarray:
    """One clip's close-ups: for the mouth and each hand, truth, the autoencoder's reconstruction, then teacher
    (black where the part is out of view)."""
    tiles = []
    for _, points, kind, least in _CLOSEUPS:
        t = _pick_frame(keypoints, kind)
        box = closeup_cut(keypoints[t], points, truth.shape[1], least)
        tiles += [_cut(frames[t], box) for frames in (truth, reconstruction, output)]
    return np.concatenate(tiles, axis=1)


def _warped_references(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each clip's reference warped to each of its frames' keypoints (the loader's, when it warped them): RGB
    ``[B, T, 3, H, W]`` in ``[-1, 1]``."""
    if "warped_reference" in batch:
        warped = batch["warped_reference"].permute(0, 1, 3, 4, 2)
    else:
        clips = zip(batch["reference"].permute(0, 2, 3, 1).numpy(), batch["reference_keypoints"].numpy(),
                    batch["keypoints"].numpy(), strict=True)
        warped = torch.from_numpy(np.stack([np.stack([warp_reference(reference, reference_keypoints, keypoints)
                                                      for keypoints in frames])
                                            for reference, reference_keypoints, frames in clips]))
    return rgb_from_uint8(warped.flatten(0, 1)).unflatten(0, warped.shape[:2])


@torch.no_grad()
def evaluate(teacher: Teacher, autoencoder: Autoencoder, bank: MotionBank, settings: EvalSettings,
             device: torch.device, on_clips: Callable[[int], None] | None = None,
             ) -> tuple[dict[str, object], np.ndarray, np.ndarray]:
    """Score the teacher on held-out clips; ``on_clips(n)`` is told after each batch of ``n`` clips.

    Returns:
        (figures: ``teacher`` per step count, ``autoencoder_ceiling``, ``copy_reference_floor``,
        ``warped_reference_floor``, seconds per clip,
        ``own_frame_attention`` per layer on the first clip (:func:`own_frame_attention`), ``by_framing``: the
        first step count's figures over the clips of each framing (a head-and-shoulders framing shows arms and
        torso whose joints lie outside the frame); the contact sheet and the close-up sheet, uint8 RGB).
    """
    teacher.eval()
    size = teacher.config.size
    sampler = ClipSampler(bank, "heldout", ClipConfig(length=settings.frames, seed=EVAL_SEED))
    dataset = SyntheticClipDataset(sampler, size=size, num_clips=settings.clips, pose_maps=True,
                                   pose_style=teacher.config.pose_style,
                                   warped_reference=teacher.config.warped_reference)
    loader = DataLoader(dataset, batch_size=settings.batch, num_workers=settings.workers)
    noise_generator = torch.Generator().manual_seed(EVAL_SEED)
    runs = [(str(n), n, 1.0) for n in settings.steps]
    runs += [(f"{settings.steps[0]}g{w:g}", settings.steps[0], w) for w in settings.guidance]
    by_run = {name: Scores() for name, _, _ in runs}
    by_framing: dict[str, Scores] = {}
    ceiling, floor, warped_floor = Scores(), Scores(), Scores()
    seconds = dict.fromkeys(by_run, 0.0)
    rows: list[np.ndarray] = []
    closeups: list[np.ndarray] = []
    own_frame: list[float] = []
    for batch in loader:
        frames = batch["frames"].to(device)
        masks = batch["masks"].to(device)
        clips, length = frames.shape[:2]
        truth = rgb_from_uint8(frames.flatten(0, 1).permute(0, 2, 3, 1)).unflatten(0, (clips, length))
        reference_rgb = rgb_from_uint8(batch["reference"].to(device).permute(0, 2, 3, 1))
        pose = batch["pose_maps"].to(device).permute(0, 1, 3, 4, 2)
        with _autocast(device):
            latent = autoencoder.encode(truth.flatten(0, 1)).float().unflatten(0, (clips, length))
            reference = autoencoder.encode(reference_rgb).float()
            reconstruction = _decode(autoencoder, latent)
            ceiling.add(reconstruction, truth, masks)
        floor.add(reference_rgb[:, None].expand_as(truth), truth, masks)
        warped_rgb = _warped_references(batch).to(device)
        warped_floor.add(warped_rgb, truth, masks)
        warped = None  # the warped reference's latents, for a teacher that takes them
        if teacher.config.warped_reference:
            with _autocast(device):
                warped = autoencoder.encode(warped_rgb.flatten(0, 1)).float().unflatten(0, (clips, length))
        if not own_frame and length > 1:
            with _autocast(device):
                own_frame = own_frame_attention(teacher, latent[:1], pose[:1], reference[:1],
                                                warped=warped[:1] if warped is not None else None)
        noise = torch.randn(latent.shape, generator=noise_generator).to(device)
        outputs = {}
        for name, steps, scale in runs:
            start = _now(device)
            with _autocast(device):
                sampled = euler_sample(teacher, pose, reference, noise, steps, window=length, guidance=scale,
                                       warped=warped)
                outputs[name] = _decode(autoencoder, sampled)
            seconds[name] += _now(device) - start
            by_run[name].add(outputs[name], truth, masks)
        for i, index in enumerate(batch["index"].tolist()):
            scores = by_framing.setdefault(sampler.spec(index).framing, Scores())
            scores.add(outputs[runs[0][0]][i:i + 1], truth[i:i + 1], masks[i:i + 1])
        for i in range(min(clips, SHEET_ROWS - len(rows))):
            main = rgb_to_uint8(outputs[runs[0][0]][i]).cpu().numpy()
            truth_frames = frames[i].permute(0, 2, 3, 1).cpu().numpy()
            rows.append(_sheet_row(batch["reference"][i].permute(1, 2, 0).numpy(), pose[i].cpu().numpy(),
                                   truth_frames, main, batch["keypoints"][i].numpy()))
            closeups.append(_closeup_row(truth_frames, rgb_to_uint8(reconstruction[i]).cpu().numpy(), main,
                                         batch["keypoints"][i].numpy()))
        if on_clips is not None:
            on_clips(clips)
    labels = ["reference"] + [f"{what} ({frame})" for frame in ("widest mouth", "highest hand")
                              for what in ("pose", "truth", f"teacher {settings.steps[0]}", "error x4")]
    sheet = np.concatenate([_label_strip(labels, size), *rows], axis=0)
    closeup_labels = [f"{part}: {what}" for part, _, _, _ in _CLOSEUPS for what in ("truth", "AE", "teacher")]
    closeup_sheet = np.concatenate([_label_strip(closeup_labels, CLOSEUP_TILE, scale=0.4), *closeups], axis=0)
    figures: dict[str, object] = {
        "clips": settings.clips, "frames_per_clip": settings.frames, "seed": EVAL_SEED,
        "teacher": {name: s.result() for name, s in by_run.items()},
        "sample_seconds_per_clip": {name: seconds[name] / max(1, settings.clips) for name in by_run},
        "autoencoder_ceiling": ceiling.result(), "copy_reference_floor": floor.result(),
        "warped_reference_floor": warped_floor.result(),
        "own_frame_attention": own_frame,
        "by_framing": {framing: s.result() for framing, s in sorted(by_framing.items())},
    }
    return figures, sheet, closeup_sheet


class _FrameAttentionProbe:
    """An attention that also measures, per layer, how much a query looks at its own frame: the weight on one of its
    own frame's tokens over the weight on one token of another frame, the keys at the query's own place left out in
    every frame (1: the network cannot tell its frame from the others; see ``StudentConfig.frame_positions``)."""

    def __init__(self, frames: int, tokens: int) -> None:
        self.frames, self.tokens = frames, tokens
        self.ratios: list[float] = []

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax((q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5, dim=-1)
        if q.shape[2] == k.shape[2]:  # the reference encoding: no frames
            return (weights @ v.float()).to(q.dtype)
        frames, tokens = self.frames, self.tokens
        clip = weights[..., k.shape[2] - frames * tokens:].reshape(*weights.shape[:2], frames, tokens, frames, tokens)
        same_place = torch.diagonal(clip, dim1=3, dim2=5)  # [S, H, F query, F key, N]
        by_frame = clip.sum(-1) - same_place.transpose(-1, -2)  # [S, H, F query, N, F key], other places only
        own = torch.diagonal(by_frame, dim1=2, dim2=4).sum()
        self.ratios.append(float(own * (frames - 1) / (by_frame.sum() - own)))
        return (weights @ v.float()).to(q.dtype)


def own_frame_attention(teacher: Teacher, latent: torch.Tensor, pose: torch.Tensor, reference: torch.Tensor,
                        t: float = 0.5, seed: int = EVAL_SEED, warped: torch.Tensor | None = None) -> list[float]:
    """Per layer, how much more a query of one clip (noised to ``t``) attends to a token of its own frame than to
    one of another frame (keys at the query's own place left out; 1: no preference).

    Args:
        latent: one clip's clean latents ``[1, T, C, h, w]`` (T ≥ 2); pose: uint8 ``[1, T, H, W, 3]``;
        reference: ``[1, C, h, w]``; warped: the warped reference's latents ``[1, T, C, h, w]`` of a
        ``warped_reference`` teacher.
    """
    frames = latent.shape[1]
    if latent.shape[0] != 1 or frames < 2:
        raise ValueError(f"need one clip of at least 2 frames, got latents of shape {tuple(latent.shape)}")
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(seed)).to(latent.device)
    times = torch.full((1,), t, device=latent.device)
    probe = _FrameAttentionProbe(frames, teacher.config.tokens_per_frame)
    with torch.no_grad():
        teacher.transformer.denoise_clips(add_noise(latent, noise, times), times[:, None].expand(1, frames), pose,
                                          reference, attention=probe, warped=warped)
    return probe.ratios


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


# -- the video --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoSegment:
    """One held-out speech stream worn by one held-out identity (no perturbation, no camera move)."""

    stream: int
    speech: str
    identity_seed: int
    frames: int


def video_segments(bank: MotionBank, count: int) -> list[VideoSegment]:
    """Up to ``count`` streams of different speech, half-body framing preferred (hands in view), offline mode
    preferred (whole-utterance motion), each with its own held-out identity."""
    order = sorted(range(len(bank)), key=lambda i: (bank.infos[i].framing != "half-body",
                                                     bank.infos[i].mode != "offline", bank.infos[i].style != "lively", i))
    chosen: list[int] = []
    for i in order:
        if len(chosen) < count and bank.infos[i].speech not in {bank.infos[c].speech for c in chosen}:
            chosen.append(i)
    return [VideoSegment(i, bank.infos[i].speech, identity_seed("heldout", 10_000 + k), len(bank.streams[i]))
            for k, i in enumerate(sorted(chosen))]


def _segment_presenter(bank: MotionBank, segment: VideoSegment, size: int) -> tuple[SyntheticPresenter, np.ndarray]:
    """The segment's presenter and its keypoints ``[N, 134, 3]`` (the stream fitted to the presenter)."""
    presenter = SyntheticPresenter(sample_identity(segment.identity_seed), size)
    return presenter, presenter.personalise(bank.streams[segment.stream][:segment.frames])


def render_segment(bank: MotionBank, segment: VideoSegment, size: int, *,
                   pose_style: PoseMapStyle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The segment's ground truth: (frames uint8 ``[N, S, S, 3]``, pose maps uint8 ``[N, S, S, 3]`` drawn as the
    teacher was trained, reference ``[S, S, 3]``)."""
    presenter, keypoints = _segment_presenter(bank, segment, size)
    frames, _ = presenter.render_sequence(keypoints)
    pose = np.stack([draw_pose_map(k, (size, size), style=pose_style) for k in keypoints])
    return frames, pose, presenter.reference(bank.infos[segment.stream].framing)


def warped_segment_references(bank: MotionBank, segment: VideoSegment, size: int) -> np.ndarray:
    """The segment's reference warped to each of its frames' keypoints, uint8 ``[N, S, S, 3]`` (the input of a
    ``warped_reference`` teacher)."""
    presenter, keypoints = _segment_presenter(bank, segment, size)
    framing = bank.infos[segment.stream].framing
    reference, reference_keypoints = presenter.reference(framing), presenter.reference_keypoints(framing)
    return np.stack([warp_reference(reference, reference_keypoints, k) for k in keypoints])


@torch.no_grad()
def teacher_segment(teacher: Teacher, autoencoder: Autoencoder, pose: np.ndarray, reference: np.ndarray, steps: int,
                    frames_per_clip: int, device: torch.device, seed: int = EVAL_SEED,
                    warped: np.ndarray | None = None) -> np.ndarray:
    """The teacher's rendering of a whole stream (overlapping clips fused at every step): uint8 ``[N, S, S, 3]``
    (``warped``: :func:`warped_segment_references`, for a ``warped_reference`` teacher)."""
    config = teacher.config
    noise = torch.randn((1, len(pose), config.latent_channels, config.latent_size, config.latent_size),
                        generator=torch.Generator().manual_seed(seed)).to(device)
    with _autocast(device):
        reference_latent = autoencoder.encode(rgb_from_uint8(torch.from_numpy(reference)[None].to(device))).float()
        warped_latent = None
        if warped is not None:
            warped_latent = torch.cat([autoencoder.encode(rgb_from_uint8(chunk.to(device))).float()
                                       for chunk in torch.from_numpy(warped).split(16)])[None]
        latent = euler_sample(teacher, torch.from_numpy(pose)[None].to(device), reference_latent, noise, steps,
                              window=frames_per_clip, warped=warped_latent)
        rgb = torch.cat([autoencoder.decode(chunk).float() for chunk in latent[0].split(16)])
    return rgb_to_uint8(rgb).cpu().numpy()


def _speech_audio(name: str, samples: int) -> tuple[np.ndarray, int, str]:
    """The first ``samples`` (at the engine rate) of held-out speech ``name``, zero-padded: (audio, rate, note)."""
    clips = {c.name: c for c in speech_clips("heldout")}
    if name not in clips:
        return np.zeros(samples, np.float32), 48_000, f"silent: speech {name!r} is not on this machine"
    blocks = read_blocks(clips[name])
    audio = np.concatenate([b.samples for b in blocks])[:samples]
    return np.pad(audio, (0, samples - len(audio))).astype(np.float32), blocks[0].sample_rate, f"speech {name}"


def write_video(path: Path, bank: MotionBank, segments: list[VideoSegment], outputs: list[np.ndarray],
                label: str, *, pose_style: PoseMapStyle) -> dict[str, object]:
    """Write ``path`` (MP4): reference | pose map (as the teacher saw it) | truth | teacher (``outputs``, one array
    per segment) with the segments' speech. Needs PyAV. Returns what was written (frames, seconds, bytes, audio
    per segment)."""
    from inference.sinks.mp4 import Mp4Sink

    size, fps = outputs[0].shape[1], bank.fps
    header = _label_strip(["reference", "pose map", "truth (renderer)", label], size)
    sink = Mp4Sink(path, crf=20)
    rate = 48_000
    sink.open((4 * size, size + _LABEL_HEIGHT), fps, rate)
    index, audio_notes = 0, []
    try:
        for segment, teacher_frames in zip(segments, outputs, strict=True):
            truth, pose, reference = render_segment(bank, segment, size, pose_style=pose_style)
            first_sample = int(round(index * rate / fps))
            samples = int(round((index + len(truth)) * rate / fps)) - first_sample
            audio, audio_rate, note = _speech_audio(segment.speech, samples)
            if audio_rate != rate:
                raise ValueError(f"speech comes at {audio_rate} Hz, expected the engine rate {rate} Hz")
            audio_notes.append(note)
            sink.write_audio(AudioBlock(samples=audio, sample_rate=rate, start=first_sample))
            for t in range(len(truth)):
                panel = np.concatenate([reference, pose[t], truth[t], teacher_frames[t]], axis=1)
                sink.write_video(VideoFrame(rgb=np.concatenate([header, panel], axis=0), index=index, fps=fps))
                index += 1
    except BaseException:
        sink.abort()
        raise
    sink.close()
    return {"file": path.name, "frames": index, "seconds": index / fps, "bytes": path.stat().st_size,
            "audio": audio_notes, "segments": [asdict(s) for s in segments]}


def write_video_archive(path: Path, segments: list[VideoSegment], outputs: list[np.ndarray], fps: float,
                        label: str, *, pose_style: PoseMapStyle) -> dict[str, object]:
    """Write the teacher's frames as JPEG (quality 95) with what they show, for :func:`video_from_archive`."""
    encoded = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
               for frames in outputs for f in frames]
    offsets = np.cumsum([0] + [len(e) for e in encoded]).astype(np.int64)
    meta = {"format": "podium-teacher-video/1", "fps": fps, "label": label, "segments": [asdict(s) for s in segments],
            "pose_style": asdict(pose_style)}
    with open(path, "wb") as f:
        np.savez(f, jpeg=np.concatenate(encoded), offsets=offsets, meta=np.array(json.dumps(meta)))
    return {"file": path.name, "frames": len(encoded), "bytes": path.stat().st_size,
            "segments": meta["segments"], "note": "no PyAV or speech here: make the MP4 with "
            "`python -m training.teacher_eval video` where both are"}


def video_from_archive(archive: Path, bank: MotionBank, out: Path | None = None) -> dict[str, object]:
    """Turn a :func:`write_video_archive` file into the MP4 of :func:`write_video` (next to it by default).

    Raises:
        InputFileError: not such an archive, or one made from another held-out bank.
    """
    fix = "Give the sample_video.npz that training.train_teacher or training.teacher_eval wrote"
    try:
        with np.load(archive, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            jpeg, offsets = data["jpeg"], data["offsets"]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise InputFileError(archive, f"not a readable teacher video archive ({exc})", fix) from exc
    if meta.get("format") != "podium-teacher-video/1":
        raise InputFileError(archive, f"unknown format {meta.get('format')!r}", fix)
    segments = [VideoSegment(**s) for s in meta["segments"]]
    for s in segments:
        if s.stream >= len(bank) or bank.infos[s.stream].speech != s.speech or len(bank.streams[s.stream]) < s.frames:
            raise InputFileError(archive, f"stream {s.stream} ({s.speech}) is not in this held-out bank",
                                 "Give the held-out motion bank the run was evaluated with")
    try:  # archives before session 9 have none: they were drawn in the DWPose style
        pose_style = PoseMapStyle(**meta.get("pose_style", {}))
    except TypeError as exc:
        raise InputFileError(archive, f"unknown pose-map style {meta.get('pose_style')!r}", fix) from exc
    frames = [cv2.cvtColor(cv2.imdecode(jpeg[a:b], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
              for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    outputs, start = [], 0
    for s in segments:
        outputs.append(np.stack(frames[start:start + s.frames]))
        start += s.frames
    return write_video(out or archive.with_name(VIDEO_FILE), bank, segments, outputs, meta["label"],
                       pose_style=pose_style)


def can_write_video(segments: list[VideoSegment]) -> bool:
    """Whether this machine has PyAV and every segment's speech (else the archive is written)."""
    if importlib.util.find_spec("av") is None:
        return False
    available = {c.name for c in speech_clips("heldout")}
    return all(s.speech in available for s in segments)


def write_evaluation(out: Path, teacher: Teacher, autoencoder: Autoencoder, bank: MotionBank, settings: EvalSettings,
                     device: torch.device, on_clips: Callable[[int], None] | None = None) -> dict[str, object]:
    """Evaluate (``on_clips`` as in :func:`evaluate`), write ``samples.png``, ``closeups.png`` and the video (MP4,
    or its archive) into ``out``; returns the figures."""
    out.mkdir(parents=True, exist_ok=True)
    figures, sheet, closeups = evaluate(teacher, autoencoder, bank, settings, device, on_clips)
    save_png(out / "samples.png", sheet, max_bytes=PNG_LIMIT)
    save_png(out / CLOSEUPS_FILE, closeups, max_bytes=PNG_LIMIT)
    figures["sheet"] = {"file": "samples.png", "bytes": (out / "samples.png").stat().st_size}
    figures["closeups"] = {"file": CLOSEUPS_FILE, "bytes": (out / CLOSEUPS_FILE).stat().st_size}
    if settings.video_segments > 0:
        try:
            figures["video"] = _write_sample_video(out, teacher, autoencoder, bank, settings, device)
        except Exception as exc:  # noqa: BLE001 - the figures and the sheet must still come back
            figures["video"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"the sample video failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    return figures


def _write_sample_video(out: Path, teacher: Teacher, autoencoder: Autoencoder, bank: MotionBank,
                        settings: EvalSettings, device: torch.device) -> dict[str, object]:
    segments = video_segments(bank, settings.video_segments)
    steps = settings.steps[0]
    outputs = []
    for segment in segments:
        _, pose, reference = render_segment(bank, segment, teacher.config.size,
                                            pose_style=teacher.config.pose_style)
        warped = (warped_segment_references(bank, segment, teacher.config.size)
                  if teacher.config.warped_reference else None)
        outputs.append(teacher_segment(teacher, autoencoder, pose, reference, steps, settings.frames, device,
                                       warped=warped))
    label = f"teacher ({steps} steps)"
    if can_write_video(segments):
        return write_video(out / VIDEO_FILE, bank, segments, outputs, label,
                           pose_style=teacher.config.pose_style)
    return write_video_archive(out / VIDEO_ARCHIVE, segments, outputs, bank.fps, label,
                               pose_style=teacher.config.pose_style)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.teacher_eval", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score a teacher checkpoint on held-out clips; write the sheet and video")
    ev.add_argument("--teacher", type=Path, required=True, help="teacher_ema checkpoint (a part, or FOLDER/NAME)")
    ev.add_argument("--autoencoder", type=Path, required=True, help="the autoencoder_weights it was trained with")
    ev.add_argument("--heldout-bank", type=Path, required=True)
    ev.add_argument("--out", type=Path, required=True)
    ev.add_argument("--clips", type=int, default=EvalSettings.clips)
    ev.add_argument("--frames", type=int, help="frames per clip (default: the teacher's clip length)")
    ev.add_argument("--steps", default="25,1", help="Euler step counts, comma-separated (the first makes the video)")
    ev.add_argument("--guidance", default="", help="pose guidance scales also scored at the first step count, "
                    "comma-separated (e.g. 2; for teachers trained with --pose-dropout)")
    ev.add_argument("--video-segments", type=int, default=EvalSettings.video_segments)
    ev.add_argument("--workers", type=int, default=0)
    vid = sub.add_parser("video", help="make sample.mp4 (with the held-out speech) from a sample_video.npz")
    vid.add_argument("archive", type=Path)
    vid.add_argument("--heldout-bank", type=Path, required=True)
    vid.add_argument("--out", type=Path, help="the MP4 (default: sample.mp4 next to the archive)")
    args = parser.parse_args(argv)
    try:
        bank = MotionBank.load(args.heldout_bank)
        if args.command == "video":
            print(json.dumps(video_from_archive(args.archive, bank, args.out), indent=2))
            return 0
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        teacher, checkpoint = load_teacher(args.teacher, device)
        autoencoder, ae_checkpoint = load_autoencoder(args.autoencoder, device)
        check_latent_space(checkpoint.meta, ae_checkpoint, "teacher")
        steps = tuple(int(s) for s in args.steps.split(",") if s.strip())
        settings = EvalSettings(clips=args.clips, frames=args.frames or teacher.config.chunk_frames, steps=steps,
                                guidance=parse_guidance(args.guidance), workers=args.workers,
                                video_segments=args.video_segments)
        from tqdm import tqdm  # the CLI's bar only: training runs on the GPU machine log instead

        with tqdm(total=settings.clips, unit="clip", desc="evaluating", file=sys.stderr) as bar:
            figures = write_evaluation(args.out, teacher, autoencoder, bank, settings, device, bar.update)
    except (PodiumError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    (args.out / "eval.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


def parse_guidance(text: str) -> tuple[float, ...]:
    """``"2,3"`` → ``(2.0, 3.0)``.

    Raises:
        ValueError: something that is not a positive number.
    """
    scales = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            scale = float(part)
        except ValueError:
            raise ValueError(f"a guidance scale must be a number, got {part!r}") from None
        if not scale > 0:
            raise ValueError(f"a guidance scale must be above 0, got {scale:g}")
        scales.append(scale)
    return tuple(scales)


if __name__ == "__main__":
    raise SystemExit(main())
