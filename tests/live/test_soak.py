"""Ten minutes of live stream in simulated time: memory stays flat, audio and video stay within 40 ms.

The machinery is :func:`bench.soak.run_soak` (``main.py bench soak`` runs an hour of it): a simulated
microphone, 100 ppm fast, paces the engine in lockstep through a :class:`SimulatedTime`, so ten minutes of
stream take seconds; the delayed voice is pulled by a simulated output device at the nominal rate, frames go to
a stand-in virtual camera, and a recording runs from the first sample.
"""

from __future__ import annotations

import pytest

from bench.soak import run_soak, summary

MINUTES = 10
FPS = 5.0  # the lowest rate the settings allow: ten minutes of stream in the fewest frames


@pytest.mark.slow
def test_ten_minutes_of_stream(speech, tmp_path):
    result = run_soak(MINUTES, tmp_path, fps=FPS, size=128, skew=1e-4, speech=speech, wall_limit_s=300)
    print(summary(result))

    assert result.complete and result.simulated_minutes > MINUTES * 0.999, result
    assert result.skipped_frames == 0
    # memory: what the engine holds after two minutes is what it holds at the end
    assert result.memory_2min_mib is not None and result.memory_end_mib is not None, result
    assert result.memory_growth_mib < 15, (result.memory_2min_mib, result.memory_end_mib)
    # the delayed voice plays within 40 ms of the picture, all along (after its first second)
    assert result.last_voice_error_at_s > MINUTES * 60 - 1
    assert result.voice_error_count > 0 and result.voice_error_max_ms < 40, result.voice_error_max_ms
    assert result.video_delay_spread_ms < 40  # the picture's own delay does not creep
    # the recording: ten minutes, audio and video the same length within 40 ms
    assert result.recorder_frames / FPS > MINUTES * 60 - 2
    assert abs(result.recording_av_difference_ms) < 40
    assert result.mp4_duration_s is not None and abs(result.mp4_duration_s - result.recorder_frames / FPS) < 0.2
