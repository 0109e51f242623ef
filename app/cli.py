"""Podium's command line: `main.py [render|devices|doctor|bench]`.

With no command, the window opens. On a machine without a display, Podium says
so and renders the bundled demo offline instead, to show the pipeline works.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from pathlib import Path

from inference import paths
from inference.errors import InputFileError, PipelineCancelled, PodiumError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

DESCRIPTION = """\
Podium: speak into your microphone and a portrait talks and gestures in real time,
in a window and on a virtual webcam; or render talking videos offline.

With no command, the window opens."""

EPILOG = """\
examples:
  main.py                                   open the window
  main.py render --audio talk.wav -o talk.mp4
  main.py render --audio talk.mp3 --portrait me.jpg --preset lively -o me.mp4
  main.py doctor                            what works on this machine, and fixes
  main.py devices                           microphones, speakers, virtual cameras
  main.py bench --list                      available benchmarks"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="console log level (default: warning; the log file always gets info)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    render = sub.add_parser("render", help="make a talking video from an audio file and a portrait",
                            description="Render a talking video offline: audio file + portrait → MP4 (H.264 + AAC).")
    render.add_argument("--audio", required=True, type=Path, help="speech audio: WAV, FLAC, MP3, OGG, M4A...")
    render.add_argument("--portrait", type=Path, default=None,
                        help="portrait photo (default: the one chosen in the window, else the renderer's own "
                             "presenter if it has one, else the bundled astronaut portrait)")
    render.add_argument("-o", "--output", required=True, type=Path, help="output .mp4 file")
    render.add_argument("--renderer", default=None, help="auto (default), student, photo-rig or pose-map")
    render.add_argument("--size", type=int, default=None, help="output width and height in pixels (default 512)")
    render.add_argument("--fps", type=float, default=None, help="frames per second (default 25)")
    render.add_argument("--preset", choices=["calm", "lively", "lecturer"], help="motion style preset")
    render.add_argument("--framing", choices=["head-and-shoulders", "half-body"], help="how much of the body shows")
    render.add_argument("--seed", type=int, help="random seed of the motion (same seed, same video)")
    render.add_argument("--transcript", help="the words spoken (text, or @file.txt): aligned for the most accurate lips")
    render.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")

    sub.add_parser("devices", help="list microphones, speakers and virtual cameras")
    sub.add_parser("doctor", help="report what this machine can do, with a fix for each problem")
    bench = sub.add_parser("bench", help="run benchmarks (results go to bench/results/)", add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="NAME [options], or --list")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":
        args.bench_args = [*extra, *args.bench_args]  # argparse leaves a leading option such as --list in extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from app.logs import setup_logging

    setup_logging(args.log_level)
    try:
        if args.command == "render":
            return _cmd_render(args)
        if args.command == "devices":
            return _cmd_devices()
        if args.command == "doctor":
            return _cmd_doctor()
        if args.command == "bench":
            return _cmd_bench(args.bench_args)
        return _cmd_gui()
    except PipelineCancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    except PodiumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _load_settings():  # noqa: ANN202
    from inference.settings import load_settings

    settings, warnings = load_settings()
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return settings


