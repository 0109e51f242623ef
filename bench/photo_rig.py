"""Photo rig: frames per second at 512x512 per stage, lip sync measured on the rendered video, background drift.

Usage: python main.py bench photo_rig [--portrait PATH] [--size N] [--framing F] [--warp W] [--docs]
       python main.py bench photo_rig --speed-only [--warps cpu,cuda] [--frames N]

The bundled demo speech drives the motion stage; the photo rig renders every frame. Then:

* speed: per-frame time of each stage (keypoints → controls, fields, inversion, backward map, remap,
  eyelids, compositing, mouth interior) and frames per second, on this machine's CPU;
* lip sync, measured on the rendered frames by mediapipe's FaceLandmarker (the model comes from
  installer/fetch_face_landmarker.sh; without it the legacy face mesh is used): the lips' gap from its
  landmarks and its ``jawOpen`` blendshape, each against the mouth opening expected from pocketsphinx's
  forced alignment of the real speech (bench/speech_alignment.py): correlation r, timing offset (median
  over the clips; positive = the video is late), how closed the mouth is in silence, and how closely the
  rendered mouth follows the jaw control the renderer read from the keypoints;
* background drift: mean absolute change of the background pixels (well away from the person) over the
  whole video, in 8-bit levels.

``--warp`` says where the per-frame warp runs (auto, cpu, cuda; auto keeps the faster). ``--speed-only`` skips the
speech (it needs neither the motion stage's speech tools, PyAV nor mediapipe when the portrait's fit is cached):
a scripted motion (speaking jaw, F/V tucks, blinks, head and shoulder motion) is rendered with each warp in
``--warps``, one after the other in the same run, and their frame times are compared.

``--docs`` also writes docs/images/photo_rig_sheet.png (face close-ups on telling phones of the aligned
speech) and docs/images/photo_rig_demo.mp4 (the first two clips, with their audio).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.common import format_table, summarize, write_results
from bench.speech_alignment import Phone, align_demo, demo_clips, openness_track, silence_track
from inference.motion.factory import create_motion
from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.motion.style import MotionStyle
from inference.paths import REPO_ROOT, default_portrait, demo_audio
from inference.render.photo_rig import PhotoRigRenderer
from inference.render.photo_rig import topology as topo
from inference.render.photo_rig.controls import KeypointReader
from inference.render.photo_rig.renderer import WARP_DEVICES
from inference.sources.audio_file import AudioFileSource
from inference.sources.portrait import load_portrait
from inference.types import AudioBlock, KeypointFrame, VideoFrame

FACE_LANDMARKER = REPO_ROOT / "build" / "models" / "face_landmarker.task"
DOCS_DIR = REPO_ROOT / "docs" / "images"
#: Lags searched for the timing offset, in frames either way.
MAX_LAG_FRAMES = 8


@dataclass
class DemoRun:
    """The demo speech rendered by the photo rig."""

    blocks: list[AudioBlock]
    keypoints: list[KeypointFrame]
    frames: list[VideoFrame]
    stage_ms: dict[str, list[float]]
    renderer: PhotoRigRenderer
    sample_rate: int


def render_demo(portrait: np.ndarray, size: int, framing: str, warp: str = "auto", fps: float = 25.0) -> DemoRun:
    """Run the demo speech through the motion stage and the photo rig, timing every stage of every frame."""
    source = AudioFileSource(demo_audio())
    blocks = []
    while (block := source.read()) is not None:
        blocks.append(block)
    source.close()
    style = MotionStyle(framing="half-body" if framing == "half-body" else "head-and-shoulders")
    motion = create_motion(style, source.sample_rate, fps)
    keypoints: list[KeypointFrame] = []
    stage_ms: dict[str, list[float]] = {"motion": []}
    for block in blocks:
        t0 = time.perf_counter()
        motion.accept_audio(block)
        ready = motion.pop_frames()
        if ready:
            stage_ms["motion"] += [(time.perf_counter() - t0) * 1000 / len(ready)] * len(ready)
        keypoints += ready
    keypoints += motion.finish()
    renderer = PhotoRigRenderer((size, size), framing=framing, warp=warp)
    renderer.set_reference(portrait)
    frames = render_timed(renderer, keypoints, stage_ms)
    return DemoRun(blocks, keypoints, frames, stage_ms, renderer, source.sample_rate)


def render_timed(renderer: PhotoRigRenderer, keypoints: list[KeypointFrame],
                 stage_ms: dict[str, list[float]]) -> list[VideoFrame]:
    """Render every keypoint frame, adding each stage's milliseconds to ``stage_ms``."""
    frames: list[VideoFrame] = []
    for kp in keypoints:
        t0 = time.perf_counter()
        frames += renderer.render([kp])
        total = (time.perf_counter() - t0) * 1000
        stage_ms.setdefault("render (total)", []).append(total)
        stage_ms.setdefault("keypoints → controls", []).append(renderer.last_timings["controls"])
        for name, seconds in renderer.warper.timings.items():
            stage_ms.setdefault(f"warp: {name}", []).append(seconds * 1000)
        stage_ms.setdefault("mouth interior", []).append(renderer.last_timings["mouth"])
    return frames


