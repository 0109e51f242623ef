"""The streaming front end: decimation to 16 kHz, sample history, 10 ms features, no allocation per block."""

import tracemalloc

import numpy as np
import pytest

from inference.errors import ConfigError
from inference.motion.audio_frontend import (
    RATE,
    SILENCE_DB,
    Decimator,
    FeatureExtractor,
    FeatureTrack,
    SampleHistory,
)
from tests.conftest import run_isolated


def decimate(x: np.ndarray, in_rate: int, block: int) -> np.ndarray:
    decimator = Decimator(in_rate)
    history = SampleHistory(keep=len(x), max_append=decimator.max_chunk)
    for a in range(0, len(x), block):
        decimator.process(x[a : a + block], history)
    decimator.flush(history)
    return history.view(0, history.end).copy()


def sine(freq: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


@pytest.mark.parametrize("rate", [16_000, 32_000, 48_000, 96_000])
def test_decimation_keeps_speech_band_in_phase(rate):
    out = decimate(sine(1000, rate), rate, 960)
    assert len(out) == RATE // 2
    ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(out)) / RATE)
    assert np.abs(out[200:-200] - ref[200:-200]).max() < 1e-3  # no delay, no loss


def test_decimation_removes_what_would_alias():
    out = decimate(sine(10_000, 48_000), 48_000, 960)
    assert np.abs(out[200:-200]).max() < 1e-3


def test_block_size_does_not_change_the_output():
    x = np.random.default_rng(1).standard_normal(48_000).astype(np.float32) * 0.1
    ref = decimate(x, 48_000, 960)
    for block in (1, 7, 333, 4801, 20_000):
        assert np.allclose(decimate(x, 48_000, block), ref, rtol=0, atol=1e-6), block  # equal up to float rounding


def test_rates_that_are_not_multiples_of_16k_are_refused_with_a_reason():
    with pytest.raises(ConfigError, match="multiple of 16 kHz"):
        Decimator(44_100)


def test_history_addresses_samples_absolutely_and_refuses_old_ones():
    h = SampleHistory(keep=100, max_append=50)
    for i in range(20):
        h.append(np.full(50, i, dtype=np.float32))
    assert h.end == 1000
    assert (h.view(950, 1000) == 19).all() and (h.view(900, 950) == 18).all()
    with pytest.raises(IndexError):
        h.view(0, 10)


def features_of(x16: np.ndarray) -> FeatureTrack:
    track = FeatureTrack()
    extractor = FeatureExtractor(track)
    history = SampleHistory(keep=len(x16) + 1000)
    for a in range(0, len(x16), 320):
        history.append(x16[a : a + 320])
        extractor.update(history)
    return track


def test_pitch_and_voicing_of_a_buzz():
    t = np.arange(RATE) / RATE
    buzz = (sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 10)) * 0.2).astype(np.float32)
    track = features_of(buzz)
    mid = slice(20, 80)
    assert np.median(track.pitch_hz[mid]) == pytest.approx(140, abs=2)
    assert track.voicing[mid].min() > 0.9


def test_noise_is_unvoiced_and_silence_is_silent():
    noise = (np.random.default_rng(0).standard_normal(RATE) * 0.1).astype(np.float32)
    track = features_of(noise)
    assert np.median(track.voicing[20:80]) < 0.5
    track = features_of(np.zeros(RATE, np.float32))
    assert (track.level_db[: track.count] == SILENCE_DB).all() and (track.pitch_hz[: track.count] == 0).all()


def test_dc_offset_does_not_count_as_sound():
    track = features_of(np.full(RATE, 0.4, np.float32))
    assert track.level_db[20:80].max() < -60


def hot_path_allocation_peaks() -> list[int]:
    """Bytes allocated at peak by each 100 ms block through the decimator and feature extractor."""
    x = np.random.default_rng(2).standard_normal(48_000 * 4).astype(np.float32) * 0.1
    block = 4800  # 100 ms: 19 kB at 48 kHz, 6.4 kB once decimated
    decimator = Decimator(48_000)
    history = SampleHistory(keep=RATE, max_append=decimator.max_chunk)
    extractor = FeatureExtractor(FeatureTrack())
    warm = 48_000
    for a in range(0, warm, block):
        decimator.process(x[a : a + block], history)
        extractor.update(history)
    tracemalloc.start()
    try:
        peaks = []
        for a in range(warm, len(x), block):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            decimator.process(x[a : a + block], history)
            extractor.update(history)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
    return peaks


def test_hot_path_allocates_no_arrays():
    # In a fresh interpreter: tracemalloc counts every thread's allocations, and earlier tests leave threads.
    peaks = run_isolated(hot_path_allocation_peaks)
    # numpy's einsum keeps ~2.5 kB of call bookkeeping in flight; a copy of the block, or of a 40 ms analysis
    # window per hop, would push the peak well past 4 kB
    # (that nothing accumulates over a long stream is checked on the whole stage in test_bad_input.py)
    assert max(peaks) < 4000, max(peaks)
