"""The photo rig moves the portrait the way the keypoints say, and nothing else: checked on the rendered frames."""

from __future__ import annotations

import numpy as np
import pytest

from inference.errors import ConfigError
from inference.motion.energy import EnergyMotion
from inference.motion.readout import mouth_opening
from inference.motion.style import MotionStyle
from inference.paths import demo_audio
from inference.render.photo_rig import PhotoRigRenderer, availability, create
from inference.render.photo_rig.controls import PortraitControls
from inference.sources.audio_file import AudioFileSource
from inference.stages import Renderer
from tests.photo_rig.conftest import SIZE, keypoint_frame


def _background(renderer: PhotoRigRenderer, margin: float = 0.5) -> np.ndarray:
    """Pixels farther than ``margin`` eye distances from the person."""
    import cv2

    framed = renderer.rig.framed
    radius = int(round(margin * framed.eye_distance))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate((framed.mask > 0.02).astype(np.uint8), kernel) == 0


def test_registers_as_a_renderer():
    ok, reason = availability()
    assert ok, reason
    r = create(SIZE, framing="head-and-shoulders")
    assert isinstance(r, Renderer) and r.name == "photo-rig" and r.chunk_size == 1 and r.size == SIZE


def test_rendering_before_a_portrait_is_set_says_what_to_do():
    r = PhotoRigRenderer(SIZE)
    with pytest.raises(ConfigError, match="set_reference"):
        r.render([keypoint_frame()])


@pytest.mark.parametrize(("kwargs", "message"), [({"size": (32, 32)}, "at least 64x64"),
                                                  ({"framing": "full-body"}, "framing must be one of")])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PhotoRigRenderer(**{"size": SIZE, **kwargs})


def test_neutral_pose_shows_the_portrait_unchanged(renderer):
    frame = renderer.render([keypoint_frame()])[0]
    framed = renderer.rig.framed
    assert frame.rgb.shape == (*SIZE[::-1], 3) and frame.rgb.dtype == np.uint8
    person = framed.mask > 0.99
    diff = np.abs(frame.rgb.astype(int) - framed.rgb.astype(int))
    assert diff[person].max() <= 1  # the still portrait is reproduced exactly where the person is


def test_mouth_opens_on_speech_and_closes_in_silence(renderer, face_meter):
    """Real speech (the demo's second clip, with the pause before it) drives the energy motion stage; the
    rendered mouth, measured by mediapipe on the output frames, must open while the voice sounds."""
    source = AudioFileSource(demo_audio())
    motion = EnergyMotion(source.sample_rate, fps=25.0, style=MotionStyle(framing="head-and-shoulders"))
    frames = []
    while (block := source.read()) is not None and block.start < 10.8 * source.sample_rate:
        motion.accept_audio(block)
        frames += motion.pop_frames()
    source.close()
    frames = frames[170:270]  # 6.8 s .. 10.8 s: the end of clip 1, the pause, and all of clip 2
    video = []
    for f in frames:
        video += renderer.render([f])
    gaps = np.array([face_meter.mouth_gap(v.rgb) for v in video])
    asked = np.array([mouth_opening(f.keypoints) for f in frames])
    silent = np.arange(len(frames)) < 0  # frames 7.15-7.75 s are the pause between the clips
    silent[9:23] = True
    speaking = asked > np.percentile(asked, 70)
    assert np.median(gaps[speaking]) > np.median(gaps[silent]) + 0.08, (gaps[speaking], gaps[silent])
    assert np.corrcoef(gaps, asked)[0, 1] > 0.85  # the rendered mouth follows the keypoints frame by frame


def test_background_stays_still_while_head_and_shoulders_move(renderer):
    still = _background(renderer)
    assert still.mean() > 0.1  # the test sees a real part of the frame
    first = renderer.render([keypoint_frame(0)])[0].rgb
    for i, t in enumerate(np.linspace(0, 2 * np.pi, 12), start=1):
        frame = renderer.render([keypoint_frame(i, head_yaw=0.25 * np.sin(t), head_pitch=0.15 * np.cos(t),
                                                head_roll=0.15 * np.sin(2 * t), head_offset=(0.08 * np.cos(t), 0.05),
                                                shoulder_lift=0.05 * np.sin(t), jaw_open=0.6, blink=0.5)])[0].rgb
        moved = np.abs(frame.astype(int) - first.astype(int))
        assert moved[still].max() == 0, f"background pixels changed in frame {i}"
        assert moved[~still].mean() > 0.5  # ... while the person did move


