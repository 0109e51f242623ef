"""Fixtures of the custom-op tests: a freshly seeded generator, and the built op library."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
import pytest

from inference import ops


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fresh seed every run; the seed is printed, so a failure can be replayed with
    ``PODIUM_TEST_SEED=<seed>``."""
    seed = int(os.environ.get("PODIUM_TEST_SEED") or secrets.randbits(32))
    print(f"random seed: {seed}")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def op_library() -> Path:
    """The built op library; the tests fail (never skip) when it is missing, since setup builds it."""
    ok, reason = ops.availability()
    if not ok:
        pytest.fail(f"the custom op cannot be used: {reason}")
    path = ops.library_path()
    assert path is not None
    return path
