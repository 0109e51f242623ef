"""Keypoint streams on disk (.npz and .json): round trips, broken files, replay against audio."""

import json
import os
import zipfile

import numpy as np
import pytest

from inference.errors import ConfigError, InputFileError, OutputFileError
from inference.keypoint_io import KeypointStream, load_keypoints, save_keypoints
from inference.motion.replay import ReplayMotion
from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.types import AudioBlock, KeypointFrame
from tests.motion.conftest import RATE, feed


@pytest.fixture
def stream() -> KeypointStream:
    frames = [pose_keypoints(RigControls(jaw_open=j, head_yaw=0.1 * j), Framing.named("half-body"))
              for j in np.linspace(0, 1, 12)]
    return KeypointStream(np.stack(frames), 25.0, {"seed": 7, "source": "test", "style": {"framing": "half-body"}})


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_round_trip(tmp_path, stream, suffix):
    path = save_keypoints(tmp_path / f"motion{suffix}", stream)
    loaded = load_keypoints(path)
    assert loaded.fps == 25.0 and loaded.metadata == stream.metadata and len(loaded) == 12
    tolerance = 0 if suffix == ".npz" else 1e-5
    assert np.allclose(loaded.keypoints, stream.keypoints, atol=tolerance, rtol=0)
    assert [f.index for f in loaded.frames()] == list(range(12))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_json_is_readable_and_editable(tmp_path, stream):
    path = save_keypoints(tmp_path / "motion.json", stream)
    body = json.loads(path.read_text())
    assert body["format"] == "podium-keypoints" and body["layout"] == "dwpose-134" and body["fps"] == 25.0
    body["frames"][0][0][0] = 0.25  # move the nose of frame 0 by hand
    path.write_text(json.dumps(body))
    assert load_keypoints(path).keypoints[0, 0, 0] == pytest.approx(0.25)


def test_from_frames_checks_order_and_rate(stream):
    frames = stream.frames()
    assert np.array_equal(KeypointStream.from_frames(frames).keypoints, stream.keypoints)
    with pytest.raises(ConfigError, match="no keypoint frames"):
        KeypointStream.from_frames([])
    with pytest.raises(ConfigError, match="out of order"):
        KeypointStream.from_frames([frames[1], frames[0]])
    with pytest.raises(ConfigError, match="fps"):
        KeypointStream.from_frames([frames[0], KeypointFrame(frames[1].keypoints, 1, 30.0)])


def write(tmp_path, name: str, data: bytes | str):  # noqa: ANN201
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def npz_bytes(tmp_path, **arrays) -> bytes:  # noqa: ANN003
    np.savez(tmp_path / "tmp.npz", **arrays)
    data = (tmp_path / "tmp.npz").read_bytes()
    (tmp_path / "tmp.npz").unlink()
    return data


