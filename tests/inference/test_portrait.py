import numpy as np
import pytest
from PIL import Image

from inference.errors import InputFileError
from inference.paths import default_portrait
from inference.sources.portrait import load_portrait


@pytest.fixture
def photo() -> Image.Image:
    return Image.open(default_portrait()).convert("RGB")


def test_bundled_portrait_loads_as_rgb_uint8():
    img = load_portrait(default_portrait())
    assert img.dtype == np.uint8 and img.shape == (512, 512, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_image_modes_become_rgb(tmp_path, photo, mode):
    if mode == "I;16":
        gray = np.asarray(photo.convert("L"), dtype=np.uint16) * 257
        img = Image.fromarray(gray)  # a 16-bit grayscale image
        path = tmp_path / "sixteen.png"
    else:
        img = photo.convert(mode)
        path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    out = load_portrait(path)
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    # the content survives: the face region is not blank and matches the grey level roughly
    ref = np.asarray(photo.convert("L"), dtype=np.float64)
    got = out.astype(np.float64).mean(axis=2)
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] > 0.9


def test_transparent_pixels_become_neutral_grey(tmp_path):
    rgba = np.zeros((100, 100, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[40:60, 40:60, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_portrait(tmp_path / "a.png")
    assert tuple(out[0, 0]) == (128, 128, 128)
    assert tuple(out[50, 50]) == (255, 0, 0)


def test_exif_rotation_is_applied(tmp_path, photo):
    wide = photo.resize((400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    wide.save(tmp_path / "rot.jpg", exif=exif)
    out = load_portrait(tmp_path / "rot.jpg")
    assert out.shape[:2] == (400, 200)


def test_huge_photo_is_reduced(tmp_path):
    big = Image.new("RGB", (8000, 5000), (200, 150, 120))  # 40 megapixels
    big.save(tmp_path / "big.jpg", quality=70)
    out = load_portrait(tmp_path / "big.jpg", max_side=2048)
    assert max(out.shape[:2]) == 2048 and out.shape[1] > out.shape[0]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"not an image at all", "x.png", "not an image"),
        (b"", "empty.jpg", "not an image"),
    ],
)
def test_not_an_image(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        load_portrait(path)


def test_truncated_jpeg(tmp_path, photo):
    photo.save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputFileError, match="damaged or truncated"):
        load_portrait(tmp_path / "cut.jpg")


def test_missing_and_tiny(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        load_portrait(tmp_path / "nope.png")
    Image.new("RGB", (40, 40)).save(tmp_path / "tiny.png")
    with pytest.raises(InputFileError, match="only 40x40"):
        load_portrait(tmp_path / "tiny.png")
