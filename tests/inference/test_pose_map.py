import numpy as np

from inference import keypoints as kp
from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.render.pose_map import FULL, PoseMapRenderer, PoseMapStyle, draw_pose_map
from inference.types import KeypointFrame

LIMBS = PoseMapStyle(limbs_leaving_frame=True)


def _single_point(index: int, conf: float) -> np.ndarray:
    k = np.zeros((134, 3), dtype=np.float32)
    k[index] = (0.5, 0.5, conf)
    return k


def test_face_dot_brightness_follows_confidence():
    bright = draw_pose_map(_single_point(kp.face_index(30), 1.0), (64, 64))
    dim = draw_pose_map(_single_point(kp.face_index(30), 0.5), (64, 64))
    assert bright[32, 32].tolist() == [255, 255, 255]
    assert abs(int(dim[32, 32, 0]) - 128) <= 2
    assert bright.sum() > 0 and draw_pose_map(_single_point(kp.face_index(30), 0.0), (64, 64)).sum() == 0


def test_undriven_points_are_never_drawn():
    assert draw_pose_map(_single_point(kp.R_KNEE, 1.0), (64, 64)).sum() == 0


def test_hand_joints_are_blue_and_limbs_need_confidence():
    hand = draw_pose_map(_single_point(kp.LEFT_HAND.start + 3, 1.0), (64, 64))
    assert hand[32, 32].tolist() == [0, 0, 255]
    k = np.zeros((134, 3), dtype=np.float32)
    k[kp.NECK] = (0.5, 0.2, 1.0)
    k[kp.R_SHOULDER] = (0.2, 0.25, 0.2)  # below the limb threshold: joint drawn, limb not
    img = draw_pose_map(k, (100, 100))
    assert img[22, 35].sum() == 0  # midway along the would-be limb


def test_rig_pose_lands_inside_the_frame_and_renders():
    k = pose_keypoints(RigControls(jaw_open=0.8), Framing.named("half-body"))
    visible = k[k[:, 2] > 0]
    assert ((visible[:, :2] >= 0) & (visible[:, :2] <= 1)).all()
    renderer = PoseMapRenderer((256, 256))
    out = renderer.render([KeypointFrame(k, index=3, fps=25.0)])
    assert len(out) == 1 and out[0].index == 3 and out[0].rgb.shape == (256, 256, 3)
    assert (out[0].rgb > 0).mean() > 0.01


def test_overlay_keeps_portrait_visible():
    portrait = np.full((300, 200, 3), 200, dtype=np.uint8)
    renderer = PoseMapRenderer((128, 128), overlay_reference=True)
    renderer.set_reference(portrait)
    blank = np.zeros((134, 3), dtype=np.float32)
    rgb = renderer.render([KeypointFrame(blank, 0, 25.0)])[0].rgb
    assert (rgb == 70).all()


def test_pose_maps_are_the_ones_the_bundled_pack_was_trained_on():
    """The student reads these images: a change to how they are drawn, even of a pixel, is a change to its input.
    The digest is that of the maps drawn element by element (before the drawing was vectorised) on a fixed clip;
    the vectorised drawing matched them bit for bit on 3,000 maps, edge-case confidences included."""
    import hashlib

    from tests.student.poses import presenter_clip

    digest = hashlib.sha256()
    for size in ((256, 256), (512, 512)):
        for frame in presenter_clip(48):
            digest.update(draw_pose_map(frame, size).tobytes())
    assert digest.hexdigest() == "68f2d0a6ec090ce4de82bd48de84973cf162b8449dc2f3bf36b2b107746647d9"


def _shoulder_and_elbow(elbow: tuple[float, float], elbow_conf: float) -> np.ndarray:
    k = np.zeros((134, 3), dtype=np.float32)
    k[kp.R_SHOULDER] = (0.3, 0.8, 0.95)
    k[kp.R_ELBOW] = (*elbow, elbow_conf)
    return k


