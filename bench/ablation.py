"""The paper's Table 2 on our data: teacher → + global attention → + local attention → + DMD → + region loss.

Usage:
    main.py bench ablation prepare [--bank out/motion_heldout.npz] [--out out/ablation_eval.npz] [--identities 2]
    main.py bench ablation run --eval out/ablation_eval.npz --autoencoder AE [--teacher T] [--teacher-global G]
        [--teacher-local L] [--dmd PACK] [--region PACK] [--teacher-steps 25] [--device cuda|cpu] [--out DIR]
    main.py bench ablation finish DIR [--eval out/ablation_eval.npz]

``prepare`` (needs pocketsphinx) makes the evaluation set: the held-out speech (the last demo sentence, card
005) through the motion stage (the held-out motion bank's offline streams), worn by held-out identities,
with the speech's audio and its forced phone alignment (:mod:`bench.speech_alignment`).

``run`` renders every segment with every row given, in one process, through ONNX Runtime (the CUDA EP on a
GPU machine, the CPU EP elsewhere): the teacher rows are teacher checkpoints exported to ONNX for the run
(many Euler steps over overlapping clips fused at every step, :mod:`training.distillation.teacher_onnx`;
dense, or with the sparse mask they were fine-tuned with), the student rows are model packs streamed by the
runtime's own engine (:class:`inference.render.student.engine.StudentEngine`). Columns, against the
synthetic renderer's ground truth: frames per second (rendering only, after a warm-up), PSNR, SSIM, mean
absolute error (0..255) of the mouth and of the hands, temporal flicker (:class:`training.teacher_eval.Scores`),
and lip sync: the inner-lip gap that mediapipe's face mesh measures on each rendered frame (the face cropped
at its native size from where the keypoints put it, upscaled 4×; on the ground-truth frames this gap follows
the keypoints' own with r = 0.75–0.96) correlated with the mouth opening the aligned phones call for, with
its timing offset. The ground truth's own lip-sync score is the measure's ceiling.

Written into ``--out``: ``ablation.json`` (every figure), ``sheet.png`` (contact sheet: each row at the widest
mouth, the highest hand and a silent frame, with face close-ups), the side-by-side video of all rows
(``side_by_side.mp4`` with the speech where PyAV is; ``side_by_side_<segment>.avi``, MJPEG without sound,
elsewhere)
and, where mediapipe is missing (the GPU machine), ``face_crops.npz``: ``finish`` then scores the lip sync and
makes the MP4 on a machine that has both. Results also go to bench/results via ``write_results``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from bench.common import format_table, gpu_kernel_seconds, machine, write_results
from inference import keypoints as kp

EVAL_FORMAT = "podium-ablation-eval/1"
FACE_CROP = 64  # pixels a side of a stored face crop (about the face's native size at 256 px, half body)
MEASURE_SIZE = 256  # the crop is upscaled to this for the face mesh
IDENTITY_OFFSET = 20_000  # held-out identities of the ablation (the teacher's video uses 10 000+)
ROW_OPTIONS = (("teacher", "teacher ({steps} steps)", "dense"), ("teacher_global", "+ global attention", "global"),
               ("teacher_local", "+ local attention", "local"), ("dmd", "+ DMD ({student_steps} steps)", None),
               ("region", "+ region loss", None))
TRUTH = "ground truth (renderer)"


# --------------------------------------------------------------------------------------------------
# The evaluation set
# --------------------------------------------------------------------------------------------------

@dataclass
class Segment:
    """One held-out speech stream worn by one held-out identity.

    Attributes:
        speech: the speech clip's name; identity_seed: who wears it; framing: the stream's framing.
        keypoints: the motion stage's keypoints, float32 ``[N, 134, 3]`` (before the identity's proportions).
        audio: the speech, float32 mono at 48 kHz, exactly ``N`` frames long.
        phones: the aligned phones: names and ``[start, end]`` seconds from the segment's first frame.
    """

    speech: str
    identity_seed: int
    framing: str
    keypoints: np.ndarray
    audio: np.ndarray
    phone_names: np.ndarray
    phone_times: np.ndarray

    def phones(self) -> list:  # list[bench.speech_alignment.Phone]
        from bench.speech_alignment import Phone

        return [Phone(str(n), float(a), float(b)) for n, (a, b) in zip(self.phone_names, self.phone_times,
                                                                       strict=True)]


def save_eval_set(path: Path, segments: list[Segment], fps: float) -> Path:
    """Writes the segments as one ``.npz`` (atomically)."""
    arrays: dict[str, np.ndarray] = {}
    for i, s in enumerate(segments):
        arrays |= {f"s{i}_keypoints": s.keypoints.astype(np.float32), f"s{i}_audio": s.audio.astype(np.float32),
                   f"s{i}_phone_names": np.asarray(s.phone_names, dtype=str),
                   f"s{i}_phone_times": np.asarray(s.phone_times, dtype=np.float64).reshape(-1, 2)}
    meta = {"format": EVAL_FORMAT, "fps": fps,
            "segments": [{"speech": s.speech, "identity_seed": s.identity_seed, "framing": s.framing} for s in segments]}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    partial.replace(path)
    return path


def load_eval_set(path: Path) -> tuple[list[Segment], float]:
    """Reads :func:`save_eval_set`'s file.

    Raises:
        InputFileError: missing or not an evaluation set.
    """
    from inference.errors import InputFileError

    fix = "Make it with `main.py bench ablation prepare`"
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != EVAL_FORMAT:
                raise InputFileError(path, f"unknown evaluation-set format {meta.get('format')!r}", fix)
            segments = [Segment(speech=m["speech"], identity_seed=int(m["identity_seed"]), framing=m["framing"],
                                keypoints=data[f"s{i}_keypoints"], audio=data[f"s{i}_audio"],
                                phone_names=data[f"s{i}_phone_names"], phone_times=data[f"s{i}_phone_times"])
                        for i, m in enumerate(meta["segments"])]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputFileError(path, f"is not a readable ablation evaluation set ({exc})", fix) from exc
    return segments, float(meta["fps"])


def prepare(bank_path: Path, identities: int, framing: str) -> tuple[list[Segment], float]:
    """The held-out speech streams of a held-out motion bank, aligned, worn by ``identities`` held-out people."""
    from training.data.clips import identity_seed
    from training.data.motion_bank import MotionBank
    from training.data.speech import read_blocks, speech_clips

    bank = MotionBank.load(bank_path)
    clips = {c.name: c for c in speech_clips("heldout")}
    segments = []
    for speech in dict.fromkeys(info.speech for info in bank.infos):
        if speech not in clips:
            print(f"skipping {speech}: its audio is not on this machine")
            continue
        order = sorted((i for i, info in enumerate(bank.infos) if info.speech == speech),
                       key=lambda i: (bank.infos[i].framing != framing, bank.infos[i].mode != "offline",
                                      bank.infos[i].style != "default", i))
        stream = bank.streams[order[0]]
        samples = int(round(len(stream) * 48_000 / bank.fps))
        audio = np.concatenate([b.samples for b in read_blocks(clips[speech])])[:samples]
        audio = np.pad(audio, (0, samples - len(audio))).astype(np.float32)
        phones = _align(clips[speech])
        for k in range(identities):
            segments.append(Segment(speech=speech, identity_seed=identity_seed("heldout", IDENTITY_OFFSET + k),
                                    framing=bank.infos[order[0]].framing, keypoints=stream, audio=audio,
                                    phone_names=np.array([p.name for p in phones], dtype=str),
                                    phone_times=np.array([[p.start, p.end] for p in phones]).reshape(-1, 2)))
    if not segments:
        raise ValueError(f"no held-out speech of {bank_path} is on this machine; give a held-out bank made here "
                         "(`python -m training.data.motion_bank OUT.npz --split heldout`)")
    return segments, bank.fps


def _align(clip) -> list:  # noqa: ANN001 - a training.data.speech.SpeechClip
    """Phones of a held-out speech clip, in seconds from its start: the demo's sentence from the demo's
    alignment, a ``cards`` recording aligned to its transcript (``cards.transcription`` beside it)."""
    from bench.speech_alignment import ALIGN_RATE, Phone, align_demo, align_phones
    from inference.sources.audio_file import AudioFileSource

    if clip.name.startswith("demo"):
        return [Phone(p.name, p.start - clip.start, p.end - clip.start) for p in align_demo()
                if p.end > clip.start and (clip.end is None or p.start < clip.end)]
    lines = (clip.path.parent / "cards.transcription").read_text(encoding="utf-8").splitlines()
    texts = {line.rsplit("(", 1)[1].strip(" )"): line.split("</s>")[0].replace("<s>", "").strip()
             for line in lines if "(" in line}
    source = AudioFileSource(clip.path, sample_rate=ALIGN_RATE)
    try:
        samples = np.concatenate([block.samples for block in iter(source.read, None)])
    finally:
        source.close()
    return align_phones(samples.astype(np.float32), texts[clip.path.stem])


# --------------------------------------------------------------------------------------------------
# Ground truth and rows
# --------------------------------------------------------------------------------------------------

@dataclass
class Truth:
    """A segment as the synthetic renderer draws it: frames, region masks, keypoints, reference portrait."""

    frames: np.ndarray  # uint8 [N, S, S, 3]
    masks: np.ndarray  # uint8 [N, S, S]
    keypoints: np.ndarray  # float32 [N, 134, 3], with the identity's proportions
    reference: np.ndarray  # uint8 [S, S, 3]


def ground_truth(segment: Segment, size: int) -> Truth:
    from training.synthetic.identity import sample_identity
    from training.synthetic.presenter import SyntheticPresenter

    presenter = SyntheticPresenter(sample_identity(segment.identity_seed), size)
    keypoints = presenter.personalise(segment.keypoints)
    frames, masks = presenter.render_sequence(keypoints)
    return Truth(frames, masks, keypoints, presenter.reference(segment.framing))


class TeacherRow:
    """A teacher checkpoint, exported to ONNX for this run and sampled many-step (rows of one checkpoint share
    its graphs: the sparse masks are inputs)."""

    def __init__(self, checkpoint: Path, mask: str, autoencoder_path: Path, folder: Path, provider: str,
                 steps: int, overlap: int, guidance: float = 1.0) -> None:
        from training.distillation.clip_attention import spec_for
        from training.distillation.teacher_onnx import OnnxTeacher, export_teacher
        from training.models.autoencoder import load_autoencoder
        from training.models.teacher import load_teacher

        teacher, record = load_teacher(checkpoint, to_distil=True)
        attention = record.meta.get("attention", {})
        if mask != "dense" and attention.get("mask") not in (None, mask):
            print(f"note: {checkpoint} was fine-tuned with the {attention['mask']} mask, run here with {mask}")
        spec = spec_for(teacher.config, mask, causal=bool(attention.get("causal", False)))
        precision = "float16" if provider == "cuda" else "float32"
        window = teacher.config.chunk_frames
        exported = folder / record.sha256[:16]  # one teacher's graphs, shared by its rows
        listing = exported / "graphs.json"
        known = json.loads(listing.read_text(encoding="utf-8")) if listing.exists() else {}
        graphs = export_teacher(teacher.transformer, load_autoencoder(autoencoder_path)[0], spec, exported,
                                window=window, precision=precision, exported=known)
        listing.write_text(json.dumps(graphs.files), encoding="utf-8")
        self.renderer = OnnxTeacher(graphs, provider, steps=steps, overlap=overlap, guidance=guidance)
        self.size = teacher.config.size
        self.window = window

    def render(self, reference: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, float]:
        """Frames of a stream and the seconds rendering took (the reference excluded)."""
        self.renderer.set_reference(reference)
        start = time.perf_counter()
        frames = self.renderer.render(keypoints)
        return frames, time.perf_counter() - start

    def warm_up(self, reference: np.ndarray, keypoints: np.ndarray) -> None:
        self.render(reference, keypoints[:self.window])


class StudentRow:
    """A model pack streamed by the runtime's engine, chunk by chunk (the sparse student and its custom op)."""

    def __init__(self, pack: Path, provider: str) -> None:
        from inference.packs import load_pack
        from inference.render.student.engine import StudentEngine

        self.engine = StudentEngine(load_pack(pack), provider=provider, attention="sparse")
        self.size = self.engine.manifest.resolution[0]
        self.steps = self.engine.manifest.steps

    def render(self, reference: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, float]:
        """Frames of a stream and the seconds rendering took: offline, the next chunk prepared while one runs."""
        self.engine.set_reference(reference)
        chunk = self.engine.frames
        windows = [keypoints[start:start + chunk] for start in range(0, len(keypoints), chunk)]
        padded = (np.concatenate([w, np.repeat(w[-1:], chunk - len(w), axis=0)]) for w in windows)
        start = time.perf_counter()
        images = [frames for frames, _ in self.engine.render_stream(padded)]
        seconds = time.perf_counter() - start
        return np.concatenate([i[:len(w)] for i, w in zip(images, windows, strict=True)]), seconds

    def warm_up(self, reference: np.ndarray, keypoints: np.ndarray) -> None:
        self.render(reference, keypoints[:2 * self.engine.frames])


