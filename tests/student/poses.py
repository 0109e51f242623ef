"""A tiny deterministic presenter pose generator for the student tests (independent of the motion stage)."""

from __future__ import annotations

import numpy as np

from inference.keypoints import FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND


def _hand(wrist: np.ndarray, angle: float, size: float) -> np.ndarray:
    """21 points: the wrist, then five fingers of four joints fanned around ``angle``."""
    points = [wrist]
    for finger in range(5):
        direction = angle + (finger - 2) * 0.3
        for joint in range(1, 5):
            reach = size * (0.35 + 0.18 * joint)
            points.append(wrist + reach * np.array([np.cos(direction), np.sin(direction)]))
    return np.array(points)


def presenter_pose(t: float, *, sway: float = 1.0, gesture: float = 1.0) -> np.ndarray:
    """One DWPose-134 frame of a half-body presenter at time ``t`` (seconds): float32 ``[134, 3]``."""
    kp = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
    neck = np.array([0.5 + 0.03 * sway * np.sin(0.7 * t), 0.45])
    nose = neck + [0.02 * sway * np.sin(1.3 * t), -0.18]
    shoulders = (neck + [-0.2, 0.01], neck + [0.2, 0.01])
    lift = gesture * (0.5 + 0.5 * np.sin(2.0 * t))
    elbows = (shoulders[0] + [-0.05, 0.22], shoulders[1] + [0.06, 0.22])
    wrists = (elbows[0] + [0.12, 0.12 - 0.25 * lift], elbows[1] + [-0.1, 0.15])
    body = {0: nose, 1: neck, 2: shoulders[0], 3: elbows[0], 4: wrists[0], 5: shoulders[1], 6: elbows[1],
            7: wrists[1], 14: nose + [-0.04, -0.04], 15: nose + [0.04, -0.04], 16: nose + [-0.08, -0.02],
            17: nose + [0.08, -0.02]}
    for index, point in body.items():
        kp[index] = (*point, 0.95)
    angles = np.linspace(0.0, 2.0 * np.pi, 68, endpoint=False)
    face = nose + np.stack([0.085 * np.cos(angles), 0.11 * np.sin(angles)], axis=1)
    kp[FACE] = np.concatenate([face, np.full((68, 1), 0.9)], axis=1)
    for hand, wrist, angle in ((RIGHT_HAND, wrists[0], -1.2 - lift), (LEFT_HAND, wrists[1], 1.9)):
        kp[hand] = np.concatenate([_hand(wrist, angle, 0.05), np.full((21, 1), 0.85)], axis=1)
    kp[:, :2] = np.clip(kp[:, :2], 0.0, 1.0)
    return kp


def presenter_clip(frames: int, fps: float = 25.0) -> np.ndarray:
    """``frames`` consecutive poses, float32 ``[frames, 134, 3]``."""
    return np.stack([presenter_pose(i / fps) for i in range(frames)])


def with_an_arm_below_the_frame(clip: np.ndarray) -> np.ndarray:
    """``clip`` ``[F, 134, 3]`` with the right elbow, wrist and hand moved 0.6 frame heights down: the points that
    leave the frame get confidence 0 and keep their position, as the motion rig gives them."""
    out = clip.copy()
    arm = np.r_[3, 4, np.arange(RIGHT_HAND.start, RIGHT_HAND.stop)]
    out[:, arm, 1] += 0.6
    outside = (out[:, :, :2] < 0).any(axis=2) | (out[:, :, :2] > 1).any(axis=2)
    out[:, :, 2][outside] = 0.0
    return out
