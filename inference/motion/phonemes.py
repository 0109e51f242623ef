"""Phones from speech with pocketsphinx: live phone-loop decoding, batch decoding and forced alignment.

PyPI ``pocketsphinx`` ships an English acoustic model and a phone bigram, so
phones can be recognised offline on the CPU (about 5 % of one core for the
context-independent phone loop). Time is counted in 10 ms *hops* from the start
of the stream (pocketsphinx's frame rate), as in
:mod:`inference.motion.audio_frontend`.

* :class:`StreamingPhoneRecognizer` feeds audio to a phone loop as it arrives
  and, after every 20 ms, snapshots the partial best path into a
  :class:`PhoneTrack`. Utterances are cut at pauses (and at most every
  ``max_utterance_s``) so the decoder's memory stays bounded on endless streams;
  the cepstral mean carries over from one utterance to the next.
* :func:`decode_phones` decodes a whole utterance at once (batch normalisation,
  full look-ahead) and :func:`align_phones` force-aligns a known transcript.

Labels are ARPAbet phones without stress (``AA``, ``B``, ...) and ``SIL`` for
silence and every filler (breath, noise).
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right
from typing import NamedTuple

import numpy as np

from inference.errors import ModelLoadError

log = logging.getLogger(__name__)

#: pocketsphinx works on 16 kHz audio in 10 ms frames.
FRAME_SAMPLES = 160
SILENCE = "SIL"
#: Language weight of the phone loop (the calibration found 2 best on two speakers; the default is 6.5).
PHONE_LOOP_LW = 2.0
#: A cepstral mean typical of speech through this model, so a fresh stream does not start "cold".
DEFAULT_CMN_INIT = "40,3,-1"


def availability() -> tuple[bool, str]:
    """Whether pocketsphinx and its English model can be used, and why not."""
    try:
        import pocketsphinx
    except ImportError as exc:
        return False, f"pocketsphinx is not installed ({exc}); run installer/setup.sh"
    model = os.path.join(pocketsphinx.get_model_path(), "en-us")
    for name in ("en-us", "en-us-phone.lm.bin", "cmudict-en-us.dict"):
        if not os.path.exists(os.path.join(model, name)):
            return False, f"the pocketsphinx English model is incomplete ({name} missing); reinstall pocketsphinx"
    return True, "available"


def _model_path(*parts: str) -> str:
    import pocketsphinx

    return os.path.join(pocketsphinx.get_model_path(), "en-us", *parts)


def phone_loop_decoder(lw: float = PHONE_LOOP_LW, cmninit: str = DEFAULT_CMN_INIT):  # noqa: ANN201 - Decoder
    """A pocketsphinx decoder for the context-independent English phone loop at 16 kHz.

    Raises:
        ModelLoadError: pocketsphinx or its model cannot be loaded.
    """
    ok, why = availability()
    if not ok:
        raise ModelLoadError(f"Phone recognition is unavailable: {why}")
    from pocketsphinx import Decoder

    try:
        return Decoder(allphone=_model_path("en-us-phone.lm.bin"), lw=lw, pip=0.3, beam=1e-20, pbeam=1e-20,
                       samprate=16000, cmninit=cmninit, loglevel="FATAL")
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"The pocketsphinx phone model failed to load ({exc}); reinstall pocketsphinx") from exc


def normalise_phone(label: str) -> str:
    """ARPAbet phone without stress digits; fillers (``+NSN+``, ``<sil>``, ...) become ``SIL``."""
    label = label.strip().upper()
    if not label or label.startswith(("+", "<", "[")) or label in {"SIL", "SP", "NSN", "SPN"}:
        return SILENCE
    return label.rstrip("012")


class PhoneSegment(NamedTuple):
    """One phone: ``label`` over hops ``[start, end)`` (10 ms each, from the start of the stream)."""

    label: str
    start: int
    end: int


class PhoneTrack:
    """The phones known so far: finished segments plus the current utterance's partial path.

    ``known_until`` is the first hop no phone has been decoded for yet. Asking
    about later hops gives the newest phone (the display holds it until the
    decoder catches up).
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._segments: list[PhoneSegment] = []
        self._final = 0  # segments before this index are final
        self.known_until = 0

    def replace_tail(self, segments: list[PhoneSegment], *, final: bool) -> None:
        """Replace the non-final segments with ``segments`` (the current utterance's path)."""
        del self._segments[self._final :]
        del self._starts[self._final :]
        for seg in segments:
            if seg.end <= seg.start:
                continue
            self._segments.append(seg)
            self._starts.append(seg.start)
        if self._segments:
            self.known_until = max(self.known_until, self._segments[-1].end)
        if final:
            self._final = len(self._segments)

    def extend_silence(self, until: int) -> None:
        """Mark hops up to ``until`` as known silence (audio the decoder did not see, such as a gap)."""
        if until > self.known_until:
            self._segments.append(PhoneSegment(SILENCE, self.known_until, until))
            self._starts.append(self.known_until)
            self.known_until = until
            self._final = len(self._segments)

    def label_at(self, hop: int) -> str:
        """The phone covering ``hop`` (the newest one past the horizon; ``SIL`` before any)."""
        i = bisect_right(self._starts, hop) - 1
        if i < 0:
            return SILENCE
        seg = self._segments[i]
        return seg.label if hop < seg.end or i == len(self._segments) - 1 else SILENCE

    def segments_between(self, start: int, stop: int) -> list[PhoneSegment]:
        """Segments overlapping hops ``[start, stop)``, in time order."""
        i = max(0, bisect_right(self._starts, start) - 1)
        out = []
        while i < len(self._segments) and self._segments[i].start < stop:
            if self._segments[i].end > start:
                out.append(self._segments[i])
            i += 1
        return out

    def forget_before(self, hop: int) -> None:
        """Drop final segments that end before ``hop`` (keeps memory bounded on long streams)."""
        n = 0
        while n < self._final and self._segments[n].end < hop:
            n += 1
        if n:
            del self._segments[:n]
            del self._starts[:n]
            self._final -= n

    def __len__(self) -> int:
        return len(self._segments)


