"""Lip sync and latency of the speech-driven motion stage on real speech.

Usage: python main.py bench motion [--lookahead S] [--no-media] [--no-warm]

Ground truth: the bundled demo speech (five public-domain LibriVox clips with
transcripts, ``assets/audio/demo_speech.{flac,json}``) is force-aligned with
pocketsphinx (:mod:`bench.speech_alignment`), giving a phone for every 10 ms. The live (streaming) path is then
fed the 48 kHz audio in 20 ms blocks, as the engine does, and scored per video
frame (25 fps) at each frame's instant:

* viseme accuracy: the viseme the lips aim for against the aligned phone's viseme,
* openness r: correlation of the mouth opening *measured on the keypoints*
  with the aligned phones' openness,
* timing offset: median signed offset (ms, + = late) of viseme boundaries, each
  aligned boundary matched to the nearest streamed boundary entering the same
  viseme within ±100 ms (measured on a 100 fps run of the same stream),
* closed mouth in silence: share of aligned-silence frames whose inner lips
  are closed on the keypoints,
* latency: from the audio sample a frame shows to the frame leaving the motion
  stage (look-ahead + waiting for the block + compute, with queueing), median
  and 95th percentile, simulated on the measured per-block compute times,
* CPU: process time per second of audio.

"Warm" runs first stream the Debian ``cards`` clips (another speaker) so the
recogniser's cepstral mean is in its steady state, as with an always-on
microphone; "cold" starts from nothing. The offline path (whole utterances)
and the energy-only fallback are scored too, for reference. The bench also
writes a contact sheet and a short pose-map video with audio to docs/images/.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import format_table, summarize, write_results
from bench.speech_alignment import align_demo
from inference.motion.energy import EnergyMotion
from inference.motion.phonemes import SILENCE
from inference.motion.readout import mouth_opening
from inference.motion.speech import DEFAULT_LOOKAHEAD, SpeechMotion
from inference.motion.style import MotionStyle
from inference.motion.visemes import phone_openness, phone_viseme
from inference.paths import ASSETS_DIR, REPO_ROOT
from inference.sources.audio_file import ENGINE_SAMPLE_RATE, AudioFileSource
from inference.types import AudioBlock, KeypointFrame

BLOCK = 960  # 20 ms at 48 kHz
FPS = 25.0
CARDS = Path("/usr/share/pocketsphinx/test/data/cards")
#: Inner-lip gap (face widths) below which the mouth counts as closed.
CLOSED_GAP = 0.025
TARGETS = {"latency_p95_ms": 120.0, "viseme_accuracy": 0.70, "median_offset_ms": 40.0, "closed_in_silence": 0.95,
           "cpu_per_audio_s": 0.20}


@dataclass
class Run:
    """Everything one streamed run produced."""

    frames: list[KeypointFrame]
    visemes: list[str]
    block_seconds: list[float]
    cpu_seconds: float
    audio_seconds: float


def _read_48k(path: Path) -> np.ndarray:
    source = AudioFileSource(path)
    parts = []
    while (block := source.read()) is not None:
        parts.append(block.samples)
    source.close()
    return np.concatenate(parts)


def ground_truth(seconds: float) -> list[str]:
    """A phone per 10 ms hop of the demo speech: the forced alignment of each clip, silence elsewhere."""
    hops = int(seconds * 100)
    labels = [SILENCE] * hops
    for p in align_demo():
        for h in range(max(0, int(round(p.start * 100))), min(int(round(p.end * 100)), hops)):
            labels[h] = p.name
    return labels


def stream(motion: SpeechMotion | EnergyMotion, audio48: np.ndarray, skip_samples: int = 0) -> Run:
    """Feed ``audio48`` in 20 ms blocks; frames before ``skip_samples`` (a warm-up) are dropped."""
    frames: list[KeypointFrame] = []
    times = []
    cpu0 = time.process_time()
    for start in range(0, len(audio48), BLOCK):
        block = AudioBlock(audio48[start : start + BLOCK], ENGINE_SAMPLE_RATE, start)
        t0 = time.perf_counter()
        motion.accept_audio(block)
        out = motion.pop_frames()
        times.append(time.perf_counter() - t0)
        frames += out
    frames += motion.finish()
    cpu = time.process_time() - cpu0
    first = int(round(skip_samples * motion.fps / ENGINE_SAMPLE_RATE))
    trace = getattr(motion, "trace", [])
    visemes = [t.viseme for t in trace][first:] if trace else []
    kept = frames[first:]
    return Run(kept, visemes, times, cpu, len(audio48) / ENGINE_SAMPLE_RATE)


def frame_hops(n: int, fps: float) -> np.ndarray:
    """The 10 ms hop each frame's instant falls in."""
    return ((np.arange(n) + 0.5) / fps * 100).astype(int)