def test_f_and_v_draw_the_lower_lip_up_under_the_upper_teeth(renderer):
    """A tuck (the motion rig's F/V mouth) shows the upper teeth under the lifted upper lip and a thinner lower
    lip, and moves nothing but the mouth."""
    from inference.render.photo_rig import topology as topo

    neutral = renderer.render([keypoint_frame(0)])[0].rgb.astype(int)
    tucked = renderer.render([keypoint_frame(1, lip_tuck=1.0)])[0].rgb.astype(int)
    face = renderer.rig.framed.face[:, :2]
    upper_inner = face[list(topo.INNER_UPPER_LIP)]
    width = float(np.ptp(upper_inner[:, 0]))
    # a strip just above the upper inner lip's middle third: the lower part of the upper lip at rest
    xs = np.arange(int(upper_inner[:, 0].min() + width / 3), int(upper_inner[:, 0].max() - width / 3))
    ys = np.interp(xs, upper_inner[:, 0], upper_inner[:, 1])
    strip = [(int(round(y)) - 2, x) for x, y in zip(xs, ys, strict=True)]
    before = np.array([neutral[r, c] for r, c in strip])
    after = np.array([tucked[r, c] for r, c in strip])
    # teeth are paler than lips: brighter and less saturated
    assert after.mean() > before.mean() + 15, (before.mean(), after.mean())
    assert np.ptp(after, axis=1).mean() < np.ptp(before, axis=1).mean()
    changed = np.abs(tucked - neutral).max(axis=2) > 8
    rows = np.nonzero(changed.any(axis=1))[0]
    eye_distance = renderer.rig.framed.eye_distance
    assert rows.size and rows.max() - rows.min() < 0.8 * eye_distance  # only the mouth moved


def test_blink_closes_the_real_eyelids(renderer, face_meter):
    renderer.render([keypoint_frame(0)])
    open_ = face_meter.eye_opening(renderer.render([keypoint_frame(1)])[0].rgb)
    closed = face_meter.eye_opening(renderer.render([keypoint_frame(2, blink=1.0)])[0].rgb)
    assert closed < 0.45 * open_, (open_, closed)


def test_head_turn_moves_the_nose_towards_the_turn(renderer, face_meter):
    rest = face_meter.landmarks(renderer.render([keypoint_frame(0)])[0].rgb)[1]
    turned = face_meter.landmarks(renderer.render([keypoint_frame(1, head_yaw=0.3)])[0].rgb)[1]
    assert turned[0] - rest[0] > 1.5


def test_same_motion_at_another_framing_gives_the_same_face(renderer):
    """Controls are read relative to the keypoints' own face size, so the framing of the source does not matter."""
    a = renderer.render([keypoint_frame(0, "head-and-shoulders", jaw_open=0.5, brow_raise=0.5)])[0].rgb
    renderer.reset()
    b = renderer.render([keypoint_frame(0, "half-body", jaw_open=0.5, brow_raise=0.5)])[0].rgb
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 0.5


def test_a_frame_without_a_face_relaxes_to_neutral(renderer):
    renderer.render([keypoint_frame(0, jaw_open=0.8)])
    lost = keypoint_frame(1, jaw_open=0.8).keypoints.copy()
    lost[24:92, 2] = 0.0
    for i in range(2, 40):
        frame = renderer.render([type(keypoint_frame())(lost, index=i, fps=25.0)])[0]
    neutral = renderer.rig.framed.rgb
    assert np.abs(frame.rgb.astype(int) - neutral.astype(int)).mean() < 0.5


def test_rendering_is_deterministic(renderer):
    frames = [keypoint_frame(i, jaw_open=0.3 * (i % 3), head_yaw=0.05 * i, blink=float(i == 2)) for i in range(5)]
    first = [f.rgb for f in renderer.render(frames)]
    renderer.reset()
    second = [f.rgb for f in renderer.render(frames)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_controls_are_clamped_to_what_a_photo_can_show(renderer):
    wild = PortraitControls(jaw=5.0, yaw=3.0, roll=-3.0, head_x=40.0, blink_left=7.0)
    frame = renderer.render_controls(wild)
    assert frame.shape == (*SIZE[::-1], 3)
