"""Renderers that fail on purpose, or note what they are given, registered with the renderer factory for one test."""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable

import numpy as np
import pytest

from inference.errors import InputFileError, ModelLoadError
from inference.render import factory
from inference.render.pose_map import PoseMapRenderer


class Faceless(PoseMapRenderer):
    """Like the photo rig with a photo it cannot fit."""

    name = "faceless"

    def set_reference(self, portrait) -> None:  # noqa: ANN001
        raise InputFileError("portrait.png", "no face was found in the photo", "Use a photo with one face")


class Crashing(PoseMapRenderer):
    """Fails while rendering, as a GPU renderer might."""

    name = "crashing"

    def render(self, frames):  # noqa: ANN001, ANN201
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class Slow(PoseMapRenderer):
    """12 frames per second: slower than real time."""

    name = "slow"

    def render(self, frames):  # noqa: ANN001, ANN201
        time.sleep(0.08 * len(frames))
        return super().render(frames)


#: What a student pack's presenter is to these tests: a portrait no file holds.
PRESENTER = np.full((96, 80, 3), (200, 40, 160), np.uint8)


class Noting(PoseMapRenderer):
    """Notes every reference portrait it is given; ``own`` is its portrait of its own (like a student pack's
    presenter), or None (like the photo rig)."""

    name = "noting"

    def __init__(self, size: tuple[int, int], own: np.ndarray | None) -> None:
        super().__init__(size, overlay_reference=True)
        self.own = own
        self.references: list[np.ndarray] = []

    def set_reference(self, portrait: np.ndarray) -> None:
        self.references.append(portrait)
        super().set_reference(portrait)

    def default_portrait(self) -> np.ndarray | None:
        return self.own


def noting(built: list[Noting], own: np.ndarray | None) -> Callable[..., Noting]:
    """A ``create`` for :func:`register` that builds a :class:`Noting` with ``own`` and appends it to ``built``."""

    def create(size: tuple[int, int], **options: object) -> Noting:
        built.append(Noting(size, own))
        return built[-1]

    return create


def broken_pack(size: tuple[int, int], **options: object) -> PoseMapRenderer:
    raise ModelLoadError("The model pack 'demo' is damaged (student.onnx: sha256 mismatch). Download it again.")


def register(monkeypatch: pytest.MonkeyPatch, name: str, create: Callable[..., object]) -> None:
    """Make renderer ``name`` available through the factory for this test, built by ``create(size, **options)``."""
    module = types.ModuleType(f"podium_test_renderer_{name.replace('-', '_')}")
    module.availability = lambda: (True, "available")
    module.create = create
    monkeypatch.setitem(sys.modules, module.__name__, module)
    real = factory.RENDERERS.get(name)
    monkeypatch.setitem(factory.RENDERERS, name, factory.RendererSpec(
        name, module.__name__, f"test renderer {name}", any_portrait=real.any_portrait if real else True))