def _cmd_render(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from inference.motion.style import apply_preset
    from inference.offline import RenderJob

    settings = _load_settings()
    style = settings.style
    if args.preset:
        style = apply_preset(style, args.preset)
    if args.framing:
        style = replace(style, framing=args.framing)
    if args.seed is not None:
        style = replace(style, seed=args.seed)
    transcript = args.transcript
    if transcript and transcript.startswith("@"):
        transcript_file = Path(transcript[1:])
        try:
            transcript = transcript_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError(transcript_file, f"cannot read the transcript ({exc})",
                                 "Give a UTF-8 text file with the words spoken") from exc
    job = RenderJob(
        audio=args.audio,
        output=args.output,
        portrait=args.portrait or settings.render.portrait_path,
        renderer=args.renderer or settings.render.renderer,
        size=args.size or settings.render.size,
        fps=args.fps or settings.render.fps,
        style=style.validated(),
        transcript=transcript,
    )
    return render_with_progress(job, show_progress=not args.no_progress)


def render_with_progress(job, show_progress: bool = True) -> int:  # noqa: ANN001 - RenderJob, imported lazily
    """Run an offline render with a progress bar on stderr; Ctrl-C cancels and removes the partial file."""
    from tqdm import tqdm

    from inference.offline import OfflineRender

    bar = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="frame", desc="rendering", disable=not show_progress, file=sys.stderr,
                       dynamic_ncols=True)
        bar.update(done - bar.n)

    render = OfflineRender(job, on_progress=progress)
    try:
        result = render.run()
    except KeyboardInterrupt:
        render.cancel()
        raise PipelineCancelled("Render cancelled; the partial file was removed.") from None
    finally:
        if bar is not None:
            bar.close()
    speed = result.audio_seconds / result.wall_seconds if result.wall_seconds else 0.0
    print(f"wrote {job.output} ({result.frames} frames, {result.audio_seconds:.1f} s of audio, "
          f"rendered at {speed:.1f}x real time with {render.renderer.name})")
    return EXIT_OK


def _cmd_devices() -> int:
    from inference import devices

    problem = devices.audio_backend_problem()
    print("Microphones:")
    if problem:
        print(f"  (unavailable: {problem})")
    mics = devices.list_microphones()
    for d in mics:
        mark = "*" if d.is_default_input else " "
        print(f" {mark}{d.index:3d}  {d.name}  [{d.hostapi}, {d.inputs} ch, {d.default_samplerate:.0f} Hz]")
    if not mics and not problem:
        print("  none found (offline rendering still works)")
    print("Speakers / audio outputs:")
    outs = devices.list_speakers()
    for d in outs:
        mark = "*" if d.is_default_output else " "
        print(f" {mark}{d.index:3d}  {d.name}  [{d.hostapi}, {d.outputs} ch]")
    if not outs and not problem:
        print("  none found")
    print("Virtual cameras:")
    cams = devices.list_virtual_cameras()
    for c in cams:
        print(f"    {c.device}  {c.name}")
    cam_problem = devices.virtual_camera_problem()
    if not cams:
        print(f"  none found{': ' + cam_problem if cam_problem else ''}")
    return EXIT_OK


def _cmd_doctor() -> int:
    from app.doctor import format_report, run_checks

    checks = run_checks()
    print(format_report(checks))
    return EXIT_ERROR if any(c.status == "fail" for c in checks) else EXIT_OK


def _bench_names() -> list[str]:
    import bench

    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name not in {"common"}
                  and not m.name.startswith("_"))


def _cmd_bench(bench_args: list[str]) -> int:
    names = _bench_names()
    if not bench_args or bench_args[0] in ("--list", "-h", "--help"):
        print("usage: main.py bench NAME [options]\n\nbenchmarks:")
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
            print(f"  {name:<16} {summary}")
        return EXIT_OK if bench_args else EXIT_USAGE
    name, rest = bench_args[0], bench_args[1:]
    if name not in names:
        print(f"error: no benchmark named {name!r}; run `main.py bench --list`", file=sys.stderr)
        return EXIT_USAGE
    return int(importlib.import_module(f"bench.{name}").main(rest) or 0)


def has_display() -> bool:
    """Whether a window can be shown (always true off Linux; Qt's offscreen platform counts)."""
    if not sys.platform.startswith("linux"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").strip():
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _cmd_gui() -> int:
    settings = _load_settings()
    if not has_display():
        return _headless_demo(settings)
    from app.gui import run_gui

    return run_gui(settings)


def _headless_demo(settings) -> int:  # noqa: ANN001 - Settings
    from inference.offline import RenderJob

    out = paths.data_dir() / "renders" / "demo.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    print("No display found (DISPLAY and WAYLAND_DISPLAY are unset), so the window cannot open here.\n"
          "Run Podium from a desktop session for the live window, or `xvfb-run .venv/bin/python main.py`.\n"
          f"Meanwhile, rendering the bundled demo offline to {out}:")
    job = RenderJob(audio=paths.demo_audio(), output=out, renderer=settings.render.renderer,
                    size=settings.render.size, fps=settings.render.fps, style=settings.style)
    return render_with_progress(job)