def test_a_limb_leaving_the_frame_is_drawn_to_the_frames_edge_only_when_asked():
    """The elbow of a head-and-shoulders framing lies below the picture (confidence 0, position kept): the upper
    arm shows in the maps of a model trained with ``limbs_leaving_frame``, and nowhere else."""
    below = _shoulder_and_elbow((0.3, 1.4), 0.0)
    leaving = draw_pose_map(below, (100, 100), style=LIMBS)
    dwpose = draw_pose_map(below, (100, 100))
    column = leaving[86:100, 28:33].max(axis=(1, 2))  # the arm between the shoulder's dot and the bottom edge
    assert (column > 0).all() and dwpose[86:100, 28:33].sum() == 0
    assert (leaving[:70] == 0).all()  # nothing drawn above the shoulder
    # as bright as a limb whose two ends had the shoulder's confidence
    both_seen = draw_pose_map(_shoulder_and_elbow((0.3, 0.99), 0.95), (100, 100))
    assert abs(int(leaving[95, 30].max()) - int(both_seen[95, 30].max())) <= 2
    # an unseen point inside the frame (an undetected joint at the origin) is not a limb leaving the frame
    undetected = _shoulder_and_elbow((0.0, 0.0), 0.0)
    assert (draw_pose_map(undetected, (100, 100), style=LIMBS) == dwpose).all()
    # a weak shoulder does not start a limb either
    weak = below.copy()
    weak[kp.R_SHOULDER, 2] = 0.2
    assert (draw_pose_map(weak, (100, 100), style=LIMBS) == draw_pose_map(weak, (100, 100))).all()


def test_a_finger_leaving_the_frame_is_drawn_when_asked():
    k = np.zeros((134, 3), dtype=np.float32)
    base = kp.LEFT_HAND.start
    k[base + 0] = (0.5, 0.9, 0.9)  # the wrist, in the frame
    k[base + 1] = (0.5, 1.3, 0.0)  # the thumb's first joint, below it
    leaving = draw_pose_map(k, (100, 100), style=LIMBS)
    assert leaving[96:100, 49:52].max() > 0 and draw_pose_map(k, (100, 100))[96:100, 49:52].max() == 0


def test_the_rigs_close_framing_shows_its_arms_only_with_limbs_leaving_the_frame():
    k = pose_keypoints(RigControls(), Framing.named("head-and-shoulders"))
    assert k[kp.R_ELBOW, 2] == 0 and k[kp.R_ELBOW, 1] > 1  # the elbow is below the picture
    bottom = slice(230, 256)
    leaving = draw_pose_map(k, (256, 256), style=LIMBS)
    assert leaving[bottom].sum() > 0 and draw_pose_map(k, (256, 256))[bottom].sum() == 0
    debug_view = PoseMapRenderer((256, 256)).render([KeypointFrame(k, 0, 25.0)])[0].rgb
    assert (debug_view == draw_pose_map(k, (256, 256), style=FULL)).all() and debug_view[bottom].sum() > 0


def _mouth(opening: float) -> np.ndarray:
    """A face's lips only: the outer lip an ellipse 40 px wide at 256, the inner lip one ``opening`` high."""
    k = np.zeros((134, 3), np.float32)
    outer = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    inner = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    for points, angles, half_height in ((kp.FACE_OUTER_LIPS, outer, 0.05), (kp.FACE_INNER_LIPS, inner, opening)):
        index = [kp.face_index(i) for i in points]
        k[index, 0] = 0.5 + 0.08 * np.cos(angles)
        k[index, 1] = 0.5 + half_height * np.sin(angles)
        k[index, 2] = 0.9
    return k


def test_face_contours_show_an_open_mouth_that_dwpose_dots_blur():
    """At 256 px an open and a nearly shut mouth differ in the contour style by their filled opening; the dots
    of the DWPose style are not drawn for the lips (or eyes) then."""
    contours = PoseMapStyle(face_contours=True)
    open_mouth = draw_pose_map(_mouth(0.03), (256, 256), style=contours)
    shut = draw_pose_map(_mouth(0.002), (256, 256), style=contours)
    fill = np.array([150, 0, 90]) * 0.9
    inside = np.abs(open_mouth[124:132, 118:138].astype(float) - fill).max(axis=2) <= 2
    assert inside.mean() > 0.5 and not (np.abs(shut[124:132, 118:138].astype(float) - fill).max(axis=2) <= 2).any()
    assert open_mouth[128, 128].tolist() != [255, 255, 255]  # no white dot over the opening
    # a contour with an unseen point is left out, and so are its dots
    hidden = _mouth(0.03)
    hidden[kp.face_index(60), 2] = 0.0
    drawn = draw_pose_map(hidden, (256, 256), style=contours)
    assert not (np.abs(drawn.astype(float) - fill).max(axis=2) <= 2).any()
    # the DWPose style draws the same lips as white dots, unchanged
    dots = draw_pose_map(_mouth(0.03), (256, 256))
    assert (dots[dots.any(axis=2)] == dots[dots.any(axis=2)][:, :1]).all()  # grey levels only