def scripted_keypoints(frames: int, framing: str, fps: float = 25.0) -> list[KeypointFrame]:
    """A speaking presenter without speech: the jaw at syllable rate, an F/V tuck now and then, a blink every
    2.4 s, and slow head and shoulder motion (the motion rig's controls)."""
    out = []
    for i in range(frames):
        t = i / fps
        controls = RigControls(
            jaw_open=0.45 * max(0.0, math.sin(2 * math.pi * 2.7 * t)), lip_tuck=float(i % 37 < 4),
            blink=float(i % 60 < 4), head_yaw=0.15 * math.sin(0.7 * t), head_pitch=0.08 * math.sin(1.1 * t),
            head_roll=0.05 * math.sin(0.5 * t), shoulder_lift=0.03 * math.sin(0.9 * t))
        out.append(KeypointFrame(pose_keypoints(controls, Framing.named(framing)), index=i, fps=fps))
    return out


def speed_only(portrait: np.ndarray, size: int, framing: str, warps: list[str], frames: int) -> int:
    """Frame times of each warp on the scripted motion, in one run (see the module docstring)."""
    keypoints = scripted_keypoints(frames, "half-body" if framing == "half-body" else "head-and-shoulders")
    rows, figures = [], {"size": size, "frames": frames, "warps": {}}
    first: list[VideoFrame] = []
    for warp in warps:
        renderer = PhotoRigRenderer((size, size), framing=framing, warp=warp)
        renderer.set_reference(portrait)
        stage_ms: dict[str, list[float]] = {}
        render_timed(renderer, keypoints[:10], {})  # warm-up
        renderer.reset()
        video = render_timed(renderer, keypoints, stage_ms)
        first = first or video
        diff = np.array([np.abs(a.rgb.astype(np.int16) - b.rgb).mean() for a, b in zip(video, first, strict=True)])
        worst = max(int(np.abs(a.rgb.astype(np.int16) - b.rgb).max()) for a, b in zip(video, first, strict=True))
        total = np.array(stage_ms["render (total)"])
        warp_ms = np.sum([v for k, v in stage_ms.items() if k.startswith("warp: ")], axis=0)
        rows.append([warp, renderer.device, float(np.median(total)), float(np.percentile(total, 95)),
                     float(np.median(warp_ms)), 1000.0 / float(np.median(total)), f"{diff.mean():.3f} / {worst}"])
        figures["warps"][warp] = {"device": renderer.device, "render_ms": summarize(total / 1000.0),
                                  "stages_ms": {n: summarize(np.array(v) / 1000.0) for n, v in stage_ms.items()},
                                  "difference_from_first": {"mean_level": float(diff.mean()), "max_level": worst}}
    table = format_table(["warp", "runs on", "frame median ms", "frame p95 ms", "warp median ms", "fps",
                          f"difference from {warps[0]}: mean / max level"], rows)
    print(f"{frames} scripted frames of {size}x{size}\n\n{table}")
    if len(rows) > 1:
        print(f"\n{rows[0][0]} / {rows[-1][0]} frame time: {rows[0][2] / rows[-1][2]:.2f}x")
    path = write_results("photo-rig-warp", figures, table)
    print(f"\nresults: {path}")
    return 0


