"""The IASA student streaming engine: keypoints in, RGB frames out, through ONNX Runtime (random weights).

Usage: python main.py bench student [--pack DIR | --preset tiny|bundled|paper [--cache-frames M]] [--device cuda|cpu]
           [--attention sparse,dense] [--cuda-graph on,off] [--seconds 60] [--warmup 4] [--profile]
           [--keypoints speech|synthetic] [--out DIR]

For each attention mode (the sparse student with the custom op, and the same model attending densely
to its whole cache), with and without CUDA graphs (``--cuda-graph``; default both on CUDA, off on the
CPU), it streams ``--seconds`` of keypoints (the motion stage on the bundled speech, looped) through one
engine, chunk after chunk, and reports:

* frames per second (steady state, every chunk of the stream) and per-chunk time (median, p95), chunk by
  chunk as in live use; and the offline rate, the same stream through ``render_stream`` (the next chunk's
  host work overlapping the current chunk's GPU work);
* keypoint-in to RGB-out latency when frames arrive live at the pack's fps (simulated from the
  measured chunk times: a chunk starts when its last frame has arrived and the previous chunk is done);
* cost per frame at 1, 10 and 60 s of stream (the cache is bounded: it should stay flat);
* the time split: attention / other layers / decoder / mask building / host (pose maps, uploads) /
  copies (cached frames into the position buffers, new keys and values into slots); attention is GPU
  kernel time from CUPTI (``--profile``, needs torch) on CUDA, node time from ONNX Runtime's profiler on
  the CPU; with ``--profile`` on CUDA also the GPU kernel time of a whole chunk, i.e. the rate the GPU
  alone would allow;
* GPU memory (nvidia-smi, before and after the engine is built) and the model's FLOPs per frame;
* which sessions replayed CUDA graphs (the engine drops them, with a warning, where ONNX Runtime
  refuses), and the fps ratio with / without them.

Without ``--pack`` it exports a random-weight pack of ``--preset`` first (needs the train extra).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import format_table, gpu_kernel_seconds, summarize, write_results
from inference.packs import ModelPack, PackManifest, load_pack

ATTENTION_KERNELS = ("AttentionKernel", "sdpa", "fmha", "flash", "Fmha", "Flash")
WINDOWS_SECONDS = (1, 10, 60)
TOP_KERNELS = 25  # kernels listed in the results, by GPU time


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------

def motion_keypoints(frames: int, fps: float, source: str = "speech") -> np.ndarray:
    """``frames`` keypoint frames, looped back and forth: from the motion stage on the bundled speech
    (``source="speech"``; a synthetic presenter if the motion stage cannot run) or the synthetic presenter."""
    from tests.student.poses import presenter_clip

    clip = None
    if source == "speech":
        try:
            clip = _speech_motion(fps)
        except Exception as exc:  # the benchmark times the renderer; any pose stream will do
            print(f"motion stage unavailable ({exc}); using a synthetic presenter")
    if clip is None:
        clip = presenter_clip(250, fps)
    loop = np.concatenate([clip, clip[::-1]])
    return loop[np.arange(frames) % len(loop)]


def _speech_motion(fps: float) -> np.ndarray:
    from inference.motion.factory import create_motion
    from inference.motion.style import MotionStyle
    from inference.paths import demo_audio
    from inference.sources.audio_file import AudioFileSource

    source = AudioFileSource(demo_audio())
    motion = create_motion(MotionStyle(), source.sample_rate, fps)
    out = []
    while (block := source.read()) is not None:
        motion.accept_audio(block)
        out += motion.pop_frames()
    out += motion.finish()
    return np.stack([f.keypoints for f in out])


def portrait_for(pack: ModelPack) -> np.ndarray:
    """The reference the app would show with none chosen: the pack's own portrait, else the bundled default."""
    from inference.paths import default_portrait
    from inference.render.student.renderer import fit_portrait, pack_portrait
    from inference.sources.portrait import load_portrait

    own = pack_portrait(pack)
    return fit_portrait(own if own is not None else load_portrait(default_portrait()), pack.manifest.resolution)


