"""Shared fixtures for the synthetic-presenter and data-path tests."""

from __future__ import annotations

import numpy as np
import pytest

from inference.motion.rig import Framing, RigControls, pose_keypoints
from training.data.motion_bank import MotionBank, StreamInfo
from training.data.perturb import perturb_stream


@pytest.fixture(scope="session")
def neutral() -> np.ndarray:
    """The rig's rest pose, half-body framing: ``[134, 3]``."""
    return pose_keypoints(RigControls(), Framing.named("half-body"))


@pytest.fixture(scope="session")
def small_bank(neutral: np.ndarray) -> MotionBank:
    """A motion bank without speech (fast): two perturbed 40-frame streams around the rest pose."""
    base = np.repeat(neutral[None], 40, axis=0)
    streams = [perturb_stream(base, np.random.default_rng(s), 25.0, 1.0) for s in (1, 2)]
    infos = [StreamInfo("rest", "default", "half-body", s) for s in (1, 2)]
    return MotionBank(streams, infos, 25.0, "train")
