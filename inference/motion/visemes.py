"""Phones to visemes, and visemes to a mouth shape with coarticulation.

Twelve viseme classes (close to the Oculus / Meta set with ``nn`` merged into
``DD`` and five vowels into three), each with a mouth-shape target. The mouth
at any instant is a blend of the targets of the phones around it, weighted by
a *dominance* that is flat over a phone and decays exponentially outside it
(Cohen and Massaro's coarticulation model): lips move smoothly from one shape
to the next, a bilabial still closes the lips even when short, and a ``K``
takes the rounding of the ``OO`` that follows it.

Openness per phone follows vowel height (0 for bilabials and silence, 1 for
``AA``); :func:`phone_openness` is also the ground truth the benchmark scores
mouth opening against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from inference.motion.phonemes import SILENCE, PhoneSegment, PhoneTrack

VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "KK", "CH", "SS", "RR", "AA", "EI", "OU")

#: ARPAbet phone → (viseme, openness 0..1).
_PHONES: dict[str, tuple[str, float]] = {
    "P": ("PP", 0.0), "B": ("PP", 0.0), "M": ("PP", 0.0),
    "F": ("FF", 0.1), "V": ("FF", 0.1),
    "TH": ("TH", 0.2), "DH": ("TH", 0.2),
    "T": ("DD", 0.2), "D": ("DD", 0.2), "N": ("DD", 0.2), "L": ("DD", 0.3),
    "K": ("KK", 0.25), "G": ("KK", 0.25), "NG": ("KK", 0.25), "HH": ("KK", 0.3),
    "CH": ("CH", 0.2), "JH": ("CH", 0.2), "SH": ("CH", 0.2), "ZH": ("CH", 0.2),
    "S": ("SS", 0.1), "Z": ("SS", 0.1),
    "R": ("RR", 0.25), "ER": ("RR", 0.4),
    "AA": ("AA", 1.0), "AE": ("AA", 0.9), "AW": ("AA", 0.9), "AY": ("AA", 0.9), "AH": ("AA", 0.7),
    "EH": ("EI", 0.6), "EY": ("EI", 0.55), "IH": ("EI", 0.45), "IY": ("EI", 0.35), "Y": ("EI", 0.3),
    "AO": ("OU", 0.8), "OW": ("OU", 0.6), "OY": ("OU", 0.6), "UH": ("OU", 0.45), "UW": ("OU", 0.35),
    "W": ("OU", 0.2),
}
#: Openness at and above which a frame counts as "open" in the benchmark.
OPEN_THRESHOLD = 0.35


def phone_viseme(phone: str) -> str:
    """Viseme class of an ARPAbet phone (``sil`` for silence and anything unknown)."""
    return _PHONES.get(phone, ("sil", 0.0))[0]


def phone_openness(phone: str) -> float:
    """Target mouth openness of a phone, 0 (closed) .. 1 (wide open)."""
    return _PHONES.get(phone, ("sil", 0.0))[1]


#: The blended mouth parameters, in this order (see :class:`inference.motion.rig.RigControls`).
MOUTH_PARAMS: tuple[str, ...] = ("jaw", "width", "round", "press", "tuck")


@dataclass(frozen=True)
class VisemeTarget:
    """Mouth target of a viseme (jaw comes from the phone's openness) and its dominance per parameter."""

    width: float
    round: float
    press: float
    tuck: float
    jaw_dominance: float
    lip_dominance: float
    spread: float = 3.0  # how far its dominance reaches outside the phone (e-folding distance in 10 ms hops)


_TARGETS: dict[str, VisemeTarget] = {
    "sil": VisemeTarget(0.0, 0.0, 0.15, 0.0, 1.0, 0.5),
    "PP": VisemeTarget(0.0, 0.0, 1.0, 0.0, 2.0, 3.0, spread=1.5),
    "FF": VisemeTarget(0.1, 0.0, 0.0, 1.0, 1.5, 2.5, spread=1.5),
    "TH": VisemeTarget(0.15, 0.0, 0.0, 0.0, 0.8, 0.5),
    "DD": VisemeTarget(0.15, 0.0, 0.0, 0.0, 0.7, 0.4),
    "KK": VisemeTarget(0.1, 0.0, 0.0, 0.0, 0.6, 0.3),
    "CH": VisemeTarget(-0.3, 0.6, 0.0, 0.0, 1.0, 1.5),
    "SS": VisemeTarget(0.45, 0.0, 0.0, 0.0, 1.0, 1.2),
    "RR": VisemeTarget(-0.3, 0.55, 0.0, 0.0, 0.8, 1.5),
    "AA": VisemeTarget(0.1, 0.0, 0.0, 0.0, 1.2, 1.0),
    "EI": VisemeTarget(0.55, 0.0, 0.0, 0.0, 1.0, 1.0),
    "OU": VisemeTarget(-0.6, 0.9, 0.0, 0.0, 1.0, 1.6),
}

#: Phones further than this from the instant are ignored.
_REACH_HOPS = 12


def segment_target(phone: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Target values and dominances ``[5]`` (order :data:`MOUTH_PARAMS`) of one phone, and its spread in hops."""
    viseme = phone_viseme(phone)
    t = _TARGETS[viseme]
    values = np.array([phone_openness(phone), t.width, t.round, t.press, t.tuck])
    press_dom = 3.0 if viseme == "PP" else 1.0
    tuck_dom = 3.0 if viseme == "FF" else 1.0
    dominance = np.array([t.jaw_dominance, t.lip_dominance, t.lip_dominance, press_dom, tuck_dom])
    return values, dominance, t.spread


_SEGMENT_CACHE = {p: segment_target(p) for p in [*_PHONES, SILENCE]}


class Coarticulation:
    """Blends phone targets into a mouth shape at any instant of a :class:`PhoneTrack`."""

    def __init__(self) -> None:
        self._num = np.zeros(len(MOUTH_PARAMS))
        self._den = np.zeros(len(MOUTH_PARAMS))

    def mouth_at(self, track: PhoneTrack, hop: float, out: np.ndarray) -> None:
        """Write the blended mouth parameters at time ``hop`` (10 ms units, fractional) into ``out`` ``[5]``."""
        segments = track.segments_between(int(math.floor(hop)) - _REACH_HOPS, int(math.ceil(hop)) + _REACH_HOPS)
        if hop >= track.known_until and segments:
            # past the decoder's horizon the newest phone holds
            last = segments[-1]
            segments = [*segments[:-1], PhoneSegment(last.label, last.start, int(math.ceil(hop)) + 1)]
        self._num[:] = 0.0
        self._den[:] = 1e-6
        if not segments:
            segments = [PhoneSegment(SILENCE, int(hop) - 1, int(hop) + 1)]
        for seg in segments:
            values, dominance, spread = _SEGMENT_CACHE.get(seg.label, _SEGMENT_CACHE[SILENCE])
            distance = max(0.0, seg.start - hop, hop - seg.end)
            weight = dominance * math.exp(-distance / spread)
            self._num += weight * values
            self._den += weight
        np.divide(self._num, self._den, out=out)


def viseme_at(track: PhoneTrack, hop: int) -> str:
    """The viseme class the lips aim for at ``hop``: the phone covering it (held past the horizon)."""
    return phone_viseme(track.label_at(hop))