def mouth_opening(frames: list[VideoFrame]) -> dict[str, np.ndarray]:
    """Mouth opening of every rendered frame, by measure name (float ``[frames]``, NaN where no face was found).

    With build/models/face_landmarker.task: the inner-lip gap of FaceLandmarker's landmarks (eye distances)
    and its ``jawOpen`` blendshape (0..1); without it, the legacy face mesh's inner-lip gap.
    """
    import mediapipe as mp

    gap = np.full(len(frames), np.nan)
    jaw_open = np.full(len(frames), np.nan)

    def lip_gap(landmarks: np.ndarray, size: tuple[int, int]) -> float:
        pts = landmarks * np.array(size)
        right, left = topo.eye_centres(pts)
        return float(np.linalg.norm(pts[14] - pts[13]) / np.linalg.norm(left - right))

    if FACE_LANDMARKER.exists():
        from mediapipe.tasks.python import BaseOptions, vision

        # IMAGE mode: every frame measured on its own (VIDEO mode's tracking makes the blendshapes lag and jump)
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(FACE_LANDMARKER)), running_mode=vision.RunningMode.IMAGE,
            output_face_blendshapes=True, num_faces=1)
        with vision.FaceLandmarker.create_from_options(options) as landmarker:
            for i, frame in enumerate(frames):
                result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                    data=np.ascontiguousarray(frame.rgb)))
                if result.face_landmarks:
                    gap[i] = lip_gap(np.array([(p.x, p.y) for p in result.face_landmarks[0]]), frame.size)
                    scores = {c.category_name: c.score for c in result.face_blendshapes[0]}
                    jaw_open[i] = scores["jawOpen"]
        return {"lip gap (FaceLandmarker landmarks)": gap, "jawOpen (FaceLandmarker blendshape)": jaw_open}
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True, max_num_faces=1) as mesh:
        for i, frame in enumerate(frames):
            result = mesh.process(frame.rgb)
            if result.multi_face_landmarks:
                gap[i] = lip_gap(np.array([(p.x, p.y) for p in result.multi_face_landmarks[0].landmark]), frame.size)
    return {"lip gap (face mesh)": gap}


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def timing_offset(measured: np.ndarray, expected: np.ndarray, fps: float) -> float:
    """Lag (ms) that best aligns ``measured`` with ``expected``; positive when ``measured`` comes late."""
    m, e = _zscore(measured), _zscore(expected)
    lags = np.arange(-MAX_LAG_FRAMES, MAX_LAG_FRAMES + 1)
    scores = []
    for lag in lags:
        if lag >= 0:
            a, b = m[lag:], e[: len(e) - lag]
        else:
            a, b = m[: len(m) + lag], e[-lag:]
        scores.append(float(np.mean(a * b)))
    k = int(np.argmax(scores))
    frac = 0.0
    if 0 < k < len(scores) - 1:  # parabolic refinement of the peak
        y0, y1, y2 = scores[k - 1], scores[k], scores[k + 1]
        den = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / den if abs(den) > 1e-12 else 0.0
    return (lags[k] + frac) * 1000.0 / fps


def lip_sync(opening: np.ndarray, phones: list[Phone], fps: float) -> dict[str, float]:
    """Correlation, timing offset and silence closure of a measured opening track against aligned speech."""
    n = len(opening)
    expected = openness_track(phones, fps, n)
    valid = np.isfinite(opening)
    x = np.where(valid, opening, np.nanmedian(opening))
    r = float(np.corrcoef(x[valid], expected[valid])[0, 1])
    offsets = []
    for clip in demo_clips():
        a = max(0, int((clip.start - 0.3) * fps))
        b = min(n, int((clip.end + 0.3) * fps))
        offsets.append(timing_offset(x[a:b], expected[a:b], fps))
    silent = silence_track(phones, fps, n) & valid
    open_vowels = (expected >= 0.7) & valid
    rest, wide = float(np.median(x[silent])), float(np.median(x[open_vowels]))
    threshold = rest + 0.25 * (wide - rest)
    return {
        "r": r, "offset_ms": float(np.median(offsets)), "offsets_ms": [round(o, 1) for o in offsets],
        "silence_median": rest, "open_vowel_median": wide,
        "silence_closed_fraction": float(np.mean(x[silent] <= threshold)), "frames_measured": int(valid.sum()),
    }