class StreamingPhoneRecognizer:
    """Live phone-loop decoding of 16 kHz audio into a :class:`PhoneTrack`.

    Args:
        min_utterance_s: an utterance is cut at the next pause once it is this long.
        max_utterance_s: an utterance is cut here even without a pause.
        lw: language weight of the phone loop.
    """

    def __init__(self, min_utterance_s: float = 2.0, max_utterance_s: float = 12.0, lw: float = PHONE_LOOP_LW) -> None:
        self._decoder = phone_loop_decoder(lw)
        self.track = PhoneTrack()
        self._min_hops = int(min_utterance_s * 100)
        self._max_hops = int(max_utterance_s * 100)
        self._utt_start = 0  # hop where the current utterance began
        self._fed = 0  # hops fed into the current utterance
        self._in_utt = False
        self._scaled = np.zeros(4096, dtype=np.float32)
        self._pcm = np.zeros(4096, dtype=np.int16)

    @property
    def fed_until(self) -> int:
        """Hops of audio the decoder has received."""
        return self._utt_start + self._fed

    @property
    def ready_until(self) -> int:
        """Live decoding never waits: every hop fed is as ready as it will be in time."""
        return self.fed_until

    def finish(self) -> None:
        """End of the stream: the last utterance is finished."""
        self.end_utterance()

    def feed(self, samples: np.ndarray, *, pause: bool) -> None:
        """Decode float32 16 kHz ``samples`` (a whole number of 10 ms hops, at most 4096 samples).

        ``pause`` says the speaker has been silent for a while: a long enough
        utterance is ended there so the next one starts fresh.
        """
        n = len(samples)
        if n % FRAME_SAMPLES:
            raise ValueError("feed whole 10 ms hops")
        if not self._in_utt:
            self._decoder.start_utt()
            self._in_utt = True
        scaled, pcm = self._scaled[:n], self._pcm[:n]
        np.multiply(samples, 32767.0, out=scaled)
        np.clip(scaled, -32768.0, 32767.0, out=scaled)
        pcm[:] = scaled
        self._decoder.process_raw(memoryview(pcm).cast("B"), False, False)
        self._fed += n // FRAME_SAMPLES
        if (pause and self._fed >= self._min_hops) or self._fed >= self._max_hops:
            self.end_utterance()
        else:
            self.track.replace_tail(self._path(), final=False)

    def end_utterance(self) -> None:
        """Finish the current utterance: its final path replaces the partial one."""
        if not self._in_utt:
            return
        self._decoder.end_utt()
        self.track.replace_tail(self._path(), final=True)
        self.track.extend_silence(self.fed_until)
        self._utt_start += self._fed
        self._fed = 0
        self._in_utt = False

    def _path(self) -> list[PhoneSegment]:
        base = self._utt_start
        segments = self._decoder.seg()
        if segments is None:  # nothing decoded yet
            return []
        return [PhoneSegment(normalise_phone(s.word), base + s.start_frame, base + s.end_frame + 1) for s in segments]


