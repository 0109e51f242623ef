"""Shared helpers for benchmarks: machine description, timing statistics, result files."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def machine() -> dict[str, object]:
    """What ran the benchmark (no host names or paths)."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, 95th percentile, min and max of ``samples`` (seconds → milliseconds)."""
    ms = sorted(s * 1000.0 for s in samples)
    if not ms:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "min_ms": float("nan"), "max_ms": float("nan"),
                "n": 0}
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {"median_ms": statistics.median(ms), "p95_ms": p95, "min_ms": ms[0], "max_ms": ms[-1], "n": len(ms)}


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, figures: dict[str, object], table: str) -> Path:
    """Write ``bench/results/<date>_<name>_<card>.json`` and ``.md``; returns the JSON path."""
    info = machine()
    card = info["gpu"] or "cpu"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", str(card)).strip("-").lower()
    stamp = _dt.datetime.now().strftime("%Y-%m-%d")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    base = RESULTS_DIR / f"{stamp}_{name}_{slug}"
    payload = {"benchmark": name, "date": _dt.datetime.now().isoformat(timespec="seconds"), "machine": info,
               "figures": figures}
    base.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    header = f"# {name} — {stamp}\n\nMachine: {info['cpu']} ({info['cores']} cores), GPU: {info['gpu'] or 'none'}\n\n"
    base.with_suffix(".md").write_text(header + table + "\n", encoding="utf-8")
    return base.with_suffix(".json")


def gpu_kernel_seconds(work: Callable[[], object], patterns: Sequence[str] = (),
                       top: int = 0) -> dict[str, object] | None:
    """GPU kernel time of ``work()`` from CUPTI (torch.profiler): ``{"all": seconds, "matched": seconds,
    "launches": kernels run}``, ``matched`` summing the kernels whose name contains one of ``patterns``; with
    ``top``, also ``"kernels"``: the ``top`` kernels by time as ``[name, seconds, launches]``. None without torch
    or a CUDA GPU (the app's own runtime has no torch: this is for benchmarks on the GPU machine)."""
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            work()
            torch.cuda.synchronize()
    except RuntimeError as exc:  # CUPTI can be unavailable (permissions, driver): the benchmark goes on without
        print(f"GPU kernel times unavailable: {exc}")
        return None
    total = matched = 0.0
    launches = 0
    kernels = []
    for event in prof.key_averages():
        if event.device_type != torch.autograd.DeviceType.CUDA:
            continue
        seconds = getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)) * 1e-6
        total += seconds
        launches += event.count
        kernels.append([event.key[:120], seconds, event.count])
        if any(pattern in event.key for pattern in patterns):
            matched += seconds
    result: dict[str, object] = {"all": total, "matched": matched, "launches": launches}
    if top:
        result["kernels"] = sorted(kernels, key=lambda k: -k[1])[:top]
    return result