def score(run: Run, gt: list[str], fps: float) -> dict[str, float]:
    hops = np.minimum(frame_hops(len(run.frames), fps), len(gt) - 1)
    gt_phones = [gt[h] for h in hops]
    gt_vis = np.array([phone_viseme(p) for p in gt_phones])
    gt_open = np.array([phone_openness(p) for p in gt_phones])
    opening = mouth_opening(np.stack([f.keypoints for f in run.frames]))
    silent = gt_vis == "sil"
    out = {
        "frames": float(len(run.frames)),
        "openness_r": float(np.corrcoef(opening, gt_open)[0, 1]),
        "closed_in_silence": float(np.mean(opening[silent] < CLOSED_GAP)),
        "open_closed_accuracy": float(np.mean((opening >= CLOSED_GAP * 2) == (gt_open >= 0.35))),
    }
    if run.visemes:
        vis = np.array(run.visemes[: len(gt_vis)])
        out["viseme_accuracy"] = float(np.mean(vis == gt_vis))
        out["viseme_accuracy_speech"] = float(np.mean(vis[~silent] == gt_vis[~silent]))
    return out


def boundary_offsets(hyp: list[str], ref: list[str], reach: int = 10) -> np.ndarray:
    """Signed offsets (hops, + = late) of each reference viseme boundary to the nearest hypothesis boundary that
    enters the same viseme within ``reach`` hops."""
    n = min(len(hyp), len(ref))
    ref_b = [(i, ref[i]) for i in range(1, n) if ref[i] != ref[i - 1]]
    hyp_b: dict[str, list[int]] = {}
    for i in range(1, n):
        if hyp[i] != hyp[i - 1]:
            hyp_b.setdefault(hyp[i], []).append(i)
    offsets = []
    for i, v in ref_b:
        cands = [j - i for j in hyp_b.get(v, []) if abs(j - i) <= reach]
        if cands:
            offsets.append(min(cands, key=abs))
    return np.array(offsets, dtype=float)


def latencies(run: Run, fps: float, lookahead: float) -> np.ndarray:
    """Seconds from the sample each frame shows being captured to the frame leaving the motion stage.

    Block ``b`` arrives at ``(b + 1) * 20 ms``; it is processed when it has arrived and the previous block is done.
    """
    block_s = BLOCK / ENGINE_SAMPLE_RATE
    finish, done = [], 0.0
    for b, compute in enumerate(run.block_seconds):
        start = max((b + 1) * block_s, done)
        done = start + compute
        finish.append(done)
    out = []
    for i in range(len(run.frames)):
        instant = (i + 0.5) / fps
        needed = int(np.ceil((instant + lookahead) * ENGINE_SAMPLE_RATE / BLOCK - 1e-9)) - 1
        if needed < len(finish):
            out.append(finish[max(0, needed)] - instant)
    return np.array(out)


