"""Audio files (WAV, FLAC, MP3, OGG, M4A, ... anything FFmpeg reads) as an audio source.

The file is decoded in a streaming fashion through PyAV and resampled to the
engine's rate, mono, float32, then cut into fixed blocks. The file is checked
when the source is opened, so a missing, empty or non-audio file fails before
any output is created.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from inference.errors import InputFileError
from inference.types import AudioBlock

log = logging.getLogger(__name__)

#: Engine audio rate: sources deliver this, sinks record it; motion resamples to its own rate.
ENGINE_SAMPLE_RATE = 48_000
#: Default block length: 20 ms.
DEFAULT_BLOCK_SECONDS = 0.02
#: Shortest audio a file must hold to be usable (one video frame at 25 fps).
MIN_SECONDS = 0.04

_FIX_FORMAT = "Use a WAV, FLAC, MP3, OGG or M4A file that plays in a media player"


class AudioFileSource:
    """Streams an audio file as :class:`AudioBlock` s of ``block_size`` samples.

    Args:
        path: the audio file.
        sample_rate: output rate (default 48 kHz).
        block_seconds: block length in seconds (default 20 ms).

    Raises:
        InputFileError: the file is missing, unreadable, has no audio stream or no samples.
    """

    def __init__(
        self,
        path: str | Path,
        sample_rate: int = ENGINE_SAMPLE_RATE,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
    ) -> None:
        import av

        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.block_size = max(1, int(round(block_seconds * sample_rate)))
        if not self.path.exists():
            raise InputFileError(self.path, "no such file", "Check the path and try again")
        if self.path.is_dir():
            raise InputFileError(self.path, "is a folder, not an audio file", "Give the path of an audio file")
        if self.path.stat().st_size == 0:
            raise InputFileError(self.path, "the file is empty (0 bytes)", _FIX_FORMAT)
        _check_wav_complete(self.path)
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise InputFileError(self.path, f"not a readable audio file ({_ffmpeg_reason(exc)})", _FIX_FORMAT) from exc
        audio_streams = [s for s in self._container.streams if s.type == "audio"]
        if not audio_streams:
            self._container.close()
            raise InputFileError(self.path, "contains no audio stream", _FIX_FORMAT)
        self._stream = audio_streams[0]
        # Keep the channel layout through resampling and average the channels ourselves: FFmpeg's
        # downmix scales by -3 dB, which would make stereo files quieter than mono ones.
        self._resampler = av.AudioResampler(format="fltp", layout=None, rate=self.sample_rate)
        self._total = self._estimate_total()
        self._pending = np.zeros(0, dtype=np.float32)
        self._decoded = self._decode()
        self._position = 0
        self._closed = False
        # Decode the first samples now so a corrupt or empty file fails at open time.
        minimum = int(MIN_SECONDS * self.sample_rate)
        self._fill(minimum)
        if self._pending.size < minimum:
            self.close()
            raise InputFileError(
                self.path, f"contains less than {MIN_SECONDS * 1000:.0f} ms of audio (zero length or corrupt)", _FIX_FORMAT
            )

    @property
    def total_samples(self) -> int | None:
        """Estimated length at the output rate (from the container's duration)."""
        return self._total

    def _estimate_total(self) -> int | None:
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return int(round(float(stream.duration * stream.time_base) * self.sample_rate))
        if self._container.duration is not None:
            return int(round(self._container.duration / 1_000_000 * self.sample_rate))
        return None

    def _decode(self) -> Iterator[np.ndarray]:
        import av

        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    log.warning("%s: skipped a corrupt audio packet", self.path)
                    continue
                for frame in frames:
                    frame.pts = None
                    for out in self._resampler.resample(frame):
                        yield _mono(out.to_ndarray())
            for out in self._resampler.resample(None):
                yield _mono(out.to_ndarray())
        except av.error.FFmpegError as exc:
            if self._position == 0 and self._pending.size == 0:
                raise InputFileError(self.path, f"cannot decode audio ({_ffmpeg_reason(exc)})", _FIX_FORMAT) from exc
            log.warning("%s: audio ends early, the file looks truncated (%s)", self.path, _ffmpeg_reason(exc))

    def _fill(self, n: int) -> None:
        chunks = [self._pending]
        have = self._pending.size
        while have < n:
            try:
                chunk = next(self._decoded)
            except StopIteration:
                break
            chunks.append(chunk)
            have += chunk.size
        if len(chunks) > 1:
            self._pending = np.concatenate(chunks)

    def read(self) -> AudioBlock | None:
        """The next block (the last one may be shorter), or None at the end."""
        if self._closed:
            return None
        self._fill(self.block_size)
        if self._pending.size == 0:
            return None
        samples = self._pending[: self.block_size].copy()
        self._pending = self._pending[self.block_size :]
        block = AudioBlock(samples=samples, sample_rate=self.sample_rate, start=self._position)
        self._position += samples.size
        return block

    def read_all(self) -> np.ndarray:
        """Decode the rest of the file into one float32 array."""
        parts = []
        while (block := self.read()) is not None:
            parts.append(block.samples)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - closing a broken container must not raise
                log.debug("closing %s failed", self.path, exc_info=True)


def load_audio(path: str | Path, sample_rate: int = ENGINE_SAMPLE_RATE) -> np.ndarray:
    """Decode a whole audio file to mono float32 at ``sample_rate``."""
    source = AudioFileSource(path, sample_rate=sample_rate)
    try:
        return source.read_all()
    finally:
        source.close()


def _mono(planar: np.ndarray) -> np.ndarray:
    """Average the channels of a planar ``[channels, n]`` float block."""
    if planar.ndim == 1 or planar.shape[0] == 1:
        return planar.reshape(-1).astype(np.float32, copy=False)
    return planar.mean(axis=0, dtype=np.float32)


def _check_wav_complete(path: Path) -> None:
    """Reject a RIFF/WAVE file whose data chunk is cut short (a truncated download or copy).

    Writers that stream a WAV of unknown length put 0 or 0xFFFFFFFF in the size
    field; those are accepted.
    """
    with path.open("rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        file_size = path.stat().st_size
        offset = 12
        while True:
            f.seek(offset)
            chunk = f.read(8)
            if len(chunk) < 8:
                raise InputFileError(path, "the WAV file is truncated: it has no audio data chunk", _FIX_TRUNCATED)
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                if size in (0, 0xFFFFFFFF, 0x7FFFFFFF):
                    return
                available = file_size - offset - 8
                if available < size:
                    raise InputFileError(
                        path,
                        f"the WAV file is truncated: its header announces {size} bytes of audio "
                        f"but only {max(available, 0)} are there",
                        _FIX_TRUNCATED,
                    )
                return
            offset += 8 + size + (size & 1)


_FIX_TRUNCATED = "Copy or export the file again; a partial download or copy cuts it short"


def _ffmpeg_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[-1].strip() or type(exc).__name__
