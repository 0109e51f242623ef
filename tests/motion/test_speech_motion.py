"""The speech-driven motion stream: contract, lips on real speech, silence, determinism, style, limbs."""

import math
import threading
from dataclasses import replace

import numpy as np
import pytest

from inference import keypoints as kp
from inference.errors import ConfigError
from inference.motion.readout import mouth_opening
from inference.motion.rig import Framing
from inference.motion.speech import SpeechMotion
from inference.motion.style import PRESETS, MotionStyle
from inference.stages import MotionStream
from inference.types import AudioBlock
from tests.motion.conftest import RATE, feed, keypoints_of

CLOSED = 0.025  # inner-lip gap in face widths below which the mouth is closed


@pytest.fixture(scope="module")
def sentence_run(sentence48):  # noqa: ANN001
    motion = SpeechMotion(RATE, 25.0, MotionStyle(), record_trace=True)
    frames = feed(motion, sentence48, captured_at=100.0)
    return motion, frames


def test_is_a_motion_stream_with_numbered_frames_covering_the_audio(sentence_run, sentence48):
    motion, frames = sentence_run
    assert isinstance(motion, MotionStream)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert len(frames) == math.ceil(len(sentence48) * 25 / RATE)
    assert all(f.fps == 25.0 for f in frames)


def test_frames_wait_only_for_the_lookahead_and_carry_the_capture_time(sentence48):
    motion = SpeechMotion(RATE, 25.0, lookahead=0.1)
    emitted_after = {}
    for start in range(0, RATE, 960):
        motion.accept_audio(AudioBlock(sentence48[start : start + 960], RATE, start, captured_at=start / RATE))
        for f in motion.pop_frames():
            emitted_after[f.index] = (start + 960) / RATE
            needed = (f.index + 0.5) / 25 + 0.1  # the frame's instant plus the look-ahead
            assert f.audio_heard_at == pytest.approx(math.ceil(needed / 0.02 - 1e-9) * 0.02 - 0.02)
    # frame i shows the instant (i + 0.5) / 25 s and comes out as soon as 100 ms beyond it has arrived
    for i, t in emitted_after.items():
        assert t == pytest.approx((i + 0.5) / 25 + 0.1, abs=0.0201)


@pytest.mark.parametrize("block", [1, 333, 4801, 48_000])
def test_any_block_size_gives_the_same_frame_count(sentence48, block):
    audio = sentence48[: RATE + 1234]
    frames = feed(SpeechMotion(RATE, 30.0), audio, block=block)
    assert [f.index for f in frames] == list(range(math.ceil(len(audio) * 30 / RATE)))


def test_lips_follow_the_speech(sentence_run):
    motion, frames = sentence_run
    opening = mouth_opening(keypoints_of(frames))
    speech = slice(int(0.5 * 25), int(3.3 * 25))
    assert opening[speech].max() > 0.08  # the mouth opens on the vowels
    assert (opening[speech] < CLOSED).mean() > 0.05  # and closes on some consonants
    visemes = {t.viseme for t in motion.trace}
    assert {"AA", "PP", "sil"} <= visemes and len(visemes) >= 7


def test_silence_closes_the_mouth_within_100_ms(sentence48):
    speech = sentence48[int(0.4 * RATE) : int(3.2 * RATE)]  # ends inside the word "man"
    audio = np.concatenate([speech, np.zeros(RATE, np.float32)])
    frames = feed(SpeechMotion(RATE, 25.0), audio)
    opening = mouth_opening(keypoints_of(frames))
    end = len(speech) / RATE
    assert opening[int((end - 0.3) * 25) : int(end * 25)].max() > 0.04  # it was open just before
    after = [i for i in range(len(frames)) if (i + 0.5) / 25 >= end + 0.1]
    assert (opening[after] < CLOSED).all(), opening[after]


def test_silence_from_the_start_is_idle_but_alive():
    frames = feed(SpeechMotion(RATE, 25.0), np.zeros(8 * RATE, np.float32))
    k = keypoints_of(frames)
    assert (mouth_opening(k) < CLOSED).all()
    head = k[:, kp.NOSE, :2]
    assert np.ptp(head, axis=0).max() > 0.002  # it moves (sway, breathing) ...
    assert np.abs(np.diff(head, axis=0)).max() < 0.01  # ... smoothly
    eyes = k[:, kp.face_index(37), 1] - k[:, kp.face_index(41), 1]
    assert (eyes > -0.2 * np.median(np.abs(eyes))).any()  # and it blinks