class UtterancePhoneDecoder:
    """Offline phones with full look-ahead: each utterance is decoded whole once it has ended.

    Audio is cut at pauses (or every ``max_utterance_s``) and each piece is
    decoded in batch (batch cepstral normalisation). With a ``transcript``, the
    whole stream is kept and force-aligned at :meth:`finish` (up to
    ``max_align_s`` of audio; longer streams, or a transcript that does not
    fit, fall back to phone decoding with a warning).
    """

    def __init__(self, transcript: str | None = None, min_utterance_s: float = 3.0, max_utterance_s: float = 30.0,
                 max_align_s: float = 1200.0) -> None:
        ok, why = availability()
        if not ok:
            raise ModelLoadError(f"Phone recognition is unavailable: {why}")
        self.track = PhoneTrack()
        self.transcript = transcript.strip() if transcript and transcript.strip() else None
        self._min_hops = int(min_utterance_s * 100)
        self._max_hops = int(max_utterance_s * 100)
        self._max_align_hops = int(max_align_s * 100)
        #: the longest stretch of audio that can wait for its phones, in hops
        self.max_wait_hops = self._max_align_hops if self.transcript is not None else self._max_hops
        self._chunks: list[np.ndarray] = []  # int16 pieces of the pending audio
        self._pending_start = 0  # hop where the pending audio begins
        self._pending_hops = 0
        self.ready_until = 0

    def feed(self, samples: np.ndarray, *, pause: bool) -> None:
        """Buffer float32 16 kHz ``samples`` (whole 10 ms hops); decode the utterance at a pause."""
        if len(samples) % FRAME_SAMPLES:
            raise ValueError("feed whole 10 ms hops")
        self._chunks.append((np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16))
        self._pending_hops += len(samples) // FRAME_SAMPLES
        if self.transcript is not None:
            if self._pending_hops > self._max_align_hops:
                log.warning("the audio is longer than %d s: decoding phones instead of aligning the transcript",
                            self._max_align_hops // 100)
                self.transcript = None
            else:
                return
        if (pause and self._pending_hops >= self._min_hops) or self._pending_hops >= self._max_hops:
            self._decode_pending()

    def finish(self) -> None:
        """Decode (or align) whatever is pending."""
        if self.transcript is not None and self._pending_hops:
            audio = np.concatenate(self._chunks).astype(np.float32) / 32767.0
            try:
                segments = align_phones(audio, self.transcript, offset=self._pending_start)
            except ValueError as exc:
                log.warning("transcript alignment failed (%s); decoding phones instead", exc)
            else:
                self._publish(segments)
                return
        self._decode_pending()

    def _decode_pending(self) -> None:
        if not self._pending_hops:
            return
        audio = np.concatenate(self._chunks).astype(np.float32) / 32767.0
        self._publish(decode_phones(audio, offset=self._pending_start))

    def _publish(self, segments: list[PhoneSegment]) -> None:
        end = self._pending_start + self._pending_hops
        self.track.replace_tail([s for s in segments if s.start < end], final=True)
        self.track.extend_silence(end)
        self._chunks.clear()
        self._pending_start = end
        self._pending_hops = 0
        self.ready_until = end


def _pcm_bytes(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def decode_phones(samples: np.ndarray, offset: int = 0, lw: float = PHONE_LOOP_LW) -> list[PhoneSegment]:
    """Batch phone-loop decoding of one utterance (float32 16 kHz ``samples``), hops counted from ``offset``."""
    decoder = phone_loop_decoder(lw)
    decoder.start_utt()
    decoder.process_raw(_pcm_bytes(samples), False, True)
    decoder.end_utt()
    return [PhoneSegment(normalise_phone(s.word), offset + s.start_frame, offset + s.end_frame + 1)
            for s in decoder.seg()]


def align_phones(samples: np.ndarray, transcript: str, offset: int = 0) -> list[PhoneSegment]:
    """Force-align ``transcript`` (English words) to float32 16 kHz ``samples``; hops counted from ``offset``.

    Raises:
        ModelLoadError: pocketsphinx is unavailable.
        ValueError: the transcript has no words the dictionary knows, or the alignment failed.
    """
    ok, why = availability()
    if not ok:
        raise ModelLoadError(f"Forced alignment is unavailable: {why}")
    from pocketsphinx import Decoder

    words = " ".join(w for w in transcript.lower().replace("\n", " ").split() if any(c.isalpha() for c in w))
    if not words:
        raise ValueError("the transcript has no words")
    decoder = Decoder(samprate=16000, bestpath=False, loglevel="FATAL")
    pcm = _pcm_bytes(samples)
    try:
        decoder.set_align_text(words)
        decoder.start_utt()
        decoder.process_raw(pcm, False, True)
        decoder.end_utt()
        decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(pcm, False, True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
    except (RuntimeError, KeyError) as exc:
        raise ValueError(f"the transcript could not be aligned to the audio ({exc})") from exc
    if alignment is None:
        raise ValueError("the transcript could not be aligned to the audio")
    out = []
    for phone in alignment.phones():
        out.append(PhoneSegment(normalise_phone(phone.name), offset + phone.start, offset + phone.start + phone.duration))
    if not out:
        raise ValueError("the alignment found no phones")
    return out

