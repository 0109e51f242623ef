"""The IASA student renderer: a model pack streamed through ONNX Runtime with the custom op.

Modules: :mod:`.masks` (input-aware sparse attention masks, shared with training), :mod:`.sampling`
(the few-step schedule), :mod:`.planner` (per-chunk host planning and the cache's slots),
:mod:`.engine` (ONNX Runtime sessions, device buffers, IO binding, CUDA graphs), :mod:`.device_copy`
(device-to-device copies through ONNX Runtime), :mod:`.renderer` (the :class:`~inference.stages.Renderer`).

For :mod:`inference.render.factory`: :func:`availability` and :func:`create`. The student is meant for
a CUDA GPU; it also runs on the CPU (slowly: tests, checks), which ``availability`` only reports as
usable when ``PODIUM_STUDENT_CPU=1`` is set, so that ``auto`` never picks it on a machine without a GPU.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from inference.errors import ModelLoadError
from inference.packs import PackInfo, find_packs, load_pack

log = logging.getLogger(__name__)
CPU_ENV = "PODIUM_STUDENT_CPU"


def _cuda_status() -> tuple[bool, str]:
    from inference import gpu

    return gpu.cuda_status()


def _cuda_available() -> bool:
    return _cuda_status()[0]


def _usable_packs(provider: str) -> list[PackInfo]:
    """Packs whose manifest is good and that have student graphs ``provider`` runs (the CPU needs float32)."""
    return [info for info in find_packs() if info.status == "ok" and info.manifest is not None
            and (provider == "cuda" or "float32" in info.manifest.graphs["student"])]


def availability() -> tuple[bool, str]:
    """(True, what will run) or (False, why not and the fix), without loading any model."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return False, f"onnxruntime is not installed ({exc}): run installer/setup.sh"
    from inference import ops
    from inference.packs import pack_folders

    cuda, cuda_reason = _cuda_status()
    if not cuda and os.environ.get(CPU_ENV) != "1":
        return False, (f"the student needs an NVIDIA GPU: {cuda_reason} (or set PODIUM_STUDENT_CPU=1 to run it "
                       "slowly on the CPU)")
    packs = _usable_packs("cuda" if cuda else "cpu")
    if not packs:
        broken = [f"{info.path.name}: {info.status if info.status != 'ok' else 'float16 graphs only (needs CUDA)'}"
                  for info in find_packs()]
        where = " or ".join(str(folder) for folder in pack_folders())
        detail = f" (unusable: {'; '.join(broken)})" if broken else ""
        return False, f"no usable model pack in {where}{detail}; install a student pack there"
    op_ok, op_reason = ops.availability()
    with_fallback = [p for p in packs if p.manifest is not None and "student_fallback" in p.manifest.graphs]
    if not op_ok and not with_fallback:
        return False, f"{op_reason} (and no pack has a fallback graph)"
    device = "CUDA" if cuda else "CPU (slow)"
    attention = "sparse attention (custom op)" if op_ok else f"dense fallback attention ({op_reason})"
    names = ", ".join(f"{p.name} {p.manifest.resolution[0]}x{p.manifest.resolution[1]}" for p in packs if p.manifest)
    return True, f"{names}; {attention} on {device}"


def _choose_pack(size: tuple[int, int], provider: str) -> Path:
    packs = _usable_packs(provider)
    if not packs:
        raise ModelLoadError(f"no student model pack that runs on the {provider.upper()} is installed (packs with "
                             "float16 graphs only need a CUDA GPU); `main.py doctor` lists the packs and what is "
                             "wrong with each")
    exact = [p for p in packs if p.manifest.resolution == tuple(size)]
    chosen = exact[0] if exact else max(packs, key=lambda p: p.manifest.resolution[0] * p.manifest.resolution[1])
    return chosen.path


def create(size: tuple[int, int], *, pack: str | Path | None = None, device: str | None = None,
           attention: str = "auto", precision: str | None = None, seed: int = 0, **_: object):  # noqa: ANN201
    """A :class:`~inference.render.student.renderer.StudentRenderer` at ``size`` (width, height), offering the
    pack's portrait, if it has one, as its :meth:`~inference.stages.Renderer.default_portrait`.

    Args:
        pack: a pack folder or zip (default: an installed pack of this resolution, else the largest).
        device: "cuda" or "cpu" (default: CUDA when ONNX Runtime has it).
        attention: "auto", "sparse", "fallback" or "dense" (see :class:`.engine.StudentEngine`).
        precision: "float16" or "float32" (default: by device).
        seed: noise seed.
    """
    from inference.render.student.engine import StudentEngine
    from inference.render.student.renderer import StudentRenderer, pack_portrait

    provider = device or ("cuda" if _cuda_available() else "cpu")
    model_pack = load_pack(Path(pack) if pack else _choose_pack(size, provider))
    portrait = pack_portrait(model_pack)  # a pack whose portrait is broken fails before any session is built
    engine = StudentEngine(model_pack, provider=provider, attention=attention, precision=precision, seed=seed)
    log.info("student: %s", engine.description)
    return StudentRenderer(engine, size, portrait)
