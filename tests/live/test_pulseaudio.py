"""The live engine against a real sound server: a PulseAudio null sink playing LibriVox speech is the microphone."""

from __future__ import annotations

import time

import numpy as np

from inference.live import LiveEngine
from inference.settings import CameraSettings, RenderSettings, Settings
from inference.sources.microphone import MicrophoneSource
from tests.live.fakes import RecordingCamera


def test_microphone_source_hears_the_speech_in_real_time(pulseaudio, librivox_dir):
    pulseaudio.play(librivox_dir / "sense_and_sensibility_01_austen_64kb-0880.wav")  # 3 s of speech
    source = MicrophoneSource(None)
    blocks, t0 = [], time.monotonic()
    while time.monotonic() - t0 < 4.0:
        blocks.append(source.read())
    source.close()
    audio = np.concatenate([b.samples for b in blocks])
    assert all(b.start == a.end for a, b in zip(blocks, blocks[1:], strict=False))
    assert np.abs(audio).max() > 0.2  # the speech arrived
    captured = np.array([b.captured_at for b in blocks[-100:]])
    assert np.median(np.diff(captured)) < 0.03  # and in real time, block by block (not in bursts)


def test_live_engine_on_pulseaudio_speech(pulseaudio, librivox_dir, fake_camera, tmp_path):
    frames, events = [], []
    engine = LiveEngine(Settings(render=RenderSettings(size=256, renderer="pose-map")), on_frame=frames.append, on_event=events.append,
                        camera_backend=fake_camera)
    engine.start()
    engine.set_camera(CameraSettings(enabled=True))
    time.sleep(1.5)  # the sound server starts delivering
    pulseaudio.play(librivox_dir / "sense_and_sensibility_01_austen_64kb-0870.wav")  # 7 s of speech
    time.sleep(2.0)  # not live: the avatar idles through the first words
    idle_frames = len(frames)
    engine.set_live(True)
    recorder = engine.start_recording(tmp_path / "pulse.mp4")
    time.sleep(3.0)
    status = engine.status()
    engine.stop_recording()
    time.sleep(0.5)
    engine.stop()
    assert not [e for e in events if e.level != "info"], events
    # (timings are loose: the test machine's two cores are shared; bench/latency.py measures properly)
    assert status.microphone_connected and 15 < status.fps < 28
    assert status.latency_ms < 1000 * engine.motion.lookahead_seconds + 200
    assert RecordingCamera.instances[-1].sent > 60
    # the speech drives the avatar: consecutive frames change much more while live than while idling
    change = [np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean() for a, b in zip(frames[:-1], frames[1:],
                                                                                   strict=False)]
    idle, live = np.median(change[idle_frames - 20 : idle_frames]), np.median(change[idle_frames + 10 :])
    assert live > 2 * idle
    assert 2.5 < recorder.samples / 48_000 < 3.6 and (tmp_path / "pulse.mp4").exists()