def random_pack(preset: str, precision: str, out: Path, graphs: tuple[str, ...], cache_frames: int | None = None) -> Path:
    """Exports a random-weight pack of ``preset`` into ``out`` (needs torch), with ``cache_frames`` past frames
    kept (M) instead of the preset's when given."""
    import dataclasses

    from training.export_student import export_all
    from training.models.config import preset as config_of
    from training.models.student import Student
    from training.models.transformer import randomize_
    from training.pack import build_pack

    config = config_of(preset)
    if cache_frames is not None:
        config = dataclasses.replace(config, cache_frames=cache_frames)
    student = randomize_(Student(config), seed=0)
    files = export_all(student, out / "export", (precision,), graphs)
    return build_pack(out / "export", out / "pack", config, files, name=f"random-{preset}", version="0",
                      license="random weights (benchmark only)", training_data="none")


# --------------------------------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------------------------------

def transformer_flops(manifest: PackManifest, kept_keys_per_query: float) -> dict[str, float]:
    """Matmul FLOPs of one transformer forward, per frame: linear layers and attention."""
    model = manifest.model
    tokens = manifest.tokens_per_frame
    linear = 2.0 * tokens * model.depth * (12 * model.width ** 2)  # qkv 3d², proj d², MLP 8d²
    attention = 4.0 * tokens * model.depth * model.width * kept_keys_per_query
    return {"linear": linear, "attention": attention}


# --------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------

@dataclass
class Run:
    attention: str
    cuda_graph: bool  # requested
    graphed: list[str]  # the sessions that replayed CUDA graphs
    chunk_seconds: list[float]
    parts: dict[str, list[float]]
    kept_fraction: float
    keys_per_query: float
    memory_mib: float | None
    attention_gpu_seconds: float | None
    chunk_gpu_seconds: float | None  # every kernel of a chunk (CUPTI)
    offline_seconds: float  # wall time of the stream through render_stream
    kernels: dict[str, object]  # launches a chunk and the costliest kernels (CUPTI), empty without