GOOD_HEADER = json.dumps({"format": "podium-keypoints", "version": 1, "layout": "dwpose-134", "metadata": {}})


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.npz", None, "no such file"),
    ("empty.npz", b"", "empty"),
    ("motion.txt", "hello", "unsupported type .txt"),
    ("garbage.npz", b"\x00\x01 not a zip at all", "damaged or not an .npz"),
    ("garbage.json", "{ not json", "not valid JSON"),
    ("binary.json", b"\xff\xfe\x00\x81", "not a text file"),
    ("other.json", json.dumps({"hello": 1}), "no frames or fps"),
    ("shape.json", json.dumps({"format": "podium-keypoints", "version": 1, "fps": 25, "frames": [[[0, 0, 1]]]}),
     "expected (T, 134, 3)"),
    ("words.json", json.dumps({"format": "podium-keypoints", "version": 1, "fps": 25, "frames": "abc"}),
     "not a [T, 134, 3] array"),
    ("fps.json", json.dumps({"format": "podium-keypoints", "version": 1, "fps": "fast", "frames": []}),
     "fps is not a number"),
    ("zero_fps.json", json.dumps({"format": "podium-keypoints", "version": 1, "fps": 0,
                                  "frames": np.zeros((1, 134, 3)).tolist()}), "invalid keypoints"),
    ("nan.json", json.dumps({"format": "podium-keypoints", "version": 1, "fps": 25,
                             "frames": np.full((1, 134, 3), 0.5).tolist()}).replace("0.5", "NaN", 1),
     "NaN or infinite"),
    ("conf.json", json.dumps({"format": "podium-keypoints", "version": 1, "fps": 25,
                              "frames": np.full((1, 134, 3), 2.0).tolist()}), "confidences must lie in 0..1"),
    ("tag.json", json.dumps({"format": "something-else", "version": 1, "fps": 25, "frames": []}),
     "format 'something-else'"),
    ("future.json", json.dumps({"format": "podium-keypoints", "version": 99, "fps": 25, "frames": []}),
     "newer Podium"),
    ("layout.json", json.dumps({"format": "podium-keypoints", "version": 1, "layout": "coco-17", "fps": 25,
                                "frames": []}), "layout 'coco-17'"),
])
def test_broken_files_say_what_is_wrong(tmp_path, name, content, message):
    path = tmp_path / name if content is None else write(tmp_path, name, content)
    with pytest.raises(InputFileError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")) as info:
        load_keypoints(path)
    assert str(path) in str(info.value)


def test_broken_npz_contents(tmp_path):
    kps = np.zeros((2, 134, 3), np.float32)
    cases = {
        "missing.npz": (npz_bytes(tmp_path, keypoints=kps), "missing fps, header"),
        "badfps.npz": (npz_bytes(tmp_path, keypoints=kps, fps=np.array([1, 2]), header=np.array(GOOD_HEADER)),
                       "fps is not a number"),
        "badheader.npz": (npz_bytes(tmp_path, keypoints=kps, fps=np.float64(25), header=np.array("{oops")),
                          "header is not valid JSON"),
        "shape.npz": (npz_bytes(tmp_path, keypoints=np.zeros((2, 17, 3)), fps=np.float64(25),
                                header=np.array(GOOD_HEADER)), "invalid keypoints"),
        "pickle.npz": (npz_bytes(tmp_path, keypoints=np.array([{"a": 1}], dtype=object), fps=np.float64(25),
                                 header=np.array(GOOD_HEADER)), "damaged"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(InputFileError, match=message):
            load_keypoints(write(tmp_path, name, data))


def test_truncated_npz_is_reported(tmp_path, stream):
    path = save_keypoints(tmp_path / "motion.npz", stream)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="damaged"):
        load_keypoints(path)
    with zipfile.ZipFile(tmp_path / "nested.npz", "w") as z:
        z.writestr("hello.txt", "not an array")
    with pytest.raises(InputFileError, match="missing fps, header, keypoints"):
        load_keypoints(tmp_path / "nested.npz")


def test_a_folder_is_not_a_file(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(InputFileError, match="is a folder"):
        load_keypoints(tmp_path / "dir.npz")


def test_saving_refuses_bad_targets_and_leaves_nothing(tmp_path, stream):
    with pytest.raises(OutputFileError, match="unsupported file type"):
        save_keypoints(tmp_path / "motion.csv", stream)
    with pytest.raises(OutputFileError, match="does not exist"):
        save_keypoints(tmp_path / "no" / "such" / "motion.npz", stream)
    bad_meta = KeypointStream(stream.keypoints, 25.0, {"when": object()})
    with pytest.raises(ConfigError, match="cannot be saved as JSON"):
        save_keypoints(tmp_path / "motion.json", bad_meta)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_saving_into_a_read_only_folder(tmp_path, stream):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputFileError, match="not writable"):
            save_keypoints(folder / "motion.npz", stream)
    finally:
        folder.chmod(0o700)


def test_a_failed_write_leaves_the_old_file_intact(tmp_path, stream, monkeypatch):
    path = save_keypoints(tmp_path / "motion.npz", stream)
    before = path.read_bytes()

    def full_disk(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    with pytest.raises(OutputFileError, match="No space left on device"):
        save_keypoints(path, stream)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_replay_follows_the_audio_and_holds_the_last_frame(stream):
    motion = ReplayMotion(stream, RATE)
    audio = np.zeros(int(RATE * 0.7), np.float32)  # 17.5 frames of audio for a 12-frame motion
    frames = feed(motion, audio, captured_at=5.0)
    assert [f.index for f in frames] == list(range(18))
    assert np.array_equal(frames[3].keypoints, stream.keypoints[3])
    assert np.array_equal(frames[17].keypoints, stream.keypoints[11])
    assert frames[0].audio_heard_at is not None
    with pytest.raises(ConfigError, match="expects 48000 Hz"):
        motion.accept_audio(AudioBlock(np.zeros(10, np.float32), 16_000, 0))
    with pytest.raises(ConfigError, match="no frames"):
        ReplayMotion(KeypointStream(np.zeros((0, 134, 3), np.float32), 25.0), RATE)
