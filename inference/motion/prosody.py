"""Prosody from the 10 ms feature track: voice activity, stressed syllables and phrase boundaries.

:class:`ProsodyTracker` reads one hop at a time (level, voicing, pitch from
:mod:`inference.motion.audio_frontend`) and keeps:

* a noise floor by minimum statistics (the lowest level of the last 1.6 s, so
  a steady hum or hiss becomes "silence" within two seconds),
* voice activity with hysteresis (on 9 dB above the floor, off at 5 dB, never
  below -62 dBFS) and a smooth ``gate`` (0..1) the mouth is multiplied by: it
  opens within 20 ms, holds through dips shorter than 40 ms (stop closures) and
  falls below 0.3 within 70 ms and to zero within 100 ms of the voice stopping,
* the speaker's typical speech level and pitch (slow running averages), and
* :class:`ProsodyEvent` s: ``accent`` at prominent syllable peaks (louder or
  higher than the speaker's average), ``phrase_end`` when a pause of 250 ms
  follows speech, ``phrase_start`` when speech resumes after a pause.

Everything is per hop and allocation-free; state is a handful of floats and
small fixed arrays.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from inference.motion.audio_frontend import SILENCE_DB, FeatureTrack

_FLOOR_WINDOWS = 8  # minimum statistics: 8 windows of 20 hops = 1.6 s
_FLOOR_WINDOW_HOPS = 20
_ON_DB, _OFF_DB = 9.0, 5.0
_ABSOLUTE_MIN_DB = -62.0
_PAUSE_HOPS = 25  # silence that ends a phrase
_HANG_HOPS = 4  # the gate stays open this long after the voice stops
_PEAK_HALF = 5  # a syllable peak is the highest level within ±50 ms
_MIN_ACCENT_GAP = 18  # hops between accents


@dataclass(frozen=True)
class ProsodyEvent:
    """Something the head, brows and hands react to.

    Attributes:
        kind: "accent", "phrase_start" or "phrase_end".
        hop: when it happened (10 ms units from the start of the stream).
        strength: 0..1 (accent prominence; 1 for phrase events).
        pitch_rise: semitones above the speaker's usual pitch (accents), else 0.
        known_at: the hop whose features revealed it (``hop`` or later).
    """

    kind: str
    hop: int
    strength: float
    pitch_rise: float = 0.0
    known_at: int = 0


class ProsodyTracker:
    """Streaming voice activity and prosodic events over a :class:`FeatureTrack`.

    Args:
        track: the features to read.
        history_hops: how many past hops of gate and loudness stay readable (cover the look-ahead).
    """

    def __init__(self, track: FeatureTrack, history_hops: int = 400) -> None:
        self.track = track
        self.history_hops = int(history_hops)
        self.reset()

    def reset(self) -> None:
        self.hop = 0  # next hop to read
        self._window_min = np.full(_FLOOR_WINDOWS, -55.0)
        self._window_pos = 0
        self._window_fill = 0
        self.floor_db = -55.0
        self.speech_db = -25.0  # running level of speech
        self.pitch_st = 0.0  # running mean pitch, semitones re 100 Hz (0 until voiced speech)
        self._pitch_seen = False
        self.speaking = False
        self._hang = 0
        self.gate = 0.0
        self._silent_run = _PAUSE_HOPS
        self._speech_run = 0
        self._phrase_open = False
        self._recent = np.full(2 * _PEAK_HALF + 1, SILENCE_DB)  # speech levels of the last 11 hops
        self._last_accent = -10_000
        self.events: deque[ProsodyEvent] = deque()
        #: per-hop gate values (ring), for the mouth
        self._gates = np.zeros(self.history_hops, dtype=np.float32)
        #: per-hop loudness 0..1 relative to floor and speech level (ring)
        self._loudness = np.zeros(self.history_hops, dtype=np.float32)

    def update(self) -> None:
        """Read every hop the feature track has computed since the last call."""
        while self.hop < self.track.count:
            self._step(self.hop)
            self.hop += 1

    @property
    def in_pause(self) -> bool:
        """The voice has been silent for at least 300 ms."""
        return self._silent_run >= 30

    def gate_at(self, hop: int) -> float:
        """Mouth gate at ``hop``: 0 in silence .. 1 in speech (hops not read yet count as silence)."""
        if hop < 0 or hop >= self.hop or hop < self.hop - len(self._gates):
            return 0.0
        return float(self._gates[hop % len(self._gates)])

    def loudness_at(self, hop: int) -> float:
        """Loudness at ``hop``: 0 at the noise floor .. 1 at the speaker's usual level (may exceed 1)."""
        if hop < 0 or hop >= self.hop or hop < self.hop - len(self._loudness):
            return 0.0
        return float(self._loudness[hop % len(self._loudness)])

    def _step(self, hop: int) -> None:
        slot = self.track.slot(hop)
        level = float(self.track.level_db[slot])
        voicing = float(self.track.voicing[slot])
        pitch = float(self.track.pitch_hz[slot])

        # noise floor: minimum over the last 8 windows of 200 ms
        w = self._window_pos
        if self._window_fill == 0:
            self._window_min[w] = level
        else:
            self._window_min[w] = min(self._window_min[w], level)
        self._window_fill += 1
        self.floor_db = float(self._window_min.min())
        if self._window_fill >= _FLOOR_WINDOW_HOPS:
            self._window_pos = (w + 1) % _FLOOR_WINDOWS
            self._window_fill = 0

        above = level - self.floor_db
        if self.speaking:
            self.speaking = above > _OFF_DB and level > _ABSOLUTE_MIN_DB
        else:
            self.speaking = above > _ON_DB and level > _ABSOLUTE_MIN_DB
        # the gate opens fast; it holds through short dips (stop closures) and closes within ~80 ms
        self._hang = _HANG_HOPS if self.speaking else max(0, self._hang - 1)
        target = 1.0 if self.speaking or self._hang > 0 else 0.0
        self.gate += (target - self.gate) * (0.7 if target > self.gate else 0.5)
        if self.gate < 0.02 and target == 0.0:
            self.gate = 0.0
        self._gates[hop % len(self._gates)] = self.gate
        span = max(6.0, self.speech_db - self.floor_db)
        self._loudness[hop % len(self._loudness)] = max(0.0, above) / span if self.speaking else 0.0

        if self.speaking:
            self.speech_db += (level - self.speech_db) * 0.01
            if voicing > 0.6 and pitch > 0:
                st = 12.0 * math.log2(pitch / 100.0)
                if not self._pitch_seen:
                    self.pitch_st, self._pitch_seen = st, True
                self.pitch_st += (st - self.pitch_st) * 0.01
        self._phrases(hop)
        self._accents(hop, level if self.speaking else SILENCE_DB)

    def _phrases(self, hop: int) -> None:
        if self.speaking:
            if self._silent_run >= _PAUSE_HOPS and not self._phrase_open:
                self.events.append(ProsodyEvent("phrase_start", hop, 1.0, known_at=hop))
                self._phrase_open = True
            self._silent_run = 0
            self._speech_run += 1
        else:
            self._silent_run += 1
            if self._silent_run == _PAUSE_HOPS and self._phrase_open:
                self.events.append(ProsodyEvent("phrase_end", hop - _PAUSE_HOPS, 1.0, known_at=hop))
                self._phrase_open = False
                self._speech_run = 0

    def _accents(self, hop: int, level: float) -> None:
        # a syllable peak: the loudest hop within ±50 ms, standing 3 dB above the dips around it
        s = self._recent
        s[:-1] = s[1:]
        s[-1] = level
        centre = hop - _PEAK_HALF
        mid = (s[_PEAK_HALF - 1] + s[_PEAK_HALF] + s[_PEAK_HALF + 1]) / 3.0
        if s[_PEAK_HALF] < s.max() or mid < -60.0 or centre - self._last_accent < _MIN_ACCENT_GAP:
            return
        dip = float(min(s[0], s[-1]))
        if mid - dip < 3.0:
            return
        slot = self.track.slot(centre) if centre >= 0 else None
        rise = 0.0
        if slot is not None and self._pitch_seen and self.track.pitch_hz[slot] > 0:
            rise = 12.0 * math.log2(float(self.track.pitch_hz[slot]) / 100.0) - self.pitch_st
        prominence = (mid - self.speech_db) / 6.0 + rise / 4.0
        strength = min(1.0, max(0.0, 0.5 + 0.5 * prominence))
        if strength < 0.45:
            return
        self._last_accent = centre
        self.events.append(ProsodyEvent("accent", centre, strength, rise, known_at=hop))
