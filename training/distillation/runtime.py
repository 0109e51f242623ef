"""Run plumbing shared by the sparse fine-tune and the distillation stages.

One GPU, several (``torchrun --nproc-per-node N``: one process per GPU, ``WORLD_SIZE`` and ``LOCAL_RANK`` set
by torchrun) or the CPU (tests). The stages call the networks several times before one backward pass (a
stream of chunks, or a teacher and a critic), which DistributedDataParallel's hooks do not allow, so the
gradients are averaged across processes explicitly (:func:`average_gradients`) before each optimiser step.
Forward passes run under bf16 autocast on CUDA (:func:`autocast`), in float32 on the CPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: ``rank`` of ``world`` processes, on ``device``."""

    rank: int
    world: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device_name(self) -> str:
        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"


def start(seed: int, device: str | None = None) -> Runtime:
    """Initialises torch.distributed when launched by torchrun, picks the device, seeds torch per rank.

    Args:
        seed: base seed (each rank adds its rank).
        device: "cuda" or "cpu" (default: CUDA when available).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = torch.cuda.is_available() if device is None else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu")
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if use_cuda:
        torch_device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        torch.cuda.set_device(torch_device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch_device = torch.device("cpu")
    torch.manual_seed(seed + rank)
    return Runtime(rank=rank, world=world, device=torch_device)


def finish(runtime: Runtime) -> None:
    """Waits for every process, then leaves torch.distributed."""
    if runtime.distributed:
        dist.barrier()
        dist.destroy_process_group()


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on the CPU (float32 there, as the tests run)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def average_gradients(parameters: Iterable[torch.nn.Parameter], runtime: Runtime) -> None:
    """Averages the gradients of ``parameters`` over every process (one flat all-reduce)."""
    if not runtime.distributed:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= runtime.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(module: torch.nn.Module, runtime: Runtime) -> None:
    """Gives every process rank 0's parameters and buffers."""
    if not runtime.distributed:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, 0)


def all_ranks_agree(flag: bool, runtime: Runtime) -> bool:
    """True when ``flag`` is True on any process (so every process stops at the same step)."""
    if not runtime.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=runtime.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


@dataclass
class Budget:
    """A wall-clock training budget that survives ``--resume``.

    Attributes:
        minutes: time for this run; before: seconds spent by earlier runs of the same training.
    """

    minutes: float
    before: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        """Seconds of this run so far."""
        return time.monotonic() - self.started

    @property
    def total(self) -> float:
        """Seconds of the whole training so far (earlier runs included)."""
        return self.before + self.elapsed

    def expired(self) -> bool:
        return self.elapsed >= self.minutes * 60.0

    def progress(self) -> float:
        """Fraction of the whole training done, 0..1 (for the learning-rate schedule)."""
        return min(1.0, self.total / max(self.before + self.minutes * 60.0, 1e-9))


def learning_rate(base: float, step: int, progress: float, warmup: int = 100, floor: float = 0.05) -> float:
    """Linear warm-up over ``warmup`` steps, then a time-based cosine from ``base`` to ``floor · base``."""
    ramp = min(1.0, (step + 1) / max(warmup, 1))
    return base * ramp * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class Log:
    """Progress lines on rank 0 (every ``every`` seconds) and a history for the run's metrics file."""

    def __init__(self, runtime: Runtime, every: float = 15.0) -> None:
        self.runtime = runtime
        self.every = every
        self.history: list[dict[str, float]] = []
        self._last = -math.inf

    def step(self, step: int, seconds: float, values: dict[str, float], force: bool = False) -> None:
        now = time.monotonic()
        if not self.runtime.is_main or (now - self._last < self.every and not force):
            return
        self._last = now
        entry = {"step": step, "seconds": round(seconds, 1), **{k: float(v) for k, v in values.items()}}
        self.history.append(entry)
        print(f"step {step:6d}  {seconds:7.0f} s  " + "  ".join(f"{k} {v:.4g}" for k, v in values.items()), flush=True)

    def info(self, text: str) -> None:
        if self.runtime.is_main:
            print(text, flush=True)


def write_json(path: Path, data: object) -> None:
    """Writes ``data`` as indented JSON (atomically: a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


@contextlib.contextmanager
def evaluation(*modules: torch.nn.Module) -> Iterator[None]:
    """Puts ``modules`` in eval mode without gradients, and back in their previous mode after."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)
