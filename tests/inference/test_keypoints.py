import numpy as np
import pytest

from inference import keypoints as kp
from inference.errors import ConfigError
from inference.types import KeypointFrame


def test_layout_covers_134_points_without_overlap():
    covered = np.zeros(kp.NUM_KEYPOINTS, dtype=int)
    for block in (kp.BODY, kp.FEET, kp.FACE, kp.LEFT_HAND, kp.RIGHT_HAND):
        covered[block] += 1
    assert (covered == 1).all()
    assert len(kp.HAND_BONES) == 20
    assert {i for bone in kp.HAND_BONES for i in bone} == set(range(21))


def test_valid_frame_is_returned_as_float32():
    frame = np.random.default_rng(0).uniform(0, 1, (134, 3))
    out = kp.validate_keypoints(frame)
    assert out.dtype == np.float32 and out.flags.c_contiguous


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((133, 3)), "shape"),
        (np.zeros((134, 2)), "shape"),
        (np.zeros((134, 3), dtype=np.int32), "floating"),
        (np.full((134, 3), np.nan), "NaN"),
        (np.concatenate([np.zeros((134, 2)), np.full((134, 1), 1.5)], axis=1), "confidences"),
    ],
)
def test_bad_frames_are_rejected_with_a_message(bad, message):
    with pytest.raises(ConfigError, match=message):
        kp.validate_keypoints(bad)
    with pytest.raises(ConfigError):
        KeypointFrame(keypoints=bad, index=0, fps=25.0)


def test_sequence_validation():
    seq = np.zeros((5, 134, 3), dtype=np.float64)
    assert kp.validate_sequence(seq).dtype == np.float32
    with pytest.raises(ConfigError, match="shape"):
        kp.validate_sequence(np.zeros((134, 3)))