def _warmup_audio() -> np.ndarray | None:
    files = sorted(CARDS.glob("*.wav")) if CARDS.exists() else []
    if not files:
        return None
    audio = np.concatenate([_read_48k(f) for f in files])
    frame = int(ENGINE_SAMPLE_RATE / FPS)
    return np.concatenate([audio, np.zeros((-len(audio)) % frame, dtype=np.float32)])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench motion", description=__doc__.splitlines()[0])
    parser.add_argument("--lookahead", type=float, default=DEFAULT_LOOKAHEAD, help="live look-ahead in seconds")
    parser.add_argument("--no-media", action="store_true", help="skip the contact sheet and video")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm-microphone run")
    args = parser.parse_args(argv)

    meta = json.loads((ASSETS_DIR / "audio" / "demo_speech.json").read_text(encoding="utf-8"))
    audio48 = _read_48k(ASSETS_DIR / "audio" / "demo_speech.flac")
    t0 = time.perf_counter()
    gt = ground_truth(len(audio48) / ENGINE_SAMPLE_RATE)
    print(f"aligned {len(gt) / 100:.1f} s of speech in {time.perf_counter() - t0:.1f} s")

    style = MotionStyle()
    rows, figures = [], {}

    def live(name: str, warm: np.ndarray | None, fps: float = FPS) -> Run:
        motion = SpeechMotion(ENGINE_SAMPLE_RATE, fps, style, lookahead=args.lookahead, record_trace=True)
        audio = audio48 if warm is None else np.concatenate([warm, audio48])
        return stream(motion, audio, 0 if warm is None else len(warm))

    warm = None if args.no_warm else _warmup_audio()
    runs = [("live, cold start", None)] + ([("live, warm microphone", warm)] if warm is not None else [])
    main_run = None
    for name, warm_audio in runs:
        run = live(name, warm_audio)
        s = score(run, gt, FPS)
        fine = live(name, warm_audio, fps=100.0)
        offsets = boundary_offsets(fine.visemes, [phone_viseme(p) for p in gt]) * 10.0
        lat = summarize(latencies(run, FPS, args.lookahead))
        block = summarize(run.block_seconds)
        s.update(median_offset_ms=float(np.median(offsets)) if len(offsets) else float("nan"),
                 median_abs_offset_ms=float(np.median(np.abs(offsets))) if len(offsets) else float("nan"),
                 latency_median_ms=lat["median_ms"], latency_p95_ms=lat["p95_ms"], block_p95_ms=block["p95_ms"],
                 block_max_ms=block["max_ms"], cpu_per_audio_s=run.cpu_seconds / run.audio_seconds)
        figures[name] = s
        rows.append([name, s["viseme_accuracy"], s["viseme_accuracy_speech"], s["openness_r"],
                     s["median_offset_ms"], s["closed_in_silence"], s["latency_median_ms"], s["latency_p95_ms"],
                     s["cpu_per_audio_s"]])
        main_run = run if main_run is None else main_run  # pictures show the cold start

    offline = stream(SpeechMotion(ENGINE_SAMPLE_RATE, FPS, style, mode="offline", record_trace=True), audio48)
    s = score(offline, gt, FPS)
    s["cpu_per_audio_s"] = offline.cpu_seconds / offline.audio_seconds
    figures["offline, whole utterances"] = s
    rows.append(["offline, whole utterances", s["viseme_accuracy"], s["viseme_accuracy_speech"], s["openness_r"],
                 "", s["closed_in_silence"], "", "", s["cpu_per_audio_s"]])
    energy = stream(EnergyMotion(ENGINE_SAMPLE_RATE, FPS, style), audio48)
    s = score(energy, gt, FPS)
    s["cpu_per_audio_s"] = energy.cpu_seconds / energy.audio_seconds
    figures["energy-only fallback"] = s
    rows.append(["energy-only fallback", "", "", s["openness_r"], "", s["closed_in_silence"], "", "",
                 s["cpu_per_audio_s"]])

    headline = figures["live, cold start"]
    checks = {
        "latency_p95_ms": bool(headline["latency_p95_ms"] <= TARGETS["latency_p95_ms"]),
        "viseme_accuracy": bool(headline["viseme_accuracy"] >= TARGETS["viseme_accuracy"]),
        "median_offset_ms": bool(abs(headline["median_offset_ms"]) <= TARGETS["median_offset_ms"]),
        "closed_in_silence": bool(headline["closed_in_silence"] >= TARGETS["closed_in_silence"]),
        "cpu_per_audio_s": bool(headline["cpu_per_audio_s"] < TARGETS["cpu_per_audio_s"]),
    }
    table = format_table(
        ["path", "viseme acc", "viseme acc (speech)", "openness r", "median offset ms", "closed in silence",
         "latency median ms", "latency p95 ms", "CPU s / audio s"], rows)
    table += "\n\nTargets (live, cold start): " + ", ".join(
        f"{k} {'met' if ok else 'MISSED'}" for k, ok in checks.items())
    table += (f"\n\nLook-ahead {args.lookahead * 1000:.0f} ms; {len(gt) / 100:.1f} s of LibriVox speech "
              f"({len(meta['segments'])} clips); frames scored at {FPS:g} fps.")
    print(table)
    figures.update(lookahead_s=args.lookahead, targets=TARGETS, targets_met=checks)
    path = write_results("motion", figures, table)
    print(f"\nresults: {path}")
    if not args.no_media and main_run is not None:
        from bench._motion_media import write_media

        sheet, video = write_media(main_run.frames, audio48, gt, REPO_ROOT / "docs" / "images")
        print(f"contact sheet: {sheet}\nvideo: {video}")
    return 0
