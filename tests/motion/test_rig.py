"""The presenter rig: face proportions, iBUG order, expression controls, arms and hands."""

import numpy as np
import pytest

from inference import keypoints as kp
from inference.motion.hand_shapes import HAND_SHAPES, HandShape, hand_points
from inference.motion.readout import brow_height, eye_opening, mouth_opening, mouth_width
from inference.motion.rig import (
    FOREARM,
    SHOULDER_HALF_WIDTH,
    UPPER_ARM,
    ArmControls,
    Framing,
    RigControls,
    arm_chain,
    pose_keypoints,
)

HALF = Framing.named("half-body")
CLOSE = Framing.named("head-and-shoulders")


def face(k: np.ndarray) -> np.ndarray:
    return k[kp.FACE, :2]


def test_neutral_face_has_human_proportions():
    f = face(pose_keypoints(RigControls(), CLOSE))
    width = np.linalg.norm(f[16] - f[0])
    eyes_y = f[36:48, 1].mean()
    nose_y, mouth_y, chin_y = f[33, 1], f[48:68, 1].mean(), f[8, 1]
    brow_y = f[17:27, 1].mean()
    assert eyes_y < nose_y < mouth_y < chin_y
    # thirds: brow→nose base about equal to nose base→chin; the mouth sits well below the nose
    assert 0.85 < (chin_y - nose_y) / (nose_y - brow_y) < 1.15
    assert (mouth_y - nose_y) / width > 0.12
    # a rounded chin, not a point: the jaw points beside the chin are nearly as low as the chin
    assert (chin_y - f[6, 1]) / width < 0.13
    assert 0.3 < np.linalg.norm(f[54] - f[48]) / width < 0.42  # mouth about a third of the face


def test_ibug_left_right_order():
    f = face(pose_keypoints(RigControls(), CLOSE))
    assert f[0, 0] < f[8, 0] < f[16, 0]  # jaw runs from the image left to the right
    assert f[36, 0] < f[39, 0] < f[42, 0] < f[45, 0]  # right eye (outer, inner) then left eye (inner, outer)
    assert f[17, 0] < f[21, 0] < f[22, 0] < f[26, 0]
    assert f[48, 0] < f[51, 0] < f[54, 0] and f[51, 1] < f[57, 1]
    assert f[27, 1] < f[30, 1] and abs(f[30, 0] - f[8, 0]) < 1e-6


def test_neck_is_short_and_shoulders_level():
    k = pose_keypoints(RigControls(), CLOSE)
    f = face(k)
    width = np.linalg.norm(f[16] - f[0])
    chin_to_neck = (k[kp.NECK, 1] - f[8, 1]) / width
    assert 0.35 < chin_to_neck < 0.7
    assert abs(k[kp.R_SHOULDER, 1] - k[kp.L_SHOULDER, 1]) < 1e-6
    assert np.allclose(k[kp.NECK, :2], (k[kp.R_SHOULDER, :2] + k[kp.L_SHOULDER, :2]) / 2)


def test_half_body_rest_shows_both_hands_inside_the_frame():
    k = pose_keypoints(RigControls(), HALF)
    for block in (kp.LEFT_HAND, kp.RIGHT_HAND):
        hand = k[block]
        assert (hand[:, 2] > 0).all()
        assert (hand[:, :2] > 0.02).all() and (hand[:, :2] < 0.98).all()
    assert k[kp.R_WRIST, 0] < 0.5 < k[kp.L_WRIST, 0]  # each hand on its own side


def test_head_and_shoulders_keeps_hands_out_of_the_close_up():
    k = pose_keypoints(RigControls(), CLOSE)
    assert (k[kp.RIGHT_HAND, 2] == 0).all() and (k[kp.LEFT_HAND, 2] == 0).all()
    assert (k[kp.UNDRIVEN, 2] == 0).all()


