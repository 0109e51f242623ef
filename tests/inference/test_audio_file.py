from pathlib import Path

import av
import numpy as np
import pytest

from inference.errors import InputFileError
from inference.sources.audio_file import AudioFileSource, load_audio
from tests.conftest import write_wav


def _encode(path: Path, codec: str, samples: np.ndarray, rate: int, layout: str = "mono") -> Path:
    channels = 2 if layout == "stereo" else 1
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        data = np.repeat(samples[None, :], channels, axis=0).astype(np.float32)
        fmt = "fltp"
        frame_size = 1152 if codec == "libmp3lame" else 4096
        for start in range(0, data.shape[1], frame_size):
            chunk = np.ascontiguousarray(data[:, start : start + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk if codec != "flac" else (chunk[:1] * 32767).astype(np.int16),
                                               format=fmt if codec != "flac" else "s16", layout=layout if codec != "flac" else "mono")
            frame.sample_rate = rate
            frame.pts = start
            for p in stream.encode(frame):
                container.mux(p)
        for p in stream.encode():
            container.mux(p)
    return path


def _tone(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(("rate", "channels"), [(48_000, 1), (44_100, 2), (8_000, 1), (22_050, 2)])
def test_wav_any_rate_and_channels_is_resampled_to_48k_mono(tmp_path, rate, channels):
    path = write_wav(tmp_path / "a.wav", _tone(rate, 1.5), rate, channels)
    source = AudioFileSource(path)
    assert source.total_samples == pytest.approx(72_000, abs=10)
    first = source.read()
    assert first.samples.dtype == np.float32 and first.samples.shape == (960,) and first.start == 0
    rest = source.read_all()
    total = first.samples.size + rest.size
    assert total == pytest.approx(72_000, abs=64)
    # The 440 Hz tone survives resampling: its spectral peak is where it should be.
    x = np.concatenate([first.samples, rest])[4800:-4800]
    peak = np.argmax(np.abs(np.fft.rfft(x))) * 48_000 / x.size
    assert peak == pytest.approx(440, abs=3)
    assert 0.4 < np.abs(x).max() < 0.6


def test_blocks_are_contiguous_and_numbered(tmp_path):
    source = AudioFileSource(write_wav(tmp_path / "a.wav", _tone(16_000, 0.5), 16_000))
    position = 0
    while (block := source.read()) is not None:
        assert block.start == position and block.sample_rate == 48_000
        position = block.end
    assert position == 24_000
    assert source.read() is None


@pytest.mark.parametrize(("codec", "name"), [("flac", "a.flac"), ("libmp3lame", "a.mp3")])
def test_flac_and_mp3(tmp_path, codec, name):
    path = _encode(tmp_path / name, codec, _tone(44_100, 2.0), 44_100)
    audio = load_audio(path)
    assert audio.size == pytest.approx(96_000, rel=0.03)
    assert np.abs(audio[10_000:-10_000]).max() > 0.3


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        AudioFileSource(tmp_path / "nope.wav")


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are my talking points, not audio\n" * 20)
    with pytest.raises(InputFileError, match="not a readable audio file"):
        AudioFileSource(path)


def test_zero_length_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        AudioFileSource(path)


def test_wav_with_no_samples(tmp_path):
    path = write_wav(tmp_path / "silent.wav", np.zeros(0), 16_000)
    with pytest.raises(InputFileError, match="less than 40 ms"):
        AudioFileSource(path)


def test_truncated_wav(tmp_path):
    full = write_wav(tmp_path / "full.wav", _tone(16_000, 2.0), 16_000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 10_000])
    with pytest.raises(InputFileError, match="truncated"):
        AudioFileSource(cut)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(InputFileError, match="folder"):
        AudioFileSource(tmp_path)
