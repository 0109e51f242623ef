"""Phones, visemes and coarticulation; phone recognition on real speech."""

import numpy as np
import pytest

from inference.errors import ModelLoadError
from inference.motion import phonemes
from inference.motion.phonemes import (
    PhoneSegment,
    PhoneTrack,
    StreamingPhoneRecognizer,
    UtterancePhoneDecoder,
    align_phones,
    decode_phones,
    normalise_phone,
)
from inference.motion.visemes import MOUTH_PARAMS, VISEMES, Coarticulation, phone_openness, phone_viseme

ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z "
           "ZH").split()
JAW, WIDTH, ROUND, PRESS, TUCK = range(len(MOUTH_PARAMS))


def test_every_english_phone_has_a_viseme_and_an_openness():
    for phone in ARPABET:
        assert phone_viseme(phone) in VISEMES and phone_viseme(phone) != "sil", phone
        assert 0.0 <= phone_openness(phone) <= 1.0
    assert {phone_viseme(p) for p in ARPABET} == set(VISEMES) - {"sil"}
    assert phone_viseme("SIL") == "sil" and phone_openness("SIL") == 0.0
    assert phone_openness("AA") > phone_openness("IY") > phone_openness("M")


def test_labels_are_normalised():
    assert normalise_phone("AH0") == "AH" and normalise_phone(" iy1 ") == "IY"
    for filler in ("+NSN+", "+SPN+", "<sil>", "SIL", "[NOISE]", ""):
        assert normalise_phone(filler) == "SIL"


def track_of(*phones: tuple[str, int]) -> PhoneTrack:
    track, t = PhoneTrack(), 0
    segs = []
    for label, hops in phones:
        segs.append(PhoneSegment(label, t, t + hops))
        t += hops
    track.replace_tail(segs, final=True)
    return track


def test_phone_track_holds_the_newest_phone_and_forgets_old_ones():
    track = track_of(("SIL", 10), ("M", 5), ("AA", 10))
    assert track.label_at(12) == "M" and track.label_at(24) == "AA" and track.label_at(40) == "AA"
    assert track.known_until == 25
    assert [s.label for s in track.segments_between(12, 16)] == ["M", "AA"]
    track.replace_tail([PhoneSegment("S", 25, 30)], final=False)
    track.replace_tail([PhoneSegment("Z", 25, 32)], final=False)  # a partial path is replaced, not appended
    assert track.label_at(27) == "Z" and len(track) == 4
    track.forget_before(12)  # drops the leading SIL, which ended before hop 12
    assert len(track) == 3 and track.label_at(12) == "M" and track.label_at(5) == "SIL"
    track.forget_before(1000)  # the partial tail is never dropped
    assert [s.label for s in track.segments_between(0, 100)] == ["Z"]


def mouth_curve(track: PhoneTrack, hops: int) -> np.ndarray:
    co, out = Coarticulation(), np.zeros((hops * 2, len(MOUTH_PARAMS)))
    for i in range(hops * 2):
        co.mouth_at(track, i / 2, out[i])
    return out


def test_coarticulation_is_smooth_and_reaches_the_targets():
    track = track_of(("SIL", 20), ("M", 6), ("AA", 14), ("UW", 12), ("F", 6), ("IY", 12), ("SIL", 20))
    curve = mouth_curve(track, 90)
    step = np.abs(np.diff(curve, axis=0)).max(axis=0)  # per 5 ms
    assert step[JAW] < 0.2 and step[ROUND] < 0.25, step  # no snapping from one shape to the next
    at = lambda hop: curve[hop * 2]  # noqa: E731
    assert at(23)[PRESS] > 0.6  # a short M still closes the lips
    assert at(33)[JAW] > 0.8  # AA opens wide
    assert at(46)[ROUND] > 0.7 and at(46)[WIDTH] < -0.3  # UW rounds and narrows
    assert at(55)[TUCK] > 0.6  # F tucks the lower lip
    assert at(63)[WIDTH] > 0.4  # IY spreads
    assert at(85)[JAW] < 0.05  # silence closes
    # anticipation: the rounding of UW starts before the UW itself
    assert at(38)[ROUND] > 0.2


def test_unknown_labels_count_as_silence():
    out = np.zeros(len(MOUTH_PARAMS))
    Coarticulation().mouth_at(track_of(("XYZ", 10)), 5, out)
    assert out[JAW] == 0.0
    Coarticulation().mouth_at(PhoneTrack(), 5, out)  # an empty track is silence too
    assert out[JAW] == 0.0


@pytest.fixture(scope="module")
def sentence16(sentence48):  # noqa: ANN001
    return sentence48[::3].copy()  # the demo is band-limited below 8 kHz: plain decimation is fine here


def viseme_agreement(a: list[str], b: list[str]) -> float:
    n = min(len(a), len(b))
    return float(np.mean([phone_viseme(x) == phone_viseme(y) for x, y in zip(a[:n], b[:n], strict=True)]))


def labels(segments: list[PhoneSegment], hops: int) -> list[str]:
    out = ["SIL"] * hops
    for s in segments:
        out[max(0, s.start) : min(hops, s.end)] = [s.label] * (min(hops, s.end) - max(0, s.start))
    return out


TEXT = "he was not an ill disposed young man"


def test_alignment_decoding_and_streaming_agree_on_real_speech(sentence16):
    hops = len(sentence16) // 160
    truth = labels(align_phones(sentence16, TEXT), hops)
    assert viseme_agreement(labels(decode_phones(sentence16), hops), truth) > 0.6
    rec = StreamingPhoneRecognizer()
    for a in range(0, hops * 160, 320):
        rec.feed(sentence16[a : a + 320], pause=False)
    rec.finish()
    assert viseme_agreement([rec.track.label_at(h) for h in range(hops)], truth) > 0.6
    assert rec.track.known_until >= hops - 1


def test_offline_decoder_aligns_a_transcript_and_survives_a_wrong_one(sentence16):
    hops = len(sentence16) // 160
    truth = labels(align_phones(sentence16, TEXT), hops)
    dec = UtterancePhoneDecoder(transcript=TEXT)
    dec.feed(sentence16[: hops * 160], pause=False)
    assert dec.ready_until == 0  # with a transcript nothing is final before the end
    dec.finish()
    assert dec.ready_until == hops
    assert viseme_agreement([dec.track.label_at(h) for h in range(hops)], truth) > 0.95
    wrong = UtterancePhoneDecoder(transcript="zzzq qqq")  # no known words: falls back to phone decoding
    wrong.feed(sentence16[: hops * 160], pause=False)
    wrong.finish()
    assert wrong.ready_until == hops and len(wrong.track) > 5


def test_alignment_rejects_an_empty_transcript(sentence16):
    with pytest.raises(ValueError, match="no words"):
        align_phones(sentence16, " 123 ... ")


def test_missing_pocketsphinx_gives_a_clear_message(monkeypatch):
    monkeypatch.setattr(phonemes, "availability", lambda: (False, "pocketsphinx is not installed"))
    with pytest.raises(ModelLoadError, match="Phone recognition is unavailable: pocketsphinx is not installed"):
        StreamingPhoneRecognizer()