def test_fixed_seed_gives_identical_keypoints_and_another_seed_does_not(sentence48):
    audio = sentence48[: 2 * RATE]
    for mode in ("live", "offline"):
        a = keypoints_of(feed(SpeechMotion(RATE, 25.0, MotionStyle(seed=3), mode=mode), audio))
        b = keypoints_of(feed(SpeechMotion(RATE, 25.0, MotionStyle(seed=3), mode=mode), audio))
        c = keypoints_of(feed(SpeechMotion(RATE, 25.0, MotionStyle(seed=4), mode=mode), audio))
        assert np.array_equal(a, b), mode
        assert not np.array_equal(a, c), mode


def test_reset_starts_the_same_stream_again(sentence48):
    motion = SpeechMotion(RATE, 25.0)
    audio = sentence48[:RATE]
    first = keypoints_of(feed(motion, audio))
    motion.reset()
    assert np.array_equal(first, keypoints_of(feed(motion, audio)))


def spread(frames: list, points: list[int]) -> float:
    k = keypoints_of(frames)[:, points, :2]
    return float(np.std(k, axis=0).mean())


@pytest.fixture(scope="module")
def long_speech(demo_speech48):  # noqa: ANN001
    return demo_speech48[: 10 * RATE]


def run_style(audio: np.ndarray, **knobs) -> list:  # noqa: ANN003
    return feed(SpeechMotion(RATE, 25.0, MotionStyle(**knobs)), audio)


def test_style_knobs_have_visible_effects(long_speech):
    calm_hands = spread(run_style(long_speech, gesture_amount=0.0), [kp.R_WRIST, kp.L_WRIST])
    busy_hands = spread(run_style(long_speech, gesture_amount=1.0), [kp.R_WRIST, kp.L_WRIST])
    assert busy_hands > 2.5 * calm_hands
    still = run_style(long_speech, head_motion=0.0, idle_energy=0.0)
    lively = run_style(long_speech, head_motion=1.0, idle_energy=0.0)
    assert spread(lively, [kp.NOSE]) > 1.5 * spread(still, [kp.NOSE])
    flat = mouth_opening(keypoints_of(run_style(long_speech[: 6 * RATE], expressiveness=0.0)))
    vivid = mouth_opening(keypoints_of(run_style(long_speech[: 6 * RATE], expressiveness=1.0)))
    assert vivid.mean() > 1.2 * flat.mean()


def test_idle_energy_changes_idle_motion():
    silence = np.zeros(10 * RATE, np.float32)
    calm = spread(run_style(silence, idle_energy=0.0), [kp.NOSE, kp.NECK])
    fidgety = spread(run_style(silence, idle_energy=1.0), [kp.NOSE, kp.NECK])
    assert fidgety > 1.5 * calm


def raised_alone(frames: list) -> tuple[int, int]:
    """Frames where only the right wrist, and only the left wrist, is lifted well above its resting height."""
    k = keypoints_of(frames)
    lifted = k[:, [kp.R_WRIST, kp.L_WRIST], 1] < k[:1, [kp.R_WRIST, kp.L_WRIST], 1] - 0.05
    return int((lifted[:, 0] & ~lifted[:, 1]).sum()), int((lifted[:, 1] & ~lifted[:, 0]).sum())


def test_handedness_picks_the_gesturing_hand(long_speech):
    right_only, left_only = raised_alone(run_style(long_speech, gesture_amount=1.0, handedness="right"))
    assert right_only > 20 and left_only == 0
    right_only, left_only = raised_alone(run_style(long_speech, gesture_amount=1.0, handedness="left"))
    assert left_only > 20 and right_only == 0


def test_framing_places_the_presenter(sentence48):
    close = keypoints_of(run_style(sentence48[:RATE], framing="head-and-shoulders"))
    half = keypoints_of(run_style(sentence48[:RATE], framing="half-body"))
    width = lambda k: np.linalg.norm(k[:, kp.face_index(16), :2] - k[:, kp.face_index(0), :2], axis=1).mean()  # noqa: E731
    assert width(close) == pytest.approx(Framing.named("head-and-shoulders").face_width, rel=0.1)
    assert width(half) == pytest.approx(Framing.named("half-body").face_width, rel=0.1)


