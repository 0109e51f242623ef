"""Every kind of portrait a user may bring gives a clear message or a correct result, never a crash."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from inference.errors import InputFileError
from inference.paths import ASSETS_DIR
from inference.render.photo_rig import PhotoRigRenderer, PortraitFitError
from inference.render.photo_rig import topology as topo
from inference.render.photo_rig.detect import _check_face, detect_portrait, face_roll_degrees, face_yaw_degrees
from inference.render.photo_rig.renderer import prepare_portrait
from inference.sources.portrait import load_portrait
from tests.photo_rig.conftest import SIZE, keypoint_frame


def _upright_face_found(rig) -> None:  # noqa: ANN001
    face = rig.landmarks.face
    assert abs(face_roll_degrees(face)) < 15
    assert face[topo.CHIN, 1] > face[topo.NOSE_TIP, 1] > face[topo.RIGHT_EYE_CORNERS[0], 1]


def test_no_face_is_refused_with_advice():
    rng = np.random.default_rng(1)
    landscape = cv2.GaussianBlur(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), (0, 0), 8)
    with pytest.raises(PortraitFitError, match="No face was found.*facing the camera"):
        prepare_portrait(landscape, SIZE, use_cache=False)


def test_several_faces_animate_the_largest_and_say_so(astronaut):
    hopper = load_portrait(ASSETS_DIR / "portraits" / "grace_hopper.jpg")
    smaller = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    group = np.full((600, 896, 3), 200, np.uint8)
    group[:, :512] = hopper[:600, :512]
    group[200:584, 512:896] = smaller
    rig = prepare_portrait(group, SIZE, use_cache=False)
    assert rig.landmarks.faces_found == 2
    assert any("2 faces" in n and "largest" in n for n in rig.notes)
    assert rig.landmarks.face[topo.NOSE_TIP, 0] < 512  # Grace Hopper's face, the larger one


def test_a_face_too_small_to_animate_is_refused(astronaut):
    canvas = np.full((1200, 1600, 3), 120, np.uint8)
    canvas[600:640, 800:840] = cv2.resize(astronaut, (40, 40), interpolation=cv2.INTER_AREA)
    with pytest.raises(PortraitFitError, match="crop the photo closer|too small"):
        prepare_portrait(canvas, SIZE, use_cache=False)


def test_small_faces_are_refused_or_noted_by_size(astronaut_rig):
    face = astronaut_rig.landmarks.face
    tiny = face.copy()
    tiny[:, :2] *= 30.0 / astronaut_rig.landmarks.face_width
    with pytest.raises(PortraitFitError, match="only 30 pixels wide"):
        _check_face(tiny, 1)
    notes = _check_face(face, 1)  # the bundled portrait's face is 92 px wide: animated, with a note
    assert any("soft" in n for n in notes)


def _turned(face: np.ndarray, degrees: float) -> np.ndarray:
    """The mesh turned about the vertical axis through its centre (orthographic camera)."""
    a = math.radians(degrees)
    centre = face.mean(axis=0)
    x, z = face[:, 0] - centre[0], face[:, 2] - centre[2]
    out = face.copy()
    out[:, 0] = centre[0] + x * math.cos(a) - z * math.sin(a)
    out[:, 2] = centre[2] + x * math.sin(a) + z * math.cos(a)
    return out


def test_a_profile_view_is_refused_and_a_slight_turn_is_noted(astronaut_rig):
    face = astronaut_rig.landmarks.face
    assert abs(face_yaw_degrees(face)) < 10
    assert abs(face_yaw_degrees(_turned(face, 30)) - 30) < 8  # the estimate tracks the true turn
    with pytest.raises(PortraitFitError, match="turned to the side"):
        _check_face(_turned(face, 70), 1)
    assert any("turned" in n for n in _check_face(_turned(face, 28), 1))


def test_a_sideways_photo_is_refused_with_advice(astronaut):
    with pytest.raises(PortraitFitError, match="sideways or upside down.*Rotate"):
        prepare_portrait(np.ascontiguousarray(np.rot90(astronaut)), SIZE, use_cache=False)


def test_a_40_megapixel_photo_is_framed_correctly(astronaut):
    huge = cv2.resize(astronaut, (7300, 7300), interpolation=cv2.INTER_LINEAR)[:5500]  # 40 megapixels
    rig = prepare_portrait(huge, SIZE, use_cache=False)
    assert rig.framed.rgb.shape == (512, 512, 3)
    _upright_face_found(rig)
    # the face lands where it lands for the original photo
    small = prepare_portrait(astronaut, SIZE, use_cache=False)
    assert np.abs(rig.framed.face[:, :2] - small.framed.face[:, :2]).mean() < 3.0


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "RGBA", "P"])
def test_any_image_mode_loads_and_animates(tmp_path, astronaut, mode):
    photo = Image.fromarray(astronaut)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    elif mode == "RGBA":
        rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
        rgba[:40, :, 3] = 0  # a transparent band at the top
        img = Image.fromarray(rgba, "RGBA")
    else:
        img = photo.convert(mode)
    path = tmp_path / ("photo.jpg" if mode == "CMYK" else "photo.png")
    img.save(path)
    renderer = PhotoRigRenderer(SIZE, use_cache=False)
    renderer.set_reference(load_portrait(path))
    _upright_face_found(renderer.rig)
    frame = renderer.render([keypoint_frame(0, jaw_open=0.5)])[0]
    assert frame.rgb.shape == (512, 512, 3)


def test_exif_rotation_gives_an_upright_face(tmp_path, astronaut):
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut, k=1)))  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with the tag that says "rotate 90° clockwise to display"
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    rig = prepare_portrait(load_portrait(tmp_path / "rotated.jpg"), SIZE, use_cache=False)
    _upright_face_found(rig)


def test_a_corrupt_file_gives_a_message_and_keeps_the_previous_portrait(tmp_path, renderer):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(InputFileError, match="damaged|not an image"):
        renderer.set_reference(load_portrait(broken))
    assert renderer.render([keypoint_frame(0)])  # the portrait it had still animates


def test_a_portrait_without_a_face_keeps_the_previous_portrait(renderer):
    before = renderer.rig
    with pytest.raises(PortraitFitError):
        renderer.set_reference(np.full((300, 300, 3), 90, np.uint8))
    assert renderer.rig is before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda a: a.astype(np.float64) / 255.0, None),  # 0..1 floats
        (lambda a: a.astype(np.uint16) * 257, None),  # 16-bit
        (lambda a: a[..., 0], None),  # grey
        (lambda a: np.dstack([a, np.full(a.shape[:2], 255, np.uint8)]), None),  # RGBA
        (lambda a: a[:10, :10], "at least 16x16"),
        (lambda a: a.ravel(), "colour image"),
        (lambda a: a.astype(np.float32) * 3.0, "8-bit image"),  # floats beyond 0..1
    ],
)
def test_arrays_of_any_layout_are_converted_or_refused(astronaut, astronaut_rig, make, message):
    from inference.render.photo_rig import cache

    array = make(astronaut)
    if message is not None:
        with pytest.raises(PortraitFitError, match=message):
            prepare_portrait(array, SIZE)
        return
    from inference.render.photo_rig.renderer import _as_rgb

    cache.save_fit(cache.portrait_key(_as_rgb(array)), astronaut_rig.landmarks)  # skip detection: test conversion
    rig = prepare_portrait(array, SIZE)
    assert rig.framed.rgb.shape == (512, 512, 3) and rig.framed.rgb.dtype == np.uint8


def test_detection_reports_the_person_and_shoulders(astronaut_rig):
    lm = astronaut_rig.landmarks
    assert lm.face.shape == (478, 3) and lm.faces_found == 1
    assert lm.pose[[11, 12], 2].min() > 0.5  # both shoulders seen
    assert lm.mask.dtype == np.uint8 and 0.2 < (lm.mask > 127).mean() < 0.9


def test_detect_works_on_a_tightly_cropped_selfie(astronaut):
    selfie = astronaut[60:220, 150:300]  # forehead to chin, no shoulders
    lm = detect_portrait(np.ascontiguousarray(selfie))
    rig = prepare_portrait(np.ascontiguousarray(selfie), SIZE, use_cache=False)
    assert lm.pose[[11, 12], 2].max() <= 1.0
    assert rig.framed.rgb.shape == (512, 512, 3)
    assert any("cropped too tightly" in n for n in rig.notes)
