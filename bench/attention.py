"""BlockSparseAttention against ONNX Runtime's dense com.microsoft.MultiHeadAttention, in one run.

Usage: python main.py bench attention [--device cuda|cpu] [--shapes 4096x4096,...] [--runs N] [--out DIR]

CUDA (default when onnxruntime has the CUDA EP): float16, batch 1, 16 heads, head dim 64, the shapes
4096x4096, 4096x12288, 16384x16384 (queries x keys), 128x128 blocks with 100, 50, 25 and 10 % kept.
Each query block keeps exactly round(f * kv_blocks) random key blocks (f is exact, rows are
balanced). Each graph holds R independent attention nodes on the same inputs and runs as a CUDA
graph with IO binding on device buffers; R is sized so that one run takes about 8 ms (R for the
dense graph, about R / f for the op at kept fraction f, at most 256), so ONNX Runtime's per-run
overhead (graph launch, synchronisation) stays out of the time per node = median over runs / R.
CPU: float32, 8 heads, head dim 64, 1024x1024 and 2048x2048, plain runs, median of 9.

The table shows op time / (f x dense time) against the targets of docs/ops.md, and the relative
difference between the op at 100 % and the dense op. Results go to bench/results/ (and --out).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.common import format_table, write_results
from inference import ops
from inference.gpu import cuda_status
from inference.ops import csr, graphs

BLOCK = 128
FRACTIONS = (1.0, 0.5, 0.25, 0.1)
CUDA_SHAPES = ((4096, 4096), (4096, 12288), (16384, 16384))
CPU_SHAPES = ((1024, 1024), (2048, 2048))
RUN_SECONDS = 8e-3  # R is chosen so that one run of a graph takes about this long
MAX_NODES = 256  # R at most (each node has its own output buffer)


@dataclass(frozen=True)
class Setup:
    device: str
    dtype: str
    heads: int
    head_dim: int
    runs: int


def parse_shapes(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(tuple(int(n) for n in item.split("x")) for item in text.split(","))  # type: ignore[misc]


def balanced_mask(rng: np.random.Generator, q_blocks: int, kv_blocks: int, fraction: float) -> np.ndarray:
    kept = max(1, round(fraction * kv_blocks))
    mask = np.zeros((1, q_blocks, kv_blocks), dtype=bool)
    for r in range(q_blocks):
        mask[0, r, rng.choice(kv_blocks, kept, replace=False)] = True
    return mask


class Runner:
    """Builds sessions with the op registered and times graphs of R nodes with IO binding."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        if setup.device == "cuda":
            cuda_ok, cuda_reason = cuda_status()
            if not cuda_ok:
                raise RuntimeError(cuda_reason)

    def session(self, model) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the R nodes apart
        ops.register(options)
        if self.setup.device == "cuda":
            providers = [("CUDAExecutionProvider", {"device_id": 0, "enable_cuda_graph": "1"})]
        else:
            providers = ["CPUExecutionProvider"]
        return ort.InferenceSession(model.SerializeToString(), options, providers=providers)

    def value(self, array: np.ndarray) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_numpy(array, self.setup.device, 0)

    def time_per_node(self, sess: ort.InferenceSession, inputs: dict[str, np.ndarray], out_shape: tuple[int, ...],
                      repeats: int) -> tuple[float, np.ndarray]:
        """Median seconds per node over the runs, and the first node's output."""
        binding = sess.io_binding()
        values = {name: self.value(array) for name, array in inputs.items()}  # kept alive while bound
        for name, value in values.items():
            binding.bind_ortvalue_input(name, value)
        dtype = inputs["q"].dtype
        outputs = [self.value(np.zeros(out_shape, dtype=dtype)) for _ in range(repeats)]
        for i, out in enumerate(outputs):
            binding.bind_ortvalue_output("out" if repeats == 1 else f"out{i}", out)
        for _ in range(3):  # warm-up; with CUDA graphs the first runs also capture
            sess.run_with_iobinding(binding)
        samples = []
        for _ in range(self.setup.runs):
            start = time.perf_counter()
            sess.run_with_iobinding(binding)  # synchronises the device at the end
            samples.append(time.perf_counter() - start)
        return float(np.median(samples)) / repeats, np.array(outputs[0].numpy())  # a copy that outlives the buffers


def cuda_kernel_family() -> str:
    """The op's kernel on this GPU: "wgmma" on compute capability 9.0 (when built for sm_90a), else "mma"."""
    forced = os.environ.get("PODIUM_BSA_KERNEL") == "mma"
    try:
        capability = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=10).stdout.split()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"
    return "wgmma" if capability == "9.0" and not forced and "wgmma" in ops.availability()[1] else "mma"


