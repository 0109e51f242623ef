"""The energy-only fallback behind the same interface."""

import math
import threading

import numpy as np
import pytest

from inference.errors import ConfigError
from inference.motion.energy import EnergyMotion
from inference.motion.readout import mouth_opening
from inference.motion.style import MotionStyle
from inference.stages import MotionStream
from inference.types import AudioBlock
from tests.motion.conftest import RATE, feed, keypoints_of


def test_contract_and_lips(sentence48):
    motion = EnergyMotion(RATE, 25.0)
    assert isinstance(motion, MotionStream)
    audio = np.concatenate([sentence48, np.zeros(RATE, np.float32)])
    frames = feed(motion, audio, block=777)
    assert [f.index for f in frames] == list(range(math.ceil(len(audio) * 25 / RATE)))
    opening = mouth_opening(keypoints_of(frames))
    assert opening.max() > 0.05
    end = len(sentence48) / RATE
    assert (opening[int((end + 0.1) * 25) + 1 :] < 0.025).all()  # silence closes the mouth within 100 ms


def test_seed_and_style(sentence48):
    a = keypoints_of(feed(EnergyMotion(RATE, 25.0, MotionStyle(seed=1)), sentence48))
    b = keypoints_of(feed(EnergyMotion(RATE, 25.0, MotionStyle(seed=1)), sentence48))
    c = keypoints_of(feed(EnergyMotion(RATE, 25.0, MotionStyle(seed=2)), sentence48))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    motion = EnergyMotion(RATE, 25.0, MotionStyle(framing="half-body"))
    feed(motion, sentence48[:RATE])
    t = threading.Thread(target=motion.set_style, args=(MotionStyle(framing="head-and-shoulders"),))
    t.start()
    t.join()
    motion.accept_audio(AudioBlock(sentence48[RATE : 2 * RATE], RATE, RATE))
    assert motion.pop_frames()[0].keypoints[0, 1] > 0.35  # the nose moved down into the close-up framing


def test_bad_input_never_raises():
    motion = EnergyMotion(RATE, 25.0)
    x = np.ones(RATE, np.float32) * 3
    x[::7] = np.nan
    frames = feed(motion, x)
    assert len(frames) == 25
    with pytest.raises(ConfigError, match="expects 48000 Hz"):
        motion.accept_audio(AudioBlock(np.zeros(10, np.float32), 8000, 0))
