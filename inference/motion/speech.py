"""Speech-driven motion: live audio to DWPose-134 keypoints.

:class:`SpeechMotion` is the default motion stage (a
:class:`inference.stages.MotionStream`). Per audio block it

1. cleans the samples (non-finite values, clipping) and decimates them to 16 kHz
   (:mod:`~inference.motion.audio_frontend`),
2. computes 10 ms features and prosody: voice activity, stressed syllables,
   phrase boundaries (:mod:`~inference.motion.prosody`),
3. recognises phones (:mod:`~inference.motion.phonemes`): live, a streaming
   phone loop; offline, whole utterances or a forced alignment of a transcript,

and per video frame it blends visemes with coarticulation into the mouth
(:mod:`~inference.motion.visemes`), gates them with the voice activity (silence
closes the mouth), adds head, brows and gaze (:mod:`~inference.motion.head`),
blinks and breathing (:mod:`~inference.motion.idle`) and gestures
(:mod:`~inference.motion.gestures`), and poses the rig
(:mod:`~inference.motion.rig`).

Timing. Frame ``i`` shows the instant ``(i + 0.5) / fps`` (the middle of the
interval it is displayed for). Live, it is emitted as soon as the audio up to
that instant plus ``lookahead_seconds`` has been accepted; offline, once the
utterance around it has been decoded. :meth:`SpeechMotion.finish` emits the
remaining frames, so the frames cover exactly the audio received:
``ceil(samples * fps / rate)`` of them, numbered from 0.

Style. :meth:`SpeechMotion.set_style` may be called from any thread (the GUI's);
the next frame picks the new style up and the continuous knobs glide to their
new values with a 0.3 s time constant, so a change shows within a second.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np

from inference.errors import ConfigError
from inference.motion.audio_frontend import (
    HOP,
    RATE,
    Decimator,
    FeatureExtractor,
    FeatureTrack,
    SampleHistory,
)
from inference.motion.dynamics import Drift, reseed, seeded_generators
from inference.motion.gestures import GesturePlanner, GestureSettings, guard_limbs
from inference.motion.head import HeadMotion
from inference.motion.idle import Blinker, Breather
from inference.motion.phonemes import StreamingPhoneRecognizer, UtterancePhoneDecoder
from inference.motion.prosody import ProsodyEvent, ProsodyTracker
from inference.motion.rig import ArmControls, Framing, RigControls
from inference.motion.style import MotionStyle
from inference.motion.visemes import MOUTH_PARAMS, Coarticulation, viseme_at
from inference.types import AudioBlock, KeypointFrame

log = logging.getLogger(__name__)

Mode = Literal["live", "offline"]
#: Default live look-ahead: the calibration found viseme accuracy saturating at about 100-120 ms.
DEFAULT_LOOKAHEAD = 0.1
#: How far offline frames look ahead into the features (events and gates are final by then).
_OFFLINE_LOOKAHEAD = 0.3
_STYLE_TIME_CONSTANT = 0.3
_JAW, _WIDTH, _ROUND, _PRESS, _TUCK = range(len(MOUTH_PARAMS))
_MAX_CHUNK = 4800  # input samples processed per step (100 ms at 48 kHz)


@dataclass(frozen=True)
class FrameTrace:
    """What drove one frame (recorded when ``record_trace`` is on; the benchmark scores it).

    Attributes:
        index: frame number.
        viseme: the viseme class the lips aim for at the frame's instant ("sil" when the voice gate is closed).
        gate: voice gate 0..1 at the frame's instant.
        jaw: jaw opening sent to the rig, 0..1.
    """

    index: int
    viseme: str
    gate: float
    jaw: float


class SpeechMotion:
    """Speech → lips, face, head, hands: the phoneme-driven motion stream.

    Args:
        sample_rate: rate of the incoming audio (a multiple of 16 kHz; the engine delivers 48 kHz).
        fps: output frame rate.
        style: the style knobs (change them later with :meth:`set_style`).
        mode: ``"live"`` (streaming phone loop, bounded look-ahead) or ``"offline"`` (whole utterances).
        lookahead: live look-ahead in seconds (0..0.5).
        transcript: offline only: the words spoken, for forced alignment (better lips).
        record_trace: keep a :class:`FrameTrace` per frame in :attr:`trace` (for evaluation).

    Raises:
        ConfigError: a bad rate, fps, mode, look-ahead or style.
        ModelLoadError: pocketsphinx is unavailable (the factory then falls back to energy-only motion).
    """

    def __init__(self, sample_rate: int, fps: float = 25.0, style: MotionStyle | None = None, *,
                 mode: Mode = "live", lookahead: float = DEFAULT_LOOKAHEAD, transcript: str | None = None,
                 record_trace: bool = False) -> None:
        if mode not in ("live", "offline"):
            raise ConfigError(f"motion mode must be 'live' or 'offline', got {mode!r}")
        if not 1.0 <= float(fps) <= 120.0:
            raise ConfigError(f"motion fps must be from 1 to 120, got {fps!r}")
        if not 0.0 <= float(lookahead) <= 0.5:
            raise ConfigError(f"motion look-ahead must be from 0 to 0.5 seconds, got {lookahead!r}")
        if transcript is not None and mode != "offline":
            raise ConfigError("a transcript can only be used in offline mode")
        self.sample_rate = int(sample_rate)
        self.fps = float(fps)
        self.mode: Mode = mode
        self.transcript = transcript
        self._live_lookahead = float(lookahead)
        self.lookahead_seconds = float(lookahead) if mode == "live" else 30.0
        self.record_trace = record_trace
        self._style_lock = threading.Lock()
        self._pending_style: MotionStyle | None = None
        self.style = (style or MotionStyle()).validated()
        Decimator(self.sample_rate)  # checks the rate now, with a clear message
        self.reset()

    # -- public API ------------------------------------------------------------------------------------
    def set_style(self, style: MotionStyle) -> None:
        """Change the style from any thread; it takes effect on the next frame (knobs glide over ~0.3 s).

        Raises:
            ConfigError: ``style`` has a knob out of range.
        """
        style = style.validated()
        with self._style_lock:
            self._pending_style = style

    def reset(self) -> None:
        """Start a new stream (frame 0, no audio), keeping the style."""
        self._decimator = Decimator(self.sample_rate, max_chunk=_MAX_CHUNK)
        self._history = SampleHistory(keep=RATE, max_append=_MAX_CHUNK)
        self._features = FeatureTrack(capacity=1024)
        self._extractor = FeatureExtractor(self._features)
        if self.mode == "live":
            self._phones: StreamingPhoneRecognizer | UtterancePhoneDecoder = StreamingPhoneRecognizer()
            history = 400
        else:
            self._phones = UtterancePhoneDecoder(self.transcript)
            history = self._phones.max_wait_hops + 500  # frames wait for whole utterances
        self._prosody = ProsodyTracker(self._features, history_hops=history)
        self._phones_failed = False
        self._coart = Coarticulation()
        self._scratch = np.zeros(_MAX_CHUNK, dtype=np.float32)
        self._fed16 = 0  # 16 kHz samples handed to the phone decoder
        self._received = 0  # input samples accepted
        self._finished = False
        self._next_frame = 0
        self._blocks: collections.deque[tuple[int, float]] = collections.deque()  # (end sample, captured_at)
        self._last_heard: float | None = None
        self._pending_events: collections.deque[ProsodyEvent] = collections.deque()
        self._mouth = np.zeros(len(MOUTH_PARAMS))
        self._mouth_tmp = np.zeros(len(MOUTH_PARAMS))
        self.trace: list[FrameTrace] = []
        self._setup_style(self.style, reseed=True)

    def accept_audio(self, block: AudioBlock) -> None:
        """Take one block of audio (any length); never raises on the audio's content.

        Raises:
            ConfigError: the block's sample rate differs from the stream's.
        """
        if block.sample_rate != self.sample_rate:
            raise ConfigError(f"the motion stage expects {self.sample_rate} Hz audio, got {block.sample_rate} Hz")
        if self._finished:
            return
        samples = block.samples
        for a in range(0, len(samples), _MAX_CHUNK):
            self._ingest(samples[a : a + _MAX_CHUNK])
        if block.captured_at is not None:
            self._blocks.append((self._received, block.captured_at))
            self._last_heard = block.captured_at

    def pop_frames(self) -> list[KeypointFrame]:
        """Frames that became ready since the last call, in order."""
        frames = []
        while self._frame_ready(self._next_frame):
            frames.append(self._make_frame(self._next_frame))
            self._next_frame += 1
        return frames

    def finish(self) -> list[KeypointFrame]:
        """End of the audio: flushes every stage and returns the remaining frames."""
        if not self._finished:
            self._finished = True
            self._decimator.flush(self._history)
            self._extractor.update(self._history, received=self._history.end + 4 * HOP)
            self._prosody.update()
            self._feed_phones(final=True)
        frames = []
        while self._frame_span_start(self._next_frame) < self._received:
            frames.append(self._make_frame(self._next_frame))
            self._next_frame += 1
        return frames

    # -- audio side ------------------------------------------------------------------------------------
    def _ingest(self, samples: np.ndarray) -> None:
        n = len(samples)
        x = self._scratch[:n]
        x[:] = samples
        energy = float(np.dot(x, x))
        if not math.isfinite(energy):  # NaN or inf somewhere: rare, so this path may allocate
            np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(x, -1.0, 1.0, out=x)
        self._received += n
        self._decimator.process(x, self._history)
        self._extractor.update(self._history)
        self._prosody.update()
        self._feed_phones(final=False)

    def _feed_phones(self, *, final: bool) -> None:
        if self._phones_failed:
            return
        try:
            end = self._history.end
            if final and end % HOP:
                self._history.append(np.zeros(HOP - end % HOP, dtype=np.float32))
                end = self._history.end
            while end - self._fed16 >= HOP:
                n = min(end - self._fed16, 2048) // HOP * HOP
                self._phones.feed(self._history.view(self._fed16, self._fed16 + n), pause=self._prosody.in_pause)
                self._fed16 += n
            if final:
                self._phones.finish()
        except (RuntimeError, ValueError, IndexError) as exc:  # the recogniser failed: keep going on energy alone
            log.warning("phone recognition failed (%s); the mouth follows loudness from now on", exc)
            self._phones_failed = True

    # -- frames ----------------------------------------------------------------------------------------
    def _frame_span_start(self, index: int) -> int:
        return int(round(index * self.sample_rate / self.fps))

    def _frame_ready(self, index: int) -> bool:
        centre = (index + 0.5) / self.fps
        lookahead = self._live_lookahead if self.mode == "live" else _OFFLINE_LOOKAHEAD
        if self._received < int(math.ceil((centre + lookahead) * self.sample_rate - 1e-6)):
            return False
        if self.mode == "offline" and not self._phones_failed:
            return self._phones.ready_until >= centre * 100 + 12
        return True

    def _heard_at(self, index: int) -> float | None:
        """captured_at of the newest block frame ``index`` depends on."""
        lookahead = self._live_lookahead if self.mode == "live" else _OFFLINE_LOOKAHEAD
        needed = int(math.ceil(((index + 0.5) / self.fps + lookahead) * self.sample_rate - 1e-6))
        while len(self._blocks) > 1 and self._blocks[0][0] < needed:
            self._blocks.popleft()
        if self._blocks and self._blocks[0][0] >= needed:
            return self._blocks[0][1]
        return self._last_heard

    def _make_frame(self, index: int) -> KeypointFrame:
        dt = 1.0 / self.fps
        t = (index + 0.5) * dt
        hop = t * 100.0
        self._apply_pending_style(dt)
        self._deliver_events(hop, t)
        if index % 50 == 0 and not self._phones_failed:
            self._phones.track.forget_before(int(hop) - 200)
        s = self._knobs
        prosody = self._prosody
        centre = int(hop)
        gate = (prosody.gate_at(centre - 1) + 2 * prosody.gate_at(centre) + prosody.gate_at(centre + 1)) / 4
        loudness = prosody.loudness_at(centre)
        speaking = gate > 0.3
        mouth = self._mouth
        if self._phones_failed:
            mouth[:] = 0.0
            mouth[_JAW] = min(1.0, 0.8 * loudness)
            viseme = "AA" if gate > 0.5 else "sil"
        else:
            mouth[:] = 0.0
            for offset, weight in ((-1.0, 0.25), (0.0, 0.5), (1.0, 0.25)):
                self._coart.mouth_at(self._phones.track, hop + offset, self._mouth_tmp)
                mouth += weight * self._mouth_tmp
            viseme = viseme_at(self._phones.track, centre) if gate > 0.5 else "sil"
        expr = s["expressiveness"]
        jaw = min(1.0, mouth[_JAW] * gate * (0.8 + 0.3 * min(1.3, loudness)) * (0.75 + 0.45 * expr))
        head = self._head.state(t, dt, speaking, loudness, s["head_motion"], expr, s["idle_energy"])
        blink = self._blinker.value(t, speaking, s["idle_energy"])
        breath = self._breather.value(t, dt, speaking)
        body = self._body_drift.step(dt) * (0.3 + 0.7 * s["idle_energy"])
        arms = self._gestures.arms(t, dt, speaking)
        controls = RigControls(
            jaw_open=jaw,
            lip_width=float(np.clip(mouth[_WIDTH] * gate * (0.6 + 0.8 * expr), -1, 1)),
            lip_round=float(np.clip(mouth[_ROUND] * gate * (0.7 + 0.5 * expr), 0, 1)),
            lip_press=float(np.clip(mouth[_PRESS] * gate + 0.15 * (1.0 - gate), 0, 1)),
            lip_tuck=float(np.clip(mouth[_TUCK] * gate, 0, 1)),
            smile=head.smile * (1.0 - 0.6 * gate),
            blink=blink,
            brow_raise=head.brow_raise,
            brow_frown=head.brow_frown,
            gaze=head.gaze,
            head_yaw=head.yaw,
            head_pitch=head.pitch,
            head_roll=head.roll,
            head_offset=head.offset,
            shoulder_lift=0.035 * breath + self._gestures.shoulder_beat(t),
            torso_lean=0.008 * float(body[0]),
            torso_twist=0.03 * float(body[1]),
            body_offset=(0.025 * float(body[2]), 0.0),
            arms=arms,
        )
        _, keypoints = guard_limbs(controls, self._framing, self.style.framing, self._rest_arm)
        if self.record_trace:
            self.trace.append(FrameTrace(index, viseme, float(gate), float(jaw)))
        return KeypointFrame(keypoints=keypoints, index=index, fps=self.fps, audio_heard_at=self._heard_at(index))

    def _deliver_events(self, hop: float, t: float) -> None:
        """Hand prosodic events to the face and body modules, at a time independent of block sizes."""
        self._pending_events.extend(self._prosody.events)
        self._prosody.events.clear()
        lookahead = self._live_lookahead if self.mode == "live" else _OFFLINE_LOOKAHEAD
        while self._pending_events:
            event = self._pending_events[0]
            if event.known_at + 4 - lookahead * 100 > hop and not self._finished:
                break
            self._pending_events.popleft()
            t_event = event.hop / 100.0
            self._head.on_event(event, t, t_event)
            self._gestures.on_event(event, t, t_event)
            if event.kind == "phrase_end":
                self._blinker.phrase_end(t)
                self._breather.phrase_end(t)

    # -- style -----------------------------------------------------------------------------------------
    def _setup_style(self, style: MotionStyle, *, reseed: bool) -> None:
        self.style = style
        self._framing = Framing.named(style.framing)
        self._knobs = {k: float(getattr(style, k)) for k in ("gesture_amount", "head_motion", "expressiveness",
                                                             "idle_energy")}
        if reseed:
            rngs = seeded_generators(style.seed, 5)
            self._head = HeadMotion(rngs[0])
            self._blinker = Blinker(rngs[1])
            self._breather = Breather(rngs[2])
            self._gestures = GesturePlanner(rngs[3], self._gesture_settings())
            self._body_drift = Drift(rngs[4], timescale=4.0, size=3)
            self._rngs = rngs
        else:
            self._gestures.configure(self._gesture_settings())
        self._rest_arm = ArmControls()

    def _gesture_settings(self) -> GestureSettings:
        return GestureSettings(amount=self._knobs["gesture_amount"], idle_energy=self._knobs["idle_energy"],
                               handedness=self.style.handedness, framing=self.style.framing)

    def _apply_pending_style(self, dt: float) -> None:
        with self._style_lock:
            new, self._pending_style = self._pending_style, None
        if new is not None and new != self.style:
            old = self.style
            knobs = dict(self._knobs)
            self._setup_style(new, reseed=False)
            self._knobs = knobs  # glide from the current values
            if new.seed != old.seed:
                reseed(self._rngs, new.seed)
        a = 1.0 - math.exp(-dt / _STYLE_TIME_CONSTANT)
        for k in self._knobs:
            self._knobs[k] += (float(getattr(self.style, k)) - self._knobs[k]) * a
        self._gestures.settings = self._gesture_settings()
