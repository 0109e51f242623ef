"""Streaming audio front end of the motion stage: engine audio in, 16 kHz samples and 10 ms features out.

* :class:`Decimator` low-passes and decimates audio at an integer multiple of
  16 kHz (the engine's 48 kHz) to 16 kHz with a fixed linear-phase FIR whose
  delay is compensated, so 16 kHz sample ``m`` is input time ``m / 16000``.
* :class:`SampleHistory` keeps the recent 16 kHz samples in one preallocated
  buffer, addressed by absolute sample index.
* :class:`FeatureExtractor` computes, per 10 ms hop, the level (dBFS, DC
  removed), the voicing (peak of the normalised autocorrelation, 0..1) and the
  pitch (Hz, 0 when unvoiced; autocorrelation at 8 kHz) from a 40 ms window
  centred on the hop, into a
  :class:`FeatureTrack` ring.

Nothing here allocates arrays per block once constructed: every step writes
into buffers made up front (views and ``out=`` arguments only). Blocks of any
length are accepted; long ones are processed in pieces.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from inference.errors import ConfigError

#: Rate the recogniser and the features work at.
RATE = 16_000
#: One feature hop: 10 ms at 16 kHz.
HOP = 160
#: Samples of 16 kHz audio beyond a hop's end that its features need (the 40 ms window is centred on the hop).
FEATURE_LOOKAHEAD = 240
_WINDOW = 640  # 40 ms analysis window
_ENERGY_SPAN = 320  # 20 ms of the window's centre measure the level
_PITCH_RATE = RATE // 2  # pitch is found on the window averaged down to 8 kHz (4x less work)
_PITCH_WINDOW = _WINDOW // 2
_MIN_LAG, _MAX_LAG = 20, 133  # 400 Hz .. 60 Hz at 8 kHz
_ACF_LEN = _PITCH_WINDOW - _MAX_LAG
#: Level reported for digital silence, dBFS.
SILENCE_DB = -100.0


def _matvec(matrix: np.ndarray, vector: np.ndarray, out: np.ndarray) -> None:
    """``out = matrix @ vector`` on a strided view, without copying it and on this thread only.

    ``np.dot`` would copy the overlapping-row view into a new array and hand it to a multi-threaded BLAS whose
    idle threads spin (on two cores that doubled the stage's CPU time); ``einsum`` walks the view in place.
    """
    np.einsum("ij,j->i", matrix, vector, out=out)


def _lowpass(taps: int, cutoff: float, rate: float) -> np.ndarray:
    """Kaiser-windowed sinc low-pass (unit DC gain), ``taps`` odd, ``cutoff`` in Hz."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(2 * cutoff / rate * n) * np.kaiser(taps, 8.0)
    return h / h.sum()


class Decimator:
    """FIR low-pass and decimation of ``in_rate`` (an integer multiple of 16 kHz) to 16 kHz.

    The 97-tap filter passes 0-7 kHz and stops what would alias into the band the
    recogniser uses (below 6.9 kHz). Its 1 ms delay is removed: the first output
    sample is input time 0. Call :meth:`flush` at the end of the stream for the
    last samples.

    Args:
        in_rate: input sample rate in Hz.
        max_chunk: largest number of input samples processed in one step (longer blocks are split).

    Raises:
        ConfigError: ``in_rate`` is not a positive multiple of 16 kHz.
    """

    TAPS = 97

    def __init__(self, in_rate: int, max_chunk: int = 4800) -> None:
        if in_rate <= 0 or in_rate % RATE:
            raise ConfigError(
                f"the motion stage needs audio at a multiple of 16 kHz (16, 32, 48 or 96 kHz), got {in_rate} Hz; "
                "the engine's sources deliver 48 kHz"
            )
        self.in_rate = int(in_rate)
        self.factor = in_rate // RATE
        self.max_chunk = int(max_chunk)
        self._taps = 1 if self.factor == 1 else self.TAPS
        self._kernel = _lowpass(self._taps, 7000.0, in_rate)[::-1].astype(np.float32).copy()
        self._delay_out = (self._taps - 1) // 2 // self.factor  # outputs before input time 0
        history = self._taps - 1
        self._buf = np.zeros(history + 4 * self.max_chunk, dtype=np.float32)
        self._fill = history  # samples in _buf; the first `history` are zeros before time 0
        self._next_in = history  # buffer index of the newest tap of the next output
        self._skipped = 0
        self._out = np.zeros(self.max_chunk // self.factor + 2, dtype=np.float32)
        self._flush_pad = np.zeros((self._taps - 1) // 2, dtype=np.float32)

    def process(self, samples: np.ndarray, sink: SampleHistory) -> None:
        """Decimate ``samples`` (float32 ``[n]`` at ``in_rate``) and append the result to ``sink``."""
        for a in range(0, len(samples), self.max_chunk):
            self._process_chunk(samples[a : a + self.max_chunk], sink)

    def flush(self, sink: SampleHistory) -> None:
        """Push the filter's delay line through, so every input sample has reached ``sink``."""
        self._process_chunk(self._flush_pad, sink)

    def _process_chunk(self, chunk: np.ndarray, sink: SampleHistory) -> None:
        n = len(chunk)
        if self._fill + n > len(self._buf):
            self._compact()
        self._buf[self._fill : self._fill + n] = chunk
        self._fill += n
        if self.factor == 1:
            sink.append(self._buf[self._fill - n : self._fill])
            self._next_in = self._fill
            return
        count = (self._fill - 1 - self._next_in) // self.factor + 1
        if count <= 0:
            return
        first = self._next_in - (self._taps - 1)
        item = self._buf.itemsize
        windows = as_strided(self._buf[first:], shape=(count, self._taps), strides=(self.factor * item, item),
                             writeable=False)
        out = self._out[:count]
        _matvec(windows, self._kernel, out)
        self._next_in += count * self.factor
        skip = min(count, self._delay_out - self._skipped)
        self._skipped += skip
        if count > skip:
            sink.append(out[skip:])

    def _compact(self) -> None:
        keep_from = self._next_in - (self._taps - 1)
        keep = self._fill - keep_from
        if keep_from < keep:  # never copy onto an overlapping region (numpy would allocate a temporary)
            raise RuntimeError("decimator buffer too small for the chunk size")
        self._buf[:keep] = self._buf[keep_from : self._fill]
        self._fill = keep
        self._next_in -= keep_from


class SampleHistory:
    """The most recent 16 kHz samples, addressed by absolute index from the start of the stream.

    Args:
        keep: how many of the newest samples stay readable.
        max_append: the largest single append.
    """

    def __init__(self, keep: int, max_append: int = 4096) -> None:
        self.keep = int(keep)
        self._buf = np.zeros(2 * self.keep + 2 * max_append, dtype=np.float32)
        self._start = 0  # absolute index of _buf[0]
        self._fill = 0
        self.end = 0  # absolute index one past the newest sample

    def append(self, samples: np.ndarray) -> None:
        """Add samples (float32 ``[n]``)."""
        n = len(samples)
        if self._fill + n > len(self._buf):
            drop = self._fill - self.keep
            self._buf[: self.keep] = self._buf[drop : self._fill]  # drop >= keep: no overlap
            self._start += drop
            self._fill = self.keep
        self._buf[self._fill : self._fill + n] = samples
        self._fill += n
        self.end += n

    def view(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` (absolute indices) as a view; valid until the next :meth:`append`.

        Raises:
            IndexError: part of the range is older than the history or not received yet.
        """
        if start < self._start or stop > self.end or start > stop:
            raise IndexError(f"samples {start}..{stop} are not in the history ({self._start}..{self.end})")
        return self._buf[start - self._start : stop - self._start]

    @property
    def oldest(self) -> int:
        return self._start


class FeatureTrack:
    """Per-hop features in a ring of ``capacity`` hops, addressed by absolute hop index.

    Attributes:
        level_db: float32 ring, dBFS of the hop (DC removed).
        voicing: float32 ring, 0 (noise) .. 1 (perfectly periodic).
        pitch_hz: float32 ring, 0 where unvoiced.
        count: hops computed so far (the next hop index).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = int(capacity)
        self.level_db = np.full(self.capacity, SILENCE_DB, dtype=np.float32)
        self.voicing = np.zeros(self.capacity, dtype=np.float32)
        self.pitch_hz = np.zeros(self.capacity, dtype=np.float32)
        self.count = 0

    def slot(self, hop: int) -> int:
        """Ring index of ``hop``; raises IndexError when it has been overwritten or not computed."""
        if not self.count - self.capacity <= hop < self.count:
            raise IndexError(f"hop {hop} is not in the feature track ({self.count - self.capacity}..{self.count})")
        return hop % self.capacity

    def level(self, hop: int) -> float:
        """Level of ``hop`` in dBFS; hops before the stream or not yet computed read as silence."""
        if hop < 0 or hop >= self.count or hop < self.count - self.capacity:
            return SILENCE_DB
        return float(self.level_db[hop % self.capacity])


class FeatureExtractor:
    """Computes :class:`FeatureTrack` entries as 16 kHz audio arrives (10 ms hops, 40 ms centred windows)."""

    def __init__(self, track: FeatureTrack) -> None:
        self.track = track
        self._win = np.zeros(_WINDOW, dtype=np.float32)
        self._half = np.zeros(_PITCH_WINDOW, dtype=np.float32)
        self._sq = np.zeros(_PITCH_WINDOW, dtype=np.float32)
        self._cum = np.zeros(_PITCH_WINDOW + 1, dtype=np.float32)
        n_lags = _MAX_LAG - _MIN_LAG + 1
        self._acf = np.zeros(n_lags, dtype=np.float32)
        self._energy = np.zeros(n_lags, dtype=np.float32)
        self._mask = np.zeros(n_lags, dtype=bool)

    def ready_until(self, received: int) -> int:
        """Number of hops whose window is complete when ``received`` 16 kHz samples have arrived."""
        return max(0, (received - FEATURE_LOOKAHEAD) // HOP)

    def update(self, history: SampleHistory, received: int | None = None) -> int:
        """Compute every hop whose window is complete; returns the new hop count.

        ``received`` overrides how much audio counts as arrived (the stream's end pads with silence).
        """
        end = history.end if received is None else received
        target = self.ready_until(end)
        while self.track.count < target:
            self._compute(self.track.count, history)
            self.track.count += 1
        return self.track.count

    def _compute(self, hop: int, history: SampleHistory) -> None:
        centre = hop * HOP + HOP // 2
        start, stop = centre - _WINDOW // 2, centre + _WINDOW // 2
        win = self._win
        lo, hi = max(start, history.oldest), min(stop, history.end)
        win[:] = 0.0
        if hi > lo:
            win[lo - start : hi - start] = history.view(lo, hi)
        win -= float(win.mean())
        mid = win[(_WINDOW - _ENERGY_SPAN) // 2 : (_WINDOW + _ENERGY_SPAN) // 2]
        power = float(np.dot(mid, mid)) / _ENERGY_SPAN
        slot = hop % self.track.capacity
        level = 10.0 * math.log10(power) if power > 1e-10 else SILENCE_DB
        self.track.level_db[slot] = max(SILENCE_DB, level)
        voicing, pitch = self._pitch() if power > 1e-8 else (0.0, 0.0)
        self.track.voicing[slot] = voicing
        self.track.pitch_hz[slot] = pitch

    def _pitch(self) -> tuple[float, float]:
        """Normalised autocorrelation pitch of the current window: (voicing 0..1, f0 Hz or 0)."""
        win = self._half
        np.add(self._win[0::2], self._win[1::2], out=win)  # pairs summed down to 8 kHz (scale cancels out)
        item = win.itemsize
        lagged = as_strided(win[_MIN_LAG:], shape=(len(self._acf), _ACF_LEN), strides=(item, item), writeable=False)
        _matvec(lagged, win[:_ACF_LEN], self._acf)
        np.multiply(win, win, out=self._sq)
        np.cumsum(self._sq, out=self._cum[1:])
        e0 = float(self._cum[_ACF_LEN])
        np.subtract(self._cum[_MIN_LAG + _ACF_LEN : _MAX_LAG + _ACF_LEN + 1], self._cum[_MIN_LAG : _MAX_LAG + 1],
                    out=self._energy)
        np.maximum(self._energy, 1e-12, out=self._energy)
        np.multiply(self._energy, e0, out=self._energy)
        np.sqrt(self._energy, out=self._energy)
        np.divide(self._acf, self._energy, out=self._acf)
        best = float(self._acf.max())
        if best < 0.3 or e0 <= 1e-9:
            return max(0.0, best), 0.0
        # the shortest lag close to the best one avoids octave-low errors
        np.greater_equal(self._acf, 0.9 * best, out=self._mask)
        i = int(self._mask.argmax())
        while i + 1 < len(self._acf) and self._acf[i + 1] > self._acf[i]:
            i += 1
        shift = 0.0
        if 0 < i < len(self._acf) - 1:
            a, b, c = float(self._acf[i - 1]), float(self._acf[i]), float(self._acf[i + 1])
            denom = a - 2 * b + c
            shift = 0.5 * (a - c) / denom if abs(denom) > 1e-9 else 0.0
        return min(1.0, best), _PITCH_RATE / (_MIN_LAG + i + shift)