@pytest.mark.parametrize(("preset", "handedness"), [("lively", "right"), ("lively", "left"), ("lecturer", "both"),
                                                    ("calm", "both")])
def test_limbs_stay_in_frame_and_never_cross(long_speech, preset, handedness):
    k = keypoints_of(run_style(long_speech[: 8 * RATE], **{**vars(PRESETS[preset]), "handedness": handedness}))
    visible = k[..., 2] > 0
    assert ((k[..., :2] >= 0) & (k[..., :2] <= 1))[visible].all()
    for block in (kp.LEFT_HAND, kp.RIGHT_HAND):
        assert (k[:, block, 2] > 0).all()  # half body: the hands are always in view
    # the right wrist stays on the image's left of the left wrist, and the forearms never intersect
    assert (k[:, kp.R_WRIST, 0] < k[:, kp.L_WRIST, 0]).all()
    for f in k:
        assert not _segments_cross(f[kp.R_ELBOW, :2], f[kp.R_WRIST, :2], f[kp.L_ELBOW, :2], f[kp.L_WRIST, :2])


def _segments_cross(a, b, c, d) -> bool:  # noqa: ANN001
    def orient(p, q, r):  # noqa: ANN001, ANN202
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return orient(a, b, c) != orient(a, b, d) and orient(c, d, a) != orient(c, d, b)


def test_gestures_are_varied_not_one_repeated(demo_speech48):
    motion = SpeechMotion(RATE, 25.0, MotionStyle(gesture_amount=1.0, handedness="both"))
    feed(motion, demo_speech48[: 20 * RATE])
    names = list(motion._gestures.history)
    assert len(set(names)) >= 6, names
    assert all(a != b for a, b in zip(names, names[1:], strict=False)), names


def test_set_style_from_another_thread_takes_effect_within_a_second(long_speech):
    motion = SpeechMotion(RATE, 25.0, MotionStyle(gesture_amount=0.0, framing="half-body"))

    def stream(seconds: tuple[float, float]) -> list:
        frames = []
        for start in range(int(seconds[0] * RATE), int(seconds[1] * RATE), 960):
            motion.accept_audio(AudioBlock(long_speech[start : start + 960], RATE, start))
            frames += motion.pop_frames()
        return frames

    before = stream((0, 2))
    thread = threading.Thread(target=motion.set_style,
                              args=(MotionStyle(gesture_amount=1.0, framing="head-and-shoulders"),))
    thread.start()
    thread.join()
    after = stream((2, 3))
    assert after[0].index == before[-1].index + 1  # the stream goes on without a gap
    width = np.linalg.norm(after[0].keypoints[kp.face_index(16), :2] - after[0].keypoints[kp.face_index(0), :2])
    assert width == pytest.approx(0.28, rel=0.1)  # the framing switches at once
    assert motion._knobs["gesture_amount"] > 0.9  # the knob glided to its new value within a second


def test_bad_arguments_are_refused_with_a_reason():
    with pytest.raises(ConfigError, match="multiple of 16 kHz"):
        SpeechMotion(44_100)
    with pytest.raises(ConfigError, match="look-ahead"):
        SpeechMotion(RATE, lookahead=2.0)
    with pytest.raises(ConfigError, match="offline"):
        SpeechMotion(RATE, transcript="hello")
    with pytest.raises(ConfigError, match="gesture_amount"):
        SpeechMotion(RATE, style=replace(MotionStyle(), gesture_amount=3.0))
    motion = SpeechMotion(RATE)
    with pytest.raises(ConfigError, match="expects 48000 Hz"):
        motion.accept_audio(AudioBlock(np.zeros(160, np.float32), 16_000, 0))
    with pytest.raises(ConfigError, match="head_motion"):
        motion.set_style(replace(MotionStyle(), head_motion=-1.0))


def test_offline_mode_with_a_transcript_follows_the_words(sentence48):
    text = "he was not an ill disposed young man"
    motion = SpeechMotion(RATE, 25.0, mode="offline", transcript=text, record_trace=True)
    frames = feed(motion, sentence48)
    assert len(frames) == math.ceil(len(sentence48) * 25 / RATE)
    spoken = [t.viseme for t in motion.trace if t.viseme != "sil"]
    assert len(spoken) > 40 and {"PP", "AA", "DD"} <= set(spoken)
