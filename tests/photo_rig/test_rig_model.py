"""The pieces under the renderer: mediapipe topology, reading controls from keypoints, framing, the mesh."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mediapipe.python.solutions import face_mesh_connections as fmc

from inference.errors import ConfigError
from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.render.photo_rig import topology as topo
from inference.render.photo_rig.controls import CONTROL_LIMITS, TUCK_FULL, KeypointReader
from inference.render.photo_rig.framing import frame_portrait, place_portrait
from inference.render.photo_rig.mesh import GridInterpolator, triangulate


def _edges(chain: tuple[int, ...]) -> set[frozenset[int]]:
    return {frozenset(p) for p in zip(chain[:-1], chain[1:], strict=True)}


@pytest.mark.parametrize(
    ("chains", "connections"),
    [
        ((topo.OUTER_UPPER_LIP, topo.OUTER_LOWER_LIP, topo.INNER_UPPER_LIP, topo.INNER_LOWER_LIP), fmc.FACEMESH_LIPS),
        ((topo.RIGHT_UPPER_LID, topo.RIGHT_LOWER_LID), fmc.FACEMESH_RIGHT_EYE),
        ((topo.LEFT_UPPER_LID, topo.LEFT_LOWER_LID), fmc.FACEMESH_LEFT_EYE),
        ((topo.FACE_OVAL + topo.FACE_OVAL[:1],), fmc.FACEMESH_FACE_OVAL),
    ],
)
def test_named_chains_follow_mediapipes_own_outlines(chains, connections):
    ours = set().union(*(_edges(c) for c in chains))
    assert ours == {frozenset(e) for e in connections}


def test_chains_run_from_image_left_to_right(astronaut_rig):
    face = astronaut_rig.landmarks.face
    for chain in (topo.INNER_LOWER_LIP, topo.INNER_UPPER_LIP, topo.RIGHT_UPPER_LID, topo.LEFT_UPPER_LID):
        assert face[chain[0], 0] < face[chain[-1], 0]
    right, left = topo.eye_centres(face)
    assert right[0] < left[0]  # the subject's right eye is on the image's left


def _settled(controls: dict, framing: str = "head-and-shoulders", size: int = 512, frames: int = 15):
    """Controls read after a neutral frame and then ``frames`` frames of the pose (smoothed controls settle)."""
    reader = KeypointReader((size, size))
    reader.read(pose_keypoints(RigControls(), Framing.named(framing)), 0.04)
    posed = pose_keypoints(RigControls(**controls), Framing.named(framing))
    for _ in range(frames):
        out = reader.read(posed, 0.04)
    return out


def test_reader_starts_neutral_and_reads_each_motion():
    rest = KeypointReader((512, 512)).read(pose_keypoints(RigControls(), Framing.named("half-body")), 0.04)
    assert all(abs(v) < 1e-6 for v in rest.vector())
    for controls, name, low, high in [
        ({"jaw_open": 0.8}, "jaw", 0.25, 0.45),  # the rig opens 0.128 face widths = 0.34 eye distances
        ({"blink": 1.0}, "blink_right", 0.95, 1.0),
        ({"blink": 1.0}, "blink_left", 0.95, 1.0),
        ({"brow_raise": 1.0}, "brow_right", 0.08, 0.18),
        ({"head_roll": 0.15}, "roll", 0.13, 0.17),
        ({"head_yaw": 0.2}, "yaw", 0.14, 0.26),
        ({"head_offset": (0.2, 0.0)}, "head_x", 0.3, 0.7),
        ({"lip_width": 1.0}, "lip_width", 0.05, 0.35),
        ({"lip_press": 1.0}, "lip_press", 0.02, 0.08),
        ({"lip_tuck": 1.0}, "lip_tuck", 0.8 * TUCK_FULL, TUCK_FULL + 1e-6),
    ]:
        mouth = name in ("jaw", "lip_width", "lip_press", "lip_tuck")
        value = getattr(_settled(controls, frames=1 if mouth else 15), name)
        assert low <= value <= high, (controls, name, value)


def test_reader_tells_a_tucked_lower_lip_from_pressed_lips():
    """F/V (the lower lip drawn up under the upper teeth) and M/B/P (both lips pressed) thin the lips in
    different ways; each reads as itself, and an open vowel as neither."""
    tuck = _settled({"lip_tuck": 1.0}, frames=1)
    press = _settled({"lip_press": 1.0}, frames=1)
    vowel = _settled({"jaw_open": 0.8}, frames=1)
    assert tuck.lip_press < 0.1 * press.lip_press and tuck.jaw < 0.01
    assert press.lip_tuck < 0.1 * tuck.lip_tuck
    assert vowel.lip_tuck < 0.1 * tuck.lip_tuck and vowel.lip_press < 0.1 * press.lip_press


def test_rounded_lips_do_not_make_the_rest_read_as_pressed():
    """Speech rounds the lips (fuller) as often as it presses them: a mouth at rest between the two reads far less
    pressed than a press (a fullest-recent neutral read it at 70 % of a press, clamped), and never tucked."""
    reader = KeypointReader((512, 512))
    framing = Framing.named("head-and-shoulders")
    poses = [RigControls(lip_round=1.0), RigControls(), RigControls(lip_press=1.0), RigControls()]
    read = [reader.read(pose_keypoints(poses[i % 4], framing), 0.04) for i in range(500)]
    rest = [c for i, c in enumerate(read[400:], start=400) if i % 2 == 1]  # the running means have settled
    pressed = [c for i, c in enumerate(read[400:], start=400) if i % 4 == 2]
    assert min(c.lip_press for c in pressed) > 0.04
    assert max(c.lip_press for c in rest) < 0.3 * min(c.lip_press for c in pressed)
    assert max(c.lip_tuck for c in rest) < 0.005


def test_reader_is_independent_of_framing_and_frame_size():
    for controls in ({"jaw_open": 0.6}, {"blink": 0.7}, {"head_roll": 0.1, "jaw_open": 0.3}):
        values = [_settled(controls, framing, size).vector()
                  for framing, size in (("head-and-shoulders", 512), ("half-body", 512), ("half-body", 256))]
        assert np.abs(values[0] - values[1]).max() < 0.02 and np.abs(values[1] - values[2]).max() < 0.02


def test_reader_adapts_to_a_face_that_rests_with_an_open_mouth():
    """A webcam user whose lips part slightly at rest: after a few seconds of closed-mouth moments the jaw
    reads zero there, not a permanent opening."""
    reader = KeypointReader((512, 512))
    frames = [pose_keypoints(RigControls(jaw_open=0.15 + 0.5 * max(0.0, math.sin(t / 4))), Framing.named("half-body"))
              for t in range(200)]
    values = [reader.read(k, 0.04).jaw for k in frames]
    assert min(values[100:]) < 0.01 and max(values[100:]) > 0.15


def test_reader_clamps_and_survives_garbage():
    reader = KeypointReader((512, 512))
    wild = pose_keypoints(RigControls(), Framing.named("half-body"))
    reader.read(wild, 0.04)
    wild = wild.copy()
    wild[24:92, :2] += np.random.default_rng(0).normal(0, 0.2, (68, 2))
    out = reader.read(wild, 0.04)
    for name, (low, high) in CONTROL_LIMITS.items():
        assert low - 1e-6 <= getattr(out, name) <= high + 1e-6
    collapsed = np.zeros((134, 3), np.float32)
    collapsed[:, 2] = 1.0
    assert np.isfinite(reader.read(collapsed, 0.04).vector()).all()


def test_framing_names_and_placement(astronaut, astronaut_rig):
    lm = astronaut_rig.landmarks
    with pytest.raises(ConfigError, match="framing must be one of"):
        place_portrait(lm, (512, 512), "portrait-mode")
    for name in ("head-and-shoulders", "half-body"):
        affine, used = place_portrait(lm, (512, 512), name)
        assert used == name
        framed_width = lm.face_width * affine[0, 0] / (0.94 * 512)
        assert abs(framed_width - Framing.named(name).face_width) < 1e-6
    framed = frame_portrait(astronaut, lm, (512, 512), "half-body")
    assert framed.padded > 0.05  # the bundled photo is too tight for half body: extended with a soft border


def test_auto_framing_keeps_the_face_centred_without_padding(astronaut_rig):
    framed = astronaut_rig.framed
    nose = framed.face[topo.NOSE_TIP, :2]
    assert abs(nose[0] - 256) < 0.09 * 512 and framed.padded <= 0.011
    assert framed.framing in ("head-and-shoulders", "custom")


def test_grid_interpolation_is_exact_for_linear_values():
    rng = np.random.default_rng(3)
    pts = np.vstack([rng.uniform(0, 63, (40, 2)), [[0, 0], [63, 0], [0, 63], [63, 63]]])
    tris = triangulate(pts, (64, 64))
    gx, gy = np.meshgrid(np.arange(32) * 2 + 0.5, np.arange(32) * 2 + 0.5)
    interp = GridInterpolator(pts, tris, gx, gy)
    values = np.stack([2 * pts[:, 0] - pts[:, 1] + 3, pts[:, 1]], axis=1)
    out = interp(values)
    np.testing.assert_allclose(out[..., 0], 2 * gx - gy + 3, atol=1e-3)
    np.testing.assert_allclose(out[..., 1], gy, atol=1e-3)