def gpu_memory_mib() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
        return float(out.stdout.split()[0]) if out.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def stream(pack: ModelPack, provider: str, attention: str, keypoints: np.ndarray, warmup: int,
           profile: bool, cuda_graph: bool = False) -> Run:
    from inference.render.student.engine import StudentEngine

    before = gpu_memory_mib() if provider == "cuda" else None
    options = None
    if profile and provider == "cpu":  # profiles go to the temp folder (read and deleted after the run), never the cwd
        options = {"enable_profiling": True,
                   "profile_file_prefix": str(Path(tempfile.gettempdir()) / "podium-bench-student-profile")}
    engine = StudentEngine(pack, provider=provider, attention=attention, session_options=options,
                           cuda_graph=cuda_graph)
    engine.set_reference(portrait_for(pack))
    frames = engine.frames
    for i in range(warmup):
        engine.render_chunk(keypoints[i * frames:(i + 1) * frames])
    engine.reset()
    chunks = len(keypoints) // frames
    parts: dict[str, list[float]] = {k: [] for k in ("plan", "pose_maps", "upload", "copies", "steps", "decode",
                                                     "refresh")}
    totals, kept, keys = [], [], []
    block = engine.grid.block_size
    for c in range(chunks):
        _, timings = engine.render_chunk(keypoints[c * frames:(c + 1) * frames])
        totals.append(timings.total)
        for key in parts:
            parts[key].append(getattr(timings, key))
        plan = engine.last_plan
        if plan.block_mask is None:
            kept.append(1.0)
            keys.append(float(plan.key_length))
        else:
            kept.append(float(plan.block_mask.mean()))
            keys.append(float(plan.block_mask.sum(axis=1).mean() * block))
    steady = slice(len(kept) // 2, None)  # the cache is full by then
    kept_fraction, keys_per_query = float(np.mean(kept[steady])), float(np.mean(keys[steady]))
    engine.reset()
    start = time.perf_counter()
    for _ in engine.render_stream(keypoints[c * frames:(c + 1) * frames] for c in range(chunks)):
        pass
    offline = time.perf_counter() - start
    after = gpu_memory_mib() if provider == "cuda" else None
    attention_gpu = chunk_gpu = None
    kernels: dict[str, object] = {}
    if profile and provider == "cuda":
        attention_gpu, chunk_gpu, kernels = _cupti_seconds(engine, keypoints[:frames * 4])
    elif profile and provider == "cpu":
        attention_gpu = _ort_profile_attention_seconds(engine, chunks)
    memory = after - before if before is not None and after is not None else None
    graphed = sorted(engine.graphed)  # after the stream: a failed capture drops a session's graphs
    engine.close()  # free the device memory before the next mode is measured
    del engine
    gc.collect()
    return Run(attention, cuda_graph, graphed, totals, parts, kept_fraction, keys_per_query, memory, attention_gpu,
               chunk_gpu, offline, kernels)


def _cupti_seconds(engine, keypoints: np.ndarray) -> tuple[float | None, float | None, dict[str, object]]:  # noqa: ANN001
    """GPU time per chunk of the attention kernels and of all kernels (CUPTI), over a few chunks, and the
    kernels of a chunk: how many ran, and the costliest (name, ms a chunk, launches a chunk)."""
    chunks = len(keypoints) // engine.frames

    def work() -> None:
        for c in range(chunks):
            engine.render_chunk(keypoints[c * engine.frames:(c + 1) * engine.frames])

    seconds = gpu_kernel_seconds(work, ATTENTION_KERNELS, top=TOP_KERNELS)
    if seconds is None:
        return None, None, {}
    kernels = {"launches_per_chunk": seconds["launches"] / chunks,
               "top": [[name, 1000.0 * t / chunks, count / chunks] for name, t, count in seconds["kernels"]]}
    return seconds["matched"] / chunks, seconds["all"] / chunks, kernels


def _ort_profile_attention_seconds(engine, chunks: int) -> float | None:  # noqa: ANN001
    """Attention node time per chunk from ONNX Runtime's profiler (accurate on the CPU EP)."""
    path = engine.student.end_profiling()
    try:
        events = json.loads(Path(path).read_text())
    finally:
        for session in engine.sessions.values():
            if session is not engine.student:
                Path(session.end_profiling()).unlink(missing_ok=True)
        Path(path).unlink(missing_ok=True)
    total = sum(e.get("dur", 0) for e in events if e.get("cat") == "Node"
                and e.get("args", {}).get("op_name") in ("BlockSparseAttention", "MultiHeadAttention"))
    return total * 1e-6 / max(chunks, 1)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------

def live_latency(chunk_seconds: list[float], frames: int, fps: float) -> list[float]:
    """Keypoint-in to RGB-out latency of every frame when frames arrive at ``fps`` and chunks run back to back."""
    latencies, done = [], 0.0
    for c, seconds in enumerate(chunk_seconds):
        arrivals = [(c * frames + f) / fps for f in range(frames)]
        done = max(arrivals[-1], done) + seconds
        latencies += [done - a for a in arrivals]
    return latencies


def per_frame_at(chunk_seconds: list[float], frames: int, fps: float, second: float) -> float:
    """Mean cost per frame (ms) over the second of stream ending at ``second``."""
    last = int(second * fps / frames)
    if last > len(chunk_seconds):
        return float("nan")
    window = chunk_seconds[max(0, last - int(math.ceil(fps / frames))):last]
    return 1000.0 * float(np.mean(window)) / frames if window else float("nan")


def report(run: Run, manifest: PackManifest) -> dict[str, object]:
    frames, fps = manifest.chunk_size, manifest.fps
    chunk = summarize(run.chunk_seconds)
    latency = summarize(live_latency(run.chunk_seconds, frames, fps))
    steps_per_chunk = manifest.steps + 1  # sampling steps + cache refresh
    flops = transformer_flops(manifest, run.keys_per_query)
    parts = {k: 1000.0 * float(np.median(v)) for k, v in run.parts.items()}
    attention_ms = None if run.attention_gpu_seconds is None else 1000.0 * run.attention_gpu_seconds
    other_ms = None if attention_ms is None else parts["steps"] + parts["refresh"] - attention_ms
    return {
        "attention": run.attention,
        "cuda_graph": "on" if run.cuda_graph else "off",
        "graphed_sessions": run.graphed,
        "fps": frames * len(run.chunk_seconds) / sum(run.chunk_seconds),
        "offline_fps": frames * len(run.chunk_seconds) / run.offline_seconds,
        "gpu_ms_per_chunk": None if run.chunk_gpu_seconds is None else 1000.0 * run.chunk_gpu_seconds,
        "gpu_kernels": run.kernels,
        "chunk_median_ms": chunk["median_ms"], "chunk_p95_ms": chunk["p95_ms"],
        "latency_median_ms": latency["median_ms"], "latency_p95_ms": latency["p95_ms"],
        "per_frame_ms_at": {f"{s}s": per_frame_at(run.chunk_seconds, frames, fps, s) for s in WINDOWS_SECONDS},
        "split_ms_per_chunk": {"attention": attention_ms, "other_layers": other_ms, "decoder": parts["decode"],
                               "mask_building": parts["plan"], "host": parts["pose_maps"] + parts["upload"],
                               "copies": parts["copies"],
                               "steps_total": parts["steps"], "refresh_total": parts["refresh"]},
        "kept_block_fraction": run.kept_fraction, "keys_per_query": run.keys_per_query,
        "transformer_gflop_per_frame_per_forward": {k: v / 1e9 for k, v in flops.items()},
        "transformer_gflop_per_frame": sum(flops.values()) * steps_per_chunk / 1e9,
        "gpu_memory_mib": run.memory_mib,
    }


def fps_ratios(results: list[dict[str, object]]) -> list[str]:
    """Sparse / dense fps at each CUDA graph setting, and CUDA graphs on / off fps for each attention mode."""
    fps = {(r["attention"], r["cuda_graph"]): r["fps"] for r in results}
    lines = [f"sparse / dense fps (CUDA graphs {graphs}): {fps['sparse', graphs] / fps['dense', graphs]:.2f}x"
             for graphs in ("on", "off") if ("sparse", graphs) in fps and ("dense", graphs) in fps]
    lines += [f"{attention}: CUDA graphs on / off fps: {fps[attention, 'on'] / fps[attention, 'off']:.2f}x"
              for attention in dict.fromkeys(r["attention"] for r in results)
              if (attention, "on") in fps and (attention, "off") in fps]
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench student", description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, help="a pack to stream (default: export a random one of --preset)")
    parser.add_argument("--preset", default="tiny", help="tiny, bundled (256x256) or paper (512x512)")
    parser.add_argument("--cache-frames", type=int, help="past frames kept (M) of the random pack (default: the "
                        "preset's); dense attention attends to all of them, IASA to the top-K")
    parser.add_argument("--device", default=None, choices=["cuda", "cpu"])
    parser.add_argument("--attention", default="sparse,dense")
    parser.add_argument("--cuda-graph", default=None,
                        help="on, off or on,off: replay the student's and decoder's runs as CUDA graphs "
                             "(default: on,off on CUDA, off on the CPU)")
    parser.add_argument("--cuda-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra CUDA execution provider option for every graph (e.g. prefer_nhwc=1)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=int, default=4, help="chunks run before timing")
    parser.add_argument("--profile", action="store_true", help="attribute time to attention kernels")
    parser.add_argument("--keypoints", default="speech", choices=["speech", "synthetic"],
                        help="the motion stage on the bundled speech, or a synthetic presenter")
    parser.add_argument("--name", default=None, help="results name (default: student-<preset or pack>)")
    parser.add_argument("--out", type=Path, help="also copy the results here")
    args = parser.parse_args(argv)

    from inference.gpu import cuda_status

    device = args.device or ("cuda" if cuda_status()[0] else "cpu")
    modes = tuple(args.attention.split(","))
    graph_settings = tuple((args.cuda_graph or ("on,off" if device == "cuda" else "off")).split(","))
    if not set(graph_settings) <= {"on", "off"}:
        parser.error(f"--cuda-graph takes on, off or on,off, not {args.cuda_graph!r}")
    from inference.render.student import engine as engine_module

    for option in args.cuda_option:
        key, _, value = option.partition("=")
        if not key or not value:
            parser.error(f"--cuda-option takes KEY=VALUE, not {option!r}")
        engine_module.CUDA_PROVIDER_OPTIONS[key] = value
    if device != "cuda" and "on" in graph_settings:
        parser.error("--cuda-graph on needs --device cuda (CUDA graphs are a feature of the CUDA execution provider)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.pack:
            pack = load_pack(args.pack)
        else:
            graphs = ("encoder", "reference", "decoder") + tuple({"sparse": "student", "dense": "student_dense",
                                                                  "fallback": "student_fallback"}[m] for m in modes)
            precision = "float16" if device == "cuda" else "float32"
            pack = load_pack(random_pack(args.preset, precision, Path(tmp), graphs, args.cache_frames))
        manifest = pack.manifest
        frames_total = int(round(args.seconds * manifest.fps)) // manifest.chunk_size * manifest.chunk_size
        keypoints = motion_keypoints(max(frames_total, manifest.chunk_size * (args.warmup + 1)), manifest.fps,
                                     args.keypoints)
        results = [report(stream(pack, device, mode, keypoints[:frames_total], args.warmup, args.profile,
                                 cuda_graph=graphs == "on"), manifest)
                   for mode in modes for graphs in graph_settings]
    name = args.name or f"student-{args.pack.name if args.pack else args.preset}"
    rows = [[r["attention"], "+".join(r["graphed_sessions"]) or "off", r["fps"], r["offline_fps"],
             r["chunk_median_ms"], r["chunk_p95_ms"], r["gpu_ms_per_chunk"] or "n/a", r["latency_p95_ms"],
             *r["per_frame_ms_at"].values(), r["split_ms_per_chunk"]["attention"] or "n/a",
             r["split_ms_per_chunk"]["other_layers"] or "n/a", r["split_ms_per_chunk"]["decoder"],
             r["split_ms_per_chunk"]["mask_building"], r["split_ms_per_chunk"]["host"],
             r["split_ms_per_chunk"]["copies"], r["kept_block_fraction"],
             r["transformer_gflop_per_frame"], r["gpu_memory_mib"] if r["gpu_memory_mib"] is not None else "n/a"]
            for r in results]
    headers = ["attention", "CUDA graphs", "fps", "offline fps", "chunk med ms", "chunk p95 ms", "GPU ms/chunk",
               "live latency p95 ms",
               *[f"ms/frame @{s}s" for s in WINDOWS_SECONDS], "attn ms/chunk", "other ms/chunk", "decoder ms",
               "masks ms", "host ms", "copies ms", "kept blocks", "GFLOP/frame", "GPU MiB"]
    table = format_table(headers, rows)
    if ratios := fps_ratios(results):
        table += "\n\n" + "\n".join(ratios)
    for r in results:
        if r["gpu_kernels"]:
            top = "; ".join(f"{name[:60]} {ms:.3g} ms ×{count:.0f}" for name, ms, count in r["gpu_kernels"]["top"][:8])
            table += (f"\n\n{r['attention']} (CUDA graphs {r['cuda_graph']}): "
                      f"{r['gpu_kernels']['launches_per_chunk']:.0f} kernels a chunk; costliest: {top}")
    context = (f"{manifest.name}: {manifest.resolution[0]}x{manifest.resolution[1]}, width {manifest.model.width}, "
               f"depth {manifest.model.depth}, {manifest.steps} step(s) + cache refresh, chunks of "
               f"{manifest.chunk_size}, top-{manifest.top_k} of {manifest.cache_frames}, block {manifest.block_size}, "
               f"{device.upper()}, {args.seconds:g} s of stream"
               + (f", CUDA options {', '.join(args.cuda_option)}" if args.cuda_option else ""))
    print(context)
    print(table)
    figures = {"context": context, "device": device, "results": results}
    path = write_results(name, figures, context + "\n\n" + table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for suffix in (".json", ".md"):
            (args.out / path.with_suffix(suffix).name).write_bytes(path.with_suffix(suffix).read_bytes())
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