# --------------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------------

def face_crops(frames: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The face of every frame, where its keypoints put it, as uint8 ``[N, 64, 64, 3]`` (area-resampled)."""
    out = np.empty((len(frames), FACE_CROP, FACE_CROP, 3), np.uint8)
    for i, (frame, points) in enumerate(zip(frames, keypoints, strict=True)):
        face = points[kp.FACE, :2] * frame.shape[1]
        low, high = face.min(axis=0), face.max(axis=0)
        centre, half = (low + high) / 2, 0.9 * float((high - low).max())
        scale = FACE_CROP / (2 * half)
        warp = np.array([[scale, 0, FACE_CROP / 2 - centre[0] * scale], [0, scale, FACE_CROP / 2 - centre[1] * scale]])
        out[i] = cv2.warpAffine(frame, warp, (FACE_CROP, FACE_CROP), flags=cv2.INTER_AREA,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def lip_gaps(crops: np.ndarray) -> np.ndarray:
    """The inner-lip gap (in eye distances) mediapipe's face mesh measures on each face crop; NaN without a face."""
    import mediapipe as mp

    from inference.render.photo_rig import topology

    gaps = np.full(len(crops), np.nan)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        for i, crop in enumerate(crops):
            image = cv2.resize(crop, (MEASURE_SIZE, MEASURE_SIZE), interpolation=cv2.INTER_CUBIC)
            result = mesh.process(image)
            if result.multi_face_landmarks:
                points = np.array([(p.x, p.y) for p in result.multi_face_landmarks[0].landmark]) * MEASURE_SIZE
                right, left = topology.eye_centres(points)
                gaps[i] = float(np.linalg.norm(points[14] - points[13]) / np.linalg.norm(left - right))
    return gaps


def lip_sync(gaps: list[np.ndarray], segments: list[Segment], fps: float) -> dict[str, float]:
    """The measured lip gaps of every segment against the mouth opening their aligned phones call for: the
    correlation r over all frames, the median timing offset (ms, + = video late) and the share of frames
    with a face found."""
    from bench.photo_rig import timing_offset
    from bench.speech_alignment import openness_track

    expected = [openness_track(s.phones(), fps, len(g)) for s, g in zip(segments, gaps, strict=True)]
    measured, wanted = np.concatenate(gaps), np.concatenate(expected)
    found = np.isfinite(measured)
    if found.sum() < 3 or np.std(measured[found]) == 0 or np.std(wanted[found]) == 0:
        return {"lip_r": float("nan"), "lip_offset_ms": float("nan"), "faces_found": float(found.mean())}
    offsets = []
    for g, e in zip(gaps, expected, strict=True):
        filled = np.where(np.isfinite(g), g, np.nanmedian(g)) if np.isfinite(g).any() else None
        if filled is not None and len(filled) > 16 and np.std(filled) > 0 and np.std(e) > 0:
            offsets.append(timing_offset(filled, e, fps))
    return {"lip_r": float(np.corrcoef(measured[found], wanted[found])[0, 1]),
            "lip_offset_ms": float(np.median(offsets)) if offsets else float("nan"),
            "faces_found": float(found.mean())}


def can_measure_lips() -> bool:
    """Whether mediapipe (the face mesh of the lip-sync measure) is here (not on the GPU machine)."""
    import importlib.util

    return importlib.util.find_spec("mediapipe") is not None


def has_pyav() -> bool:
    """Whether PyAV (MP4 with sound) is here (not on the GPU machine)."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------

@dataclass
class RowResult:
    label: str
    source: str
    frames: list[np.ndarray] = field(default_factory=list)  # per segment, uint8 [N, S, S, 3]
    seconds: float = 0.0
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return sum(len(f) for f in self.frames) / self.seconds if self.seconds else float("nan")


def _rows(args: argparse.Namespace, folder: Path, provider: str) -> list[tuple[str, str, object]]:
    """(label, source, renderer) of every row given on the command line, in Table 2's order."""
    if not args.teacher_guidance > 0:
        raise ValueError(f"--teacher-guidance must be above 0, got {args.teacher_guidance:g}")
    rows = []
    for option, label, mask in ROW_OPTIONS:
        path = getattr(args, option)
        if path is None:
            continue
        if mask is not None:
            if args.autoencoder is None:
                raise ValueError("teacher rows need --autoencoder (the teacher's autoencoder_weights)")
            renderer = TeacherRow(path, mask, args.autoencoder, folder, provider, args.teacher_steps,
                                  args.teacher_overlap, args.teacher_guidance)
            guidance = f", guidance {args.teacher_guidance:g}" if args.teacher_guidance != 1 else ""
            rows.append((label.format(steps=f"{args.teacher_steps}{guidance}"), str(path), renderer))
        else:
            renderer = StudentRow(path, provider)
            rows.append((label.format(student_steps=renderer.steps), str(path), renderer))
    if not rows:
        raise ValueError("give at least one row: --teacher, --teacher-global, --teacher-local, --dmd or --region")
    sizes = {renderer.size for _, _, renderer in rows}
    if len(sizes) > 1:
        raise ValueError(f"the rows render at different sizes ({sorted(sizes)}); give rows of one size")
    return rows


def _scores(frames: list[np.ndarray], truths: list[Truth]) -> dict[str, float]:
    import torch

    from training.models.autoencoder import rgb_from_uint8
    from training.teacher_eval import Scores

    scores = Scores()
    for ours, truth in zip(frames, truths, strict=True):
        scores.add(rgb_from_uint8(torch.from_numpy(ours))[None], rgb_from_uint8(torch.from_numpy(truth.frames))[None],
                   torch.from_numpy(truth.masks)[None])
    result = scores.result()
    return {k: result[k] for k in ("psnr_db", "ssim", "mae_mouth", "mae_hands", "mae_frame", "flicker")}


def run(args: argparse.Namespace) -> int:
    from inference.gpu import cuda_status

    provider = args.device or ("cuda" if cuda_status()[0] else "cpu")
    segments, fps = load_eval_set(args.eval)
    out = args.out
    with tempfile.TemporaryDirectory(prefix="podium-ablation-") as tmp:
        rows = _rows(args, Path(tmp), provider)
        size = rows[0][2].size
        truths = [ground_truth(s, size) for s in segments]
        results = []
        for label, source, renderer in rows:
            renderer.warm_up(truths[0].reference, truths[0].keypoints)
            result = RowResult(label, source)
            for truth in truths:
                frames, seconds = renderer.render(truth.reference, truth.keypoints)
                result.frames.append(frames)
                result.seconds += seconds
            result.figures = {"fps": result.fps, **_scores(result.frames, truths)}
            if provider == "cuda":  # GPU kernel time of one segment (CUPTI): what the GPU alone would allow
                first = truths[0]
                kernels = gpu_kernel_seconds(partial(renderer.render, first.reference, first.keypoints))
                if kernels is not None:
                    result.figures["gpu_ms_per_frame"] = 1000.0 * kernels["all"] / len(first.keypoints)
            print(f"{label}: {result.figures}", flush=True)
            results.append(result)
    teacher_fps = results[0].fps if results[0].label.startswith("teacher") else float("nan")
    for result in results:
        result.figures["speedup"] = result.fps / teacher_fps
    crops = {TRUTH: [face_crops(t.frames, t.keypoints) for t in truths]}
    crops |= {r.label: [face_crops(f, t.keypoints) for f, t in zip(r.frames, truths, strict=True)] for r in results}
    report = {"device": provider, "machine": machine(), "fps": fps, "teacher_steps": args.teacher_steps,
              "teacher_guidance": args.teacher_guidance,
              "segments": [{"speech": s.speech, "identity_seed": s.identity_seed, "frames": len(s.keypoints)}
                           for s in segments],
              "eval": _short(str(args.eval)),
              "rows": {r.label: {"source": _short(r.source), **r.figures} for r in results}}
    out.mkdir(parents=True, exist_ok=True)  # only now: a run that fails leaves no folder behind
    write_sheet(out / "sheet.png", truths, results, segments, crops, fps)
    write_side_by_side(out, truths, results, segments, fps)
    if can_measure_lips():
        score_lips(report, crops, segments, fps)
    else:
        np.savez_compressed(out / "face_crops.npz", labels=np.array(list(crops), dtype=str),
                            **{f"c{i}_{j}": c for i, per in enumerate(crops.values()) for j, c in enumerate(per)})
        report["lip_sync"] = "pending: no mediapipe here; run `main.py bench ablation finish` where it is"
    (out / "ablation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return publish(report, args.name)


def score_lips(report: dict, crops: dict[str, list[np.ndarray]], segments: list[Segment], fps: float) -> None:
    """Adds the lip-sync figures of every row, and of the ground truth (``report["truth"]``), to ``report``."""
    for label, per_segment in crops.items():
        figures = lip_sync([lip_gaps(c) for c in per_segment], segments, fps)
        if label == TRUTH:
            report["truth"] = figures
        else:
            report["rows"][label].update(figures)
    report.pop("lip_sync", None)


def publish(report: dict, name: str) -> int:
    """Prints the table and writes it with :func:`bench.common.write_results`."""
    headers = ["row", "fps", "× teacher", "GPU ms/frame", "PSNR dB", "SSIM", "mouth MAE", "hand MAE", "flicker",
               "lip-sync r", "lip offset ms"]
    keys = ["fps", "speedup", "gpu_ms_per_frame", "psnr_db", "ssim", "mae_mouth", "mae_hands", "flicker", "lip_r",
            "lip_offset_ms"]
    missing = {"gpu_ms_per_frame": "n/a"}  # older runs, CPU runs
    table_rows = [[label, *(figures.get(k, missing.get(k, "pending")) for k in keys)]
                  for label, figures in report["rows"].items()]
    if "truth" in report:
        table_rows.append([TRUTH, *[""] * (len(keys) - 2), report["truth"]["lip_r"], report["truth"]["lip_offset_ms"]])
    table = format_table(headers, table_rows)
    rendered_on = report["machine"]["gpu"] or report["machine"]["cpu"]
    context = (f"Rendered through ONNX Runtime ({report['device'].upper()} EP) on {rendered_on}, every row in one run; "
               f"{sum(s['frames'] for s in report['segments'])} frames of held-out speech on held-out identities; "
               "students stream offline (the next chunk prepared while one runs); GPU ms/frame: CUPTI kernel time "
               "of one segment; errors on the 0..255 scale; lip-sync r: mediapipe's inner-lip gap on the rendered frames against "
               "the aligned phones' mouth opening (the ground truth's r is the measure's ceiling).")
    print(context + "\n\n" + table)
    path = write_results(name, report, context + "\n\n" + table)
    print(f"results: {path}")
    return 0


def finish(args: argparse.Namespace) -> int:
    """Lip sync from a run's face crops, and the MP4 with the speech, on a machine with mediapipe and PyAV.

    Raises:
        InputFileError: the folder is not a run whose lip sync is pending, or ``--eval`` is not the run's set.
        ConfigError: mediapipe is missing here.
    """
    from inference.errors import ConfigError, InputFileError

    if not can_measure_lips():
        raise ConfigError("finish measures lip sync with mediapipe, which is not installed here; run it on a machine "
                          "that has it (`pip install mediapipe`)")
    for name in ("ablation.json", "face_crops.npz"):
        if not (args.run / name).is_file():
            raise InputFileError(args.run / name, "is missing", "Give the --out folder of a `main.py bench ablation "
                                 "run` made where mediapipe was missing (a run made with it has its lip sync already)")
    report = json.loads((args.run / "ablation.json").read_text(encoding="utf-8"))
    segments, fps = load_eval_set(args.eval)
    used = [(s["speech"], s["identity_seed"], s["frames"]) for s in report["segments"]]
    if used != [(s.speech, s.identity_seed, len(s.keypoints)) for s in segments]:
        raise InputFileError(args.eval, "is not the evaluation set this run rendered",
                             f"Give the run's own --eval ({report['eval']})")
    with np.load(args.run / "face_crops.npz", allow_pickle=False) as data:
        labels = [str(x) for x in data["labels"]]
        crops = {label: [data[f"c{i}_{j}"] for j in range(len(segments))] for i, label in enumerate(labels)}
    score_lips(report, crops, segments, fps)
    frames = read_side_by_side(args.run)
    if frames:
        _write_mp4(args.run / "side_by_side.mp4", frames, segments, fps)
    (args.run / "ablation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rendered_on = report["machine"]["gpu"] or "cpu"
    return publish(report, f"{args.name}-{_slug(rendered_on)}")


def _short(path: str) -> str:
    """A file's last two path parts: results name what was measured, never a machine's folders."""
    return "/".join(Path(path).parts[-2:])


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


# --------------------------------------------------------------------------------------------------
# Pictures for people
# --------------------------------------------------------------------------------------------------

LABEL_HEIGHT = 22


def _labelled(tile: np.ndarray, text: str) -> np.ndarray:
    strip = np.zeros((LABEL_HEIGHT, tile.shape[1], 3), np.uint8)
    cv2.putText(strip, text[:40], (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def side_by_side_frames(truths: list[Truth], results: list[RowResult]) -> list[np.ndarray]:
    """Every frame of every segment: ground truth, then each row, side by side, labelled."""
    out = []
    for s, truth in enumerate(truths):
        for i in range(len(truth.frames)):
            tiles = [_labelled(truth.frames[i], "ground truth")]
            tiles += [_labelled(r.frames[s][i], r.label) for r in results]
            out.append(np.concatenate(tiles, axis=1))
    return out


def write_side_by_side(out: Path, truths: list[Truth], results: list[RowResult], segments: list[Segment],
                       fps: float) -> list[Path]:
    """``side_by_side.mp4`` with the speech (PyAV), else one ``side_by_side_<segment>.avi`` per segment (MJPEG
    through OpenCV, no sound; each small enough to come back from the GPU machine)."""
    frames = side_by_side_frames(truths, results)
    if has_pyav():
        return [_write_mp4(out / "side_by_side.mp4", frames, segments, fps)]
    paths, start = [], 0
    for index, truth in enumerate(truths):
        path = out / f"side_by_side_{index}.avi"
        height, width = frames[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 90)
        for frame in frames[start:start + len(truth.frames)]:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        start += len(truth.frames)
        paths.append(path)
    return paths


def read_side_by_side(folder: Path) -> list[np.ndarray]:
    """The frames of a run's ``side_by_side_<segment>.avi`` files, in segment order (RGB)."""
    frames = []
    for path in sorted(folder.glob("side_by_side_*.avi"), key=lambda p: int(p.stem.rsplit("_", 1)[1])):
        capture = cv2.VideoCapture(str(path))
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        capture.release()
    return frames


def _write_mp4(path: Path, frames: list[np.ndarray], segments: list[Segment], fps: float) -> Path:
    from inference.sinks.mp4 import Mp4Sink
    from inference.types import AudioBlock, VideoFrame

    rate = 48_000
    sink = Mp4Sink(path, crf=23, name="ablation")
    height, width = frames[0].shape[:2]
    sink.open((width - width % 2, height - height % 2), fps, rate)
    try:
        audio = np.concatenate([s.audio for s in segments])
        for start in range(0, len(audio), 960):
            sink.write_audio(AudioBlock(audio[start:start + 960], rate, start))
        for i, frame in enumerate(frames):
            sink.write_video(VideoFrame(rgb=np.ascontiguousarray(frame[:height - height % 2, :width - width % 2]),
                                        index=i, fps=fps))
    except BaseException:
        sink.abort()
        raise
    sink.close()
    return path


def _pick_moments(truth: Truth, segment: Segment, fps: float) -> list[tuple[str, int]]:
    """The frames the sheet shows: the widest mouth, the highest hand, a silent frame."""
    from bench.speech_alignment import silence_track
    from inference.motion.readout import mouth_opening

    points = truth.keypoints
    wrists = np.minimum(points[:, kp.L_WRIST, 1], points[:, kp.R_WRIST, 1])
    silent = np.flatnonzero(silence_track(segment.phones(), fps, len(points)))
    moments = [("widest mouth", int(np.argmax(mouth_opening(points)))), ("highest hand", int(np.argmin(wrists)))]
    if silent.size:
        moments.append(("silence", int(silent[len(silent) // 2])))
    return moments


def write_sheet(path: Path, truths: list[Truth], results: list[RowResult], segments: list[Segment],
                crops: dict[str, list[np.ndarray]], fps: float, tile: int = 192) -> Path:
    """One row per model (ground truth first): at each moment of the first segment, the frame and the face."""
    moments = _pick_moments(truths[0], segments[0], fps)
    sources = [(TRUTH, truths[0].frames)] + [(r.label, r.frames[0]) for r in results]
    rows = []
    for label, frames in sources:
        tiles = []
        for number, (moment, index) in enumerate(moments):
            frame = cv2.resize(frames[index], (tile, tile), interpolation=cv2.INTER_AREA)
            face = cv2.resize(crops[label][0][index], (tile, tile), interpolation=cv2.INTER_CUBIC)
            tiles += [_labelled(frame, label if number == 0 else moment), _labelled(face, f"{moment}, frame {index}")]
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    from inference.errors import PodiumError

    parser = argparse.ArgumentParser(prog="main.py bench ablation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="the evaluation set: held-out speech, aligned, on held-out identities")
    prep.add_argument("--bank", type=Path, default=Path("out/motion_heldout.npz"), help="the held-out motion bank")
    prep.add_argument("--out", type=Path, default=Path("out/ablation_eval.npz"))
    prep.add_argument("--identities", type=int, default=2, help="held-out identities wearing each speech stream")
    prep.add_argument("--framing", default="half-body", help="preferred framing (half-body shows the hands)")
    go = sub.add_parser("run", help="render and score every row in one run")
    go.add_argument("--eval", type=Path, default=Path("out/ablation_eval.npz"))
    go.add_argument("--autoencoder", type=Path, help="the teachers' autoencoder_weights (teacher rows)")
    go.add_argument("--teacher", type=Path, help="the teacher checkpoint (many-step, dense attention)")
    go.add_argument("--teacher-global", type=Path, help="the teacher fine-tuned with the global mask")
    go.add_argument("--teacher-local", type=Path, help="the teacher fine-tuned with the global + local mask")
    go.add_argument("--dmd", type=Path, help="the pack of the student distilled with DMD alone")
    go.add_argument("--region", type=Path, help="the pack of the student distilled with DMD and the region loss")
    go.add_argument("--teacher-steps", type=int, default=25)
    go.add_argument("--teacher-guidance", type=float, default=1.0, help="classifier-free guidance over the pose of "
                    "every teacher row (1: none; 2 doubles the teacher's forwards, as MimicMotion samples; for "
                    "teachers trained with pose dropout)")
    go.add_argument("--teacher-overlap", type=int, default=4, help="frames shared by neighbouring teacher clips")
    go.add_argument("--device", choices=["cuda", "cpu"], help="default: CUDA when ONNX Runtime has it")
    go.add_argument("--out", type=Path, default=Path("bench/results/ablation"), help="folder for the pictures")
    go.add_argument("--name", default="ablation", help="results name")
    fin = sub.add_parser("finish", help="lip sync and the MP4 of a run made where mediapipe and PyAV were missing")
    fin.add_argument("run", type=Path, help="the run's --out folder")
    fin.add_argument("--eval", type=Path, default=Path("out/ablation_eval.npz"), help="the evaluation set the run used")
    fin.add_argument("--name", default="ablation", help="results name")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            segments, fps = prepare(args.bank, args.identities, args.framing)
            save_eval_set(args.out, segments, fps)
            print(f"{args.out}: {len(segments)} segments, {sum(len(s.keypoints) for s in segments)} frames")
            return 0
        if args.command == "run":
            return run(args)
        return finish(args)
    except (PodiumError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

