"""Renderers that fail on purpose, registered with the renderer factory for one test."""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable

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


def broken_pack(size: tuple[int, int], **options: object) -> PoseMapRenderer:
    raise ModelLoadError("The model pack 'demo' is damaged (student.onnx: sha256 mismatch). Download it again.")


def register(monkeypatch: pytest.MonkeyPatch, name: str, create: Callable[..., object]) -> None:
    """Make renderer ``name`` available through the factory for this test, built by ``create(size, **options)``."""
    module = types.ModuleType(f"podium_test_renderer_{name.replace('-', '_')}")
    module.availability = lambda: (True, "available")
    module.create = create
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(factory.RENDERERS, name, factory.RendererSpec(name, module.__name__, f"test renderer {name}"))
