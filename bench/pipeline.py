"""Offline pipeline throughput: audio file → motion → renderer → MP4, per stage.

Usage: python main.py bench pipeline [--renderer NAME] [--size N] [--seconds S]

Prints frames per second of each stage alone and of the whole threaded pipeline,
measured in one run on the bundled demo speech, and writes them to bench/results/.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import format_table, summarize, write_results
from inference.motion.factory import create_motion
from inference.motion.style import MotionStyle
from inference.paths import default_portrait, demo_audio
from inference.pipeline import Pipeline
from inference.render.factory import create_renderer
from inference.sinks.mp4 import Mp4Sink
from inference.sources.audio_file import AudioFileSource
from inference.sources.portrait import load_portrait


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--renderer", default="auto")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--fps", type=float, default=25.0)
    args = parser.parse_args(argv)

    portrait = load_portrait(default_portrait())
    source = AudioFileSource(demo_audio())
    blocks = []
    while (b := source.read()) is not None:
        blocks.append(b)
    audio_seconds = blocks[-1].end / source.sample_rate

    motion = create_motion(MotionStyle(), source.sample_rate, args.fps)
    t0 = time.perf_counter()
    frames = []
    for b in blocks:
        motion.accept_audio(b)
        frames += motion.pop_frames()
    frames += motion.finish()
    motion_s = time.perf_counter() - t0

    renderer = create_renderer(args.renderer, (args.size, args.size))
    renderer.set_reference(portrait)
    per_chunk = []
    video = []
    for i in range(0, len(frames), renderer.chunk_size):
        t = time.perf_counter()
        video += renderer.render(frames[i : i + renderer.chunk_size])
        per_chunk.append(time.perf_counter() - t)
    render_s = sum(per_chunk)

    with tempfile.TemporaryDirectory() as tmp:
        sink = Mp4Sink(Path(tmp) / "bench.mp4")
        sink.open(renderer.size, args.fps, source.sample_rate)
        t = time.perf_counter()
        for b in blocks:
            sink.write_audio(b)
        for f in video:
            sink.write_video(f)
        sink.close()
        encode_s = time.perf_counter() - t

        renderer.reset()
        pipe = Pipeline(AudioFileSource(demo_audio()), create_motion(MotionStyle(), source.sample_rate, args.fps),
                        renderer, [Mp4Sink(Path(tmp) / "pipe.mp4")], mode="offline")
        result = pipe.run()
    n = len(frames)
    rows = [
        ["motion", n / motion_s, motion_s / audio_seconds],
        [f"renderer ({renderer.name}, {renderer.device}, {args.size}px)", n / render_s, render_s / audio_seconds],
        ["mp4 encode (x264 + aac)", n / encode_s, encode_s / audio_seconds],
        ["whole pipeline, threaded", result.frames / result.wall_seconds, result.wall_seconds / audio_seconds],
    ]
    table = format_table(["stage", "frames/s", "seconds per audio second"], rows)
    print(f"{n} frames from {audio_seconds:.1f} s of speech\n")
    print(table)
    chunk = summarize(per_chunk)
    print(f"\nrender per chunk: median {chunk['median_ms']:.2f} ms, p95 {chunk['p95_ms']:.2f} ms")
    path = write_results(
        f"pipeline-{renderer.name}",
        {"frames": n, "audio_seconds": audio_seconds, "size": args.size,
         "stages": {r[0]: {"fps": r[1], "rtf": r[2]} for r in rows}, "render_chunk": chunk},
        table,
    )
    print(f"\nresults: {path}")
    return 0