def measure(setup: Setup, shapes: tuple[tuple[int, int], ...], seed: int) -> list[dict]:
    runner = Runner(setup)
    rng = np.random.default_rng(seed)
    heads, dim = setup.heads, setup.head_dim
    dtype = np.float16 if setup.dtype == "float16" else np.float32
    rows: list[dict] = []
    for q_len, kv_len in shapes:
        flops = 4.0 * heads * q_len * kv_len * dim
        repeats = 1 if setup.device == "cpu" else max(4, min(64, round(RUN_SECONDS / (flops / 450e12))))
        q = rng.standard_normal((1, heads, q_len, dim)).astype(dtype)
        k = rng.standard_normal((1, heads, kv_len, dim)).astype(dtype)
        v = rng.standard_normal((1, heads, kv_len, dim)).astype(dtype)
        q_bsh = np.ascontiguousarray(q.transpose(0, 2, 1, 3).reshape(1, q_len, heads * dim))
        dense_sess = runner.session(graphs.multi_head_attention_model(dtype, heads, dim, repeats=repeats))
        dense_s, dense_out = runner.time_per_node(dense_sess, {"q": q_bsh, "k": k, "v": v}, q_bsh.shape, repeats)
        del dense_sess
        dense_out = dense_out.reshape(1, q_len, heads, dim).transpose(0, 2, 1, 3).astype(np.float64)
        q_blocks, kv_blocks = csr.num_blocks(q_len, BLOCK), csr.num_blocks(kv_len, BLOCK)
        for fraction in FRACTIONS:
            mask = balanced_mask(rng, q_blocks, kv_blocks, fraction)
            row_ptr, col_idx = csr.block_mask_to_csr(mask)
            kept = float(mask.mean())
            op_repeats = repeats if setup.device == "cpu" else max(repeats, min(MAX_NODES, round(repeats / kept)))
            op_sess = runner.session(graphs.block_sparse_attention_model(dtype, BLOCK, repeats=op_repeats))
            op_s, op_out = runner.time_per_node(op_sess, {"q": q, "k": k, "v": v, "row_ptr": row_ptr,
                                                          "col_idx": col_idx}, q.shape, op_repeats)
            del op_sess
            row = {"q_len": q_len, "kv_len": kv_len, "kept": kept, "nodes_per_run": op_repeats,
                   "dense_ms": dense_s * 1e3, "op_ms": op_s * 1e3,
                   "op_tflops": flops * kept / op_s / 1e12, "dense_tflops": flops / dense_s / 1e12,
                   "ratio": op_s / (kept * dense_s)}
            if fraction == 1.0:
                diff = op_out.astype(np.float64) - dense_out
                row["diff_vs_dense"] = float(np.linalg.norm(diff) / np.linalg.norm(dense_out))
            rows.append(row)
    return rows


def target(row: dict, device: str) -> tuple[str, bool | None]:
    """The issue's target for this row (docs/ops.md) and whether the row meets it."""
    if device == "cpu":
        if row["kept"] == 1.0:
            return "op <= 3 x dense", row["op_ms"] <= 3 * row["dense_ms"]
        return "scales with f", None
    if row["kept"] == 1.0:
        return "op <= 1.3 x dense", row["ratio"] <= 1.3
    if (row["q_len"], row["kv_len"]) in ((16384, 16384), (4096, 12288)):
        return "op <= 1.25 f x dense", row["ratio"] <= 1.25
    return "-", None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench attention", description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if cuda_status()[0] else "cpu")
    parser.add_argument("--shapes", type=parse_shapes, help="queries x keys, comma separated (e.g. 4096x4096)")
    parser.add_argument("--runs", type=int, help="timed runs per configuration (default 30 CUDA, 9 CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also copy the result files into this folder")
    args = parser.parse_args(argv)

    ok, reason = ops.availability()
    if not ok:
        print(f"cannot benchmark: {reason}")
        return 1
    cuda = args.device == "cuda"
    setup = Setup(args.device, "float16" if cuda else "float32", 16 if cuda else 8, 64, args.runs or (30 if cuda else 9))
    shapes = args.shapes or (CUDA_SHAPES if cuda else CPU_SHAPES)
    rows = measure(setup, shapes, args.seed)
    kernel = cuda_kernel_family() if cuda else "cpu"

    table_rows = []
    for row in rows:
        goal, met = target(row, args.device)
        table_rows.append([f"{row['q_len']}x{row['kv_len']}", f"{row['kept']:.0%}", round(row["dense_ms"], 4),
                           round(row["op_ms"], 4), float(f"{row['op_tflops']:.3g}"), round(row["ratio"], 3), goal,
                           {True: "yes", False: "NO", None: "-"}[met],
                           f"{row['diff_vs_dense']:.1e}" if "diff_vs_dense" in row else ""])
    headers = ["queries x keys", "kept", "dense MHA ms", "op ms", "op TFLOP/s", "op / (f x dense)", "target", "met",
               "rel. diff vs dense"]
    table = format_table(headers, table_rows)
    note = (f"{setup.dtype}, {setup.heads} heads, head dim {setup.head_dim}, {BLOCK}x{BLOCK} blocks, "
            f"median of {setup.runs} runs; onnxruntime {ort.__version__}"
            + (f"; op kernel: {kernel}; R nodes per CUDA-graph run, R sized for about 8 ms per run" if cuda else ""))
    print(table)
    print(note)
    figures = {"setup": setup.__dict__, "kernel": kernel, "rows": rows,
               "library": reason.rsplit(" from ", 1)[0]}  # results name no path of this machine
    name = "attention-cuda" + ("-mma" if kernel == "mma" else "") if cuda else "attention-cpu"
    result = write_results(name, figures, table + "\n\n" + note)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for path in (result, result.with_suffix(".md")):
            shutil.copy(path, args.out / path.name)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