def background_drift(frames: list[VideoFrame], mask: np.ndarray, margin: float) -> dict[str, float]:
    """Mean absolute change (8-bit levels) of pixels farther than ``margin`` pixels from the person."""
    radius = max(1, int(round(margin)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    background = cv2.dilate((mask > 0.02).astype(np.uint8), kernel) == 0
    first = frames[0].rgb.astype(np.int16)
    drift = [float(np.abs(f.rgb.astype(np.int16) - first)[background].mean()) for f in frames[1:]]
    return {"mean_level": float(np.mean(drift)) if drift else 0.0, "max_level": float(np.max(drift)) if drift else 0.0,
            "background_fraction": float(background.mean())}


#: Phones the contact sheet shows, one tile each (the first long enough instance in the video's span).
SHEET_PHONES = ("SIL", "AA", "M", "OW", "IY", "AE", "F", "UW", "AH", "P")


def write_docs(run: DemoRun, phones: list[Phone], seconds: float) -> tuple[Path, Path]:
    """A contact sheet of face close-ups on telling phones, and the first ``seconds`` as a video with audio."""
    from inference.sinks.mp4 import Mp4Sink

    DOCS_DIR.mkdir(parents=True, exist_ok=True)
    fps = run.keypoints[0].fps
    count = min(len(run.frames), int(seconds * fps))
    face = run.renderer.rig.framed.face[:, :2]
    lo, hi = face.min(axis=0), face.max(axis=0)
    centre, half = (lo + hi) / 2, 0.75 * float((hi - lo).max())
    x0, y0 = (centre - half).astype(int)
    x1, y1 = (centre + half).astype(int)
    tiles = []
    for name in SHEET_PHONES:
        found = next((p for p in phones if p.name == name and p.end - p.start >= 0.06 and p.end < count / fps), None)
        if found is None:
            continue
        i = min(count - 1, int((found.start + found.end) / 2 * fps))
        crop = run.frames[i].rgb[max(0, y0):y1, max(0, x0):x1]
        tile = cv2.resize(crop, (160, 160), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, f"{name}  {i / fps:.2f} s", (5, 153), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % 5:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[k:k + 5]) for k in range(0, len(tiles), 5)])
    sheet_path = DOCS_DIR / "photo_rig_sheet.png"
    cv2.imwrite(str(sheet_path), sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    video_path = DOCS_DIR / "photo_rig_demo.mp4"
    sink = Mp4Sink(video_path, crf=26, preset="slow", audio_bitrate=64_000)
    sink.open(run.renderer.size, fps, run.sample_rate)
    limit = int(seconds * run.sample_rate)
    for block in run.blocks:
        if block.start < limit:
            sink.write_audio(AudioBlock(block.samples[: max(0, limit - block.start)], block.sample_rate, block.start))
    for frame in run.frames[:count]:
        sink.write_video(frame)
    sink.close()
    return sheet_path, video_path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench photo_rig", description=__doc__.splitlines()[0])
    parser.add_argument("--portrait", type=Path, default=default_portrait())
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--framing", default="auto", choices=["auto", "head-and-shoulders", "half-body"])
    parser.add_argument("--warp", default="auto", choices=list(WARP_DEVICES), help="where the warp runs")
    parser.add_argument("--docs", action="store_true", help="also write the contact sheet and demo video")
    parser.add_argument("--speed-only", action="store_true", help="time each of --warps on scripted motion")
    parser.add_argument("--warps", default="cpu,cuda", help="comma-separated warps for --speed-only")
    parser.add_argument("--frames", type=int, default=300, help="scripted frames for --speed-only")
    args = parser.parse_args(argv)

    portrait = load_portrait(args.portrait)
    if args.speed_only:
        warps = [w.strip() for w in args.warps.split(",") if w.strip()]
        bad = [w for w in warps if w not in WARP_DEVICES]
        if bad or not warps:
            parser.error(f"--warps takes {', '.join(WARP_DEVICES)}, got {args.warps!r}")
        return speed_only(portrait, args.size, args.framing, warps, args.frames)
    run = render_demo(portrait, args.size, args.framing, args.warp)
    fps = run.keypoints[0].fps
    render_ms = run.stage_ms["render (total)"]
    rows = [[name, float(np.median(v)), float(np.percentile(v, 95))] for name, v in run.stage_ms.items()]
    speed = format_table(["stage (per frame)", "median ms", "p95 ms"], rows)
    fps_median = 1000.0 / float(np.median(render_ms))
    print(f"{len(run.frames)} frames of {args.size}x{args.size}, framing {run.renderer.rig.framed.framing}, "
          f"portrait ready in {run.renderer.rig.seconds:.2f} s\n")
    print(speed)
    print(f"\nphoto rig: {fps_median:.1f} frames/s (median), {1000.0 / np.percentile(render_ms, 95):.1f} at the 95th "
          "percentile")

    phones = align_demo()
    openings = mouth_opening(run.frames)
    controls_jaw = _jaw_controls(run.keypoints, args.size)
    framed = run.renderer.rig.framed
    drift = background_drift(run.frames, framed.mask, margin=0.5 * framed.eye_distance)
    sync_rows, syncs = [], {}
    for measure, opening in openings.items():
        sync = lip_sync(opening, phones, fps)
        transfer = float(np.corrcoef(np.nan_to_num(opening, nan=np.nanmedian(opening)), controls_jaw)[0, 1])
        syncs[measure] = {**sync, "transfer_r": transfer}
        sync_rows += [
            [f"{measure}: r against the aligned speech's mouth opening", sync["r"], "≥ 0.6"],
            [f"{measure}: timing offset, median of the clips (ms, + = video late)", sync["offset_ms"], "±40"],
            [f"{measure}: silent frames with the mouth closed", sync["silence_closed_fraction"], "→ 1"],
            [f"{measure}: median in silence / in open vowels", f"{sync['silence_median']:.3f} / "
                                                             f"{sync['open_vowel_median']:.3f}", ""],
            [f"{measure}: r against the jaw control (the renderer alone)", transfer, ""],
        ]
    quality = format_table(
        ["measure", "value", "target"],
        [*sync_rows, ["background drift, mean over frames (8-bit levels)", drift["mean_level"], "< 1"],
         ["background drift, worst frame (8-bit levels)", drift["max_level"], ""]],
    )
    print("\n" + quality)
    for measure, sync in syncs.items():
        print(f"{measure}: per-clip offsets (ms) {sync['offsets_ms']}")
    figures = {
        "size": args.size, "frames": len(run.frames), "framing": framed.framing, "portrait": args.portrait.name,
        "fps_median": fps_median, "stages_ms": {n: summarize(np.array(v) / 1000.0) for n, v in run.stage_ms.items()},
        "portrait_ready_s": run.renderer.rig.seconds, "lip_sync": syncs, "background_drift": drift,
    }
    path = write_results("photo-rig", figures, speed + "\n\n" + quality)
    print(f"\nresults: {path}")
    if args.docs:
        sheet, video = write_docs(run, phones, seconds=11.0)
        print(f"docs: {sheet} ({sheet.stat().st_size // 1024} KB), {video} ({video.stat().st_size // 1024} KB)")
    return 0


def _jaw_controls(keypoints: list[KeypointFrame], size: int) -> np.ndarray:
    """The jaw control the renderer read from each keypoint frame (what it was asked to show)."""
    reader = KeypointReader((size, size))
    return np.array([reader.read(k.keypoints, 1.0 / k.fps).jaw for k in keypoints])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
