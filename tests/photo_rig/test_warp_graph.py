"""The photo rig's GPU warp (one ONNX Runtime graph) against its CPU warp, and how the renderer picks one.

The graph runs here on ONNX Runtime's CPU execution provider: the same graph the CUDA provider runs on a GPU
machine. The CPU warp samples with 1/32-pixel weights (``cv2.remap``) and rounds the person layer to 8 bits
before laying it over the background; the graph samples and lays in float32, so frames may differ by a few
levels at sharp edges and nowhere else.
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.errors import ConfigError
from inference.gpu import cuda_status
from inference.render.photo_rig import renderer as renderer_module
from inference.render.photo_rig import warp_graph
from inference.render.photo_rig.controls import TUCK_FULL, PortraitControls
from inference.render.photo_rig.deformation import FIELD_CONTROLS
from inference.render.photo_rig.renderer import PhotoRigRenderer
from inference.render.photo_rig.warp_graph import GraphWarper
from tests.photo_rig.conftest import SIZE, keypoint_frame

CPU_EP = ["CPUExecutionProvider"]
POSES = {
    "neutral": PortraitControls(),
    "open mouth, head turned": PortraitControls(jaw=0.3, yaw=0.2, pitch=-0.1),
    "blinking while speaking": PortraitControls(jaw=0.15, blink_right=1.0, blink_left=0.6, brow_left=0.1),
    "F/V tuck, head tilted": PortraitControls(lip_tuck=TUCK_FULL, roll=0.2, head_x=0.3, shoulder_left_y=0.2),
    "wide smile, mouth wide open": PortraitControls(jaw=0.45, smile=0.12, lip_width=0.25),
}


@pytest.fixture(scope="module")
def graph(astronaut_rig):
    return GraphWarper(astronaut_rig.warper, CPU_EP)


@pytest.mark.parametrize("pose", list(POSES))
def test_graph_warp_matches_the_cpu_warp(astronaut_rig, graph, pose):
    values = POSES[pose].vector()
    field_values = values[[renderer_module.CONTROL_NAMES.index(n) for n in FIELD_CONTROLS]]
    blinks = (POSES[pose].blink_right, POSES[pose].blink_left)
    expected, expected_opening = astronaut_rig.warper.warp(field_values, blinks)
    frame, opening = graph.warp(field_values, blinks)
    assert frame.shape == expected.shape and frame.dtype == np.uint8 and frame.flags.writeable
    diff = np.abs(frame.astype(int) - expected.astype(int))
    assert diff.mean() < 0.1, diff.mean()
    assert np.percentile(diff, 99.9) <= 2 and diff.max() <= 8, (np.percentile(diff, 99.9), diff.max())
    if pose == "neutral":
        assert diff.max() == 0
    np.testing.assert_array_equal(opening.bottom, expected_opening.bottom)
    assert opening.bite == expected_opening.bite


def test_graph_leaves_no_mouth_mask_behind(astronaut_rig, graph):
    """The lower-layer mask of an open-mouth frame is cleared, so the next closed-mouth frame is the neutral one."""
    zeros = np.zeros(len(FIELD_CONTROLS), np.float32)
    neutral, _ = graph.warp(zeros, (0.0, 0.0))
    opened = zeros.copy()
    opened[FIELD_CONTROLS.index("jaw")] = 0.4
    graph.warp(opened, (0.0, 0.0))
    again, _ = graph.warp(zeros, (0.0, 0.0))
    np.testing.assert_array_equal(again, neutral)


def test_bad_warp_settings_are_refused():
    with pytest.raises(ConfigError, match="warp must be one of auto, cpu, cuda, got 'gpu'"):
        PhotoRigRenderer(SIZE, warp="gpu")
    if not cuda_status()[0]:
        with pytest.raises(ConfigError, match="GPU warp needs ONNX Runtime's CUDA execution provider"):
            PhotoRigRenderer(SIZE, warp="cuda")


@pytest.mark.skipif(cuda_status()[0], reason="this machine has CUDA: auto may rightly choose it")
def test_auto_warps_on_the_cpu_without_a_gpu(astronaut):
    renderer = PhotoRigRenderer(SIZE, use_cache=False)
    renderer.set_reference(astronaut)
    assert renderer.device == "CPU" and renderer.warper is renderer.rig.warper


def test_renderer_renders_through_the_graph_and_auto_keeps_the_faster(astronaut, monkeypatch):
    """With the graph on the CPU provider standing in for the GPU, warp "cuda" renders through it, frames matching
    the CPU renderer's; warp "auto" times both and keeps the faster one (here the CPU: the graph on the CPU
    provider is several times slower than OpenCV)."""
    monkeypatch.setattr(renderer_module, "cuda_status", lambda: (True, "CUDA"))
    monkeypatch.setattr(warp_graph, "GraphWarper", lambda warper, providers, only=False: GraphWarper(warper, CPU_EP))
    on_graph = PhotoRigRenderer(SIZE, use_cache=False, warp="cuda")
    on_graph.set_reference(astronaut)
    assert on_graph.device == "CUDA" and isinstance(on_graph.warper, GraphWarper)
    on_cpu = PhotoRigRenderer(SIZE, use_cache=False, warp="cpu")
    on_cpu.set_reference(astronaut)
    for i, pose in enumerate([{}, {"jaw_open": 0.7}, {"jaw_open": 0.4, "blink": 1.0}, {"lip_tuck": 1.0}]):
        a = on_graph.render([keypoint_frame(i, **pose)])[0].rgb.astype(int)
        b = on_cpu.render([keypoint_frame(i, **pose)])[0].rgb.astype(int)
        assert np.abs(a - b).mean() < 0.1 and np.abs(a - b).max() <= 8, pose
    assert set(on_graph.warper.timings) == {"map", "graph", "eyes"}
    chooser = PhotoRigRenderer(SIZE, use_cache=False, warp="auto")
    chooser.set_reference(astronaut)
    assert chooser.device == "CPU"


def test_a_gpu_warp_that_cannot_start_falls_back_or_says_why(astronaut, monkeypatch, caplog):
    def broken(warper, providers, only=False):
        raise RuntimeError("ONNX Runtime could not build the photo rig's warp graph: no kernel for GridSample")

    monkeypatch.setattr(renderer_module, "cuda_status", lambda: (True, "CUDA"))
    monkeypatch.setattr(warp_graph, "GraphWarper", broken)
    auto = PhotoRigRenderer(SIZE, use_cache=False)
    auto.set_reference(astronaut)
    assert auto.device == "CPU" and "GPU warp could not start" in caplog.text
    assert auto.render([keypoint_frame(0, jaw_open=0.5)])[0].rgb.shape == (*SIZE[::-1], 3)
    strict = PhotoRigRenderer(SIZE, use_cache=False, warp="cuda")
    with pytest.raises(ConfigError, match="could not run on the GPU .*no kernel for GridSample.*choose warp"):
        strict.set_reference(astronaut)
    assert strict.rig is None  # nothing half-set


def test_without_the_onnx_package_the_gpu_warp_says_how_to_get_it(astronaut, monkeypatch, caplog):
    """A CPU install has no onnx package: the photo rig still imports and renders, and a GPU machine that lacks it
    warps on the CPU with the fix in the log (or, asked for "cuda", refuses with it)."""
    import sys

    monkeypatch.setattr(renderer_module, "cuda_status", lambda: (True, "CUDA"))
    monkeypatch.delitem(sys.modules, "inference.render.photo_rig.warp_graph")
    monkeypatch.delattr(sys.modules["inference.render.photo_rig"], "warp_graph")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    auto = PhotoRigRenderer(SIZE, use_cache=False)
    auto.set_reference(astronaut)
    assert auto.device == "CPU" and "onnx package" in caplog.text and "setup.sh --gpu" in caplog.text
    with pytest.raises(ConfigError, match="onnx package.*setup.sh --gpu"):
        PhotoRigRenderer(SIZE, use_cache=False, warp="cuda").set_reference(astronaut)