def test_expression_controls_move_the_right_points():
    neutral = pose_keypoints(RigControls(), CLOSE)
    assert mouth_opening(neutral) < 0.015
    opened = [mouth_opening(pose_keypoints(RigControls(jaw_open=j), CLOSE)) for j in (0.25, 0.5, 1.0)]
    assert opened[0] < opened[1] < opened[2] and opened[2] > 0.15
    assert mouth_width(pose_keypoints(RigControls(lip_round=1.0), CLOSE)) < 0.8 * mouth_width(neutral)
    assert mouth_width(pose_keypoints(RigControls(lip_width=1.0), CLOSE)) > mouth_width(neutral)
    assert mouth_opening(pose_keypoints(RigControls(jaw_open=0.3, lip_press=1.0), CLOSE)) < 0.02
    assert eye_opening(pose_keypoints(RigControls(blink=1.0), CLOSE)) < 0.2 * eye_opening(neutral)
    assert brow_height(pose_keypoints(RigControls(brow_raise=1.0), CLOSE)) > brow_height(neutral) + 0.03


def test_head_rotation_signs():
    neutral = pose_keypoints(RigControls(), CLOSE)
    turned = pose_keypoints(RigControls(head_yaw=0.4), CLOSE)
    nodded = pose_keypoints(RigControls(head_pitch=0.3), CLOSE)
    nose = kp.face_index(30)
    assert turned[nose, 0] > neutral[nose, 0]
    # the nose moves down relative to the eyes when the head nods down
    eyes = slice(kp.face_index(36), kp.face_index(47) + 1)
    assert nodded[nose, 1] - nodded[eyes, 1].mean() < neutral[nose, 1] - neutral[eyes, 1].mean() + 0.02
    assert nodded[nose, 1] > neutral[nose, 1]


def test_arm_chain_keeps_bone_lengths():
    shoulder = np.array([SHOULDER_HALF_WIDTH, 0.0, 0.0])
    for arm in (ArmControls(), ArmControls(spread=0.5, lift=0.8, twist=-0.3, elbow=2.2)):
        elbow, wrist, frame = arm_chain(arm, shoulder)
        assert np.linalg.norm(elbow - shoulder) == pytest.approx(UPPER_ARM)
        assert np.linalg.norm(wrist - elbow) == pytest.approx(FOREARM)
        assert np.allclose(frame @ frame.T, np.eye(3), atol=1e-9)


def test_hand_vocabulary_is_varied_and_hand_like():
    shapes = {name: hand_points(shape) for name, shape in HAND_SHAPES.items()}
    assert len(shapes) >= 8
    names = list(shapes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(shapes[a] - shapes[b]).max() > 0.05, (a, b)
    tip_distance = {n: np.linalg.norm(p[[8, 12, 16, 20]], axis=1).mean() for n, p in shapes.items()}
    assert tip_distance["fist"] < 0.8 * tip_distance["open"]
    point = shapes["point"]
    assert np.linalg.norm(point[8]) > 1.2 * np.linalg.norm(point[12])  # the index stays out, the others fold
    for p in shapes.values():  # finger bones keep their lengths whatever the curl
        assert np.linalg.norm(p[12] - p[11]) == pytest.approx(0.16)
    half = HAND_SHAPES["open"].blend(HAND_SHAPES["fist"], 0.5)
    assert isinstance(half, HandShape) and half.curl[2] == pytest.approx(0.51)


def test_every_pose_keeps_points_in_range():
    rng = np.random.default_rng(0)
    for _ in range(50):
        controls = RigControls(
            jaw_open=rng.uniform(-1, 2), lip_width=rng.uniform(-2, 2), blink=rng.uniform(-1, 2),
            head_yaw=rng.uniform(-2, 2), head_pitch=rng.uniform(-2, 2), head_roll=rng.uniform(-2, 2),
            arms=(ArmControls(*rng.uniform(-3, 3, 6)), ArmControls(*rng.uniform(-3, 3, 6))),
        )
        k = pose_keypoints(controls, HALF)
        kp.validate_keypoints(k)
        visible = k[k[:, 2] > 0]
        assert ((visible[:, :2] >= 0) & (visible[:, :2] <= 1)).all()
        assert (np.abs(k[:, :2]) <= 2).all()


def test_unknown_framing_is_refused():
    with pytest.raises(ValueError, match="unknown framing"):
        Framing.named("full-body")
