"""One place that knows the renderers, whether each can run here, and which is best.

``auto`` picks the first available renderer in :data:`PREFERENCE`: the IASA
student on a CUDA GPU with a fitting model pack, else the photo rig (any
portrait, CPU), else the pose map (always available). A student pack renders
the presenter it was trained for (its own portrait), so when the user has chosen
a portrait of their own, ``auto`` passes over it for a renderer that animates
any portrait; asking for the student by name still uses it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from inference.errors import ConfigError, PodiumError
from inference.stages import Renderer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RendererSpec:
    """How to check and build one renderer.

    ``module`` must define ``availability() -> tuple[bool, str]`` and
    ``create(size: tuple[int, int], **options) -> Renderer``.
    """

    name: str
    module: str
    description: str
    any_portrait: bool = True  # animates any portrait the user chooses (False: only its own presenter)


RENDERERS: dict[str, RendererSpec] = {
    "student": RendererSpec("student", "inference.render.student", "IASA student (ONNX Runtime, CUDA + custom op)",
                            any_portrait=False),
    "photo-rig": RendererSpec("photo-rig", "inference.render.photo_rig",
                              "any real portrait, animated on the CPU (mediapipe fit + mesh warp)"),
    "pose-map": RendererSpec("pose-map", "inference.render.pose_map", "DWPose-style pose map (debug view)"),
}

#: Order in which ``auto`` tries renderers.
PREFERENCE: tuple[str, ...] = ("student", "photo-rig", "pose-map")


def _module(spec: RendererSpec):  # noqa: ANN202
    return importlib.import_module(spec.module)


def availability(name: str) -> tuple[bool, str]:
    """Whether renderer ``name`` can run on this machine, and why not."""
    spec = RENDERERS.get(name)
    if spec is None:
        raise ConfigError(f"unknown renderer {name!r}; choose one of auto, {', '.join(RENDERERS)}")
    try:
        return _module(spec).availability()
    except ImportError as exc:
        return False, f"{name} renderer cannot be imported ({exc}); run installer/setup.sh again"


def resolve(choice: str, *, portrait_chosen: bool = False) -> str:
    """The renderer name ``choice`` stands for (``auto`` → the best available; with ``portrait_chosen``, the best
    that animates any portrait)."""
    if choice != "auto":
        ok, reason = availability(choice)
        if not ok:
            raise ConfigError(f"the {choice} renderer cannot run here: {reason}")
        return choice
    reasons = []
    for name in PREFERENCE:
        if portrait_chosen and not RENDERERS[name].any_portrait:
            reasons.append(f"{name}: renders only its own presenter, not a chosen portrait (choose it by name to "
                           "try anyway)")
            continue
        ok, reason = availability(name)
        if ok:
            return name
        reasons.append(f"{name}: {reason}")
    raise PodiumError("no renderer can run on this machine: " + "; ".join(reasons))


def create_renderer(choice: str, size: tuple[int, int], *, portrait_chosen: bool = False,
                    **options: object) -> Renderer:
    """Build the renderer ``choice`` (or the best one for ``auto``, see :func:`resolve`)."""
    name = resolve(choice, portrait_chosen=portrait_chosen)
    factory: Callable[..., Renderer] = _module(RENDERERS[name]).create
    renderer = factory(size, **options)
    log.info("renderer: %s on %s at %dx%d", renderer.name, renderer.device, *renderer.size)
    return renderer
