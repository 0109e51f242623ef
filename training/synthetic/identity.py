"""Presenter identities: every visual trait of a synthetic person, drawn from a seed.

An :class:`Identity` is a frozen bag of parameters (colours in RGB 0..255, sizes
relative to the keypoints they dress). :func:`sample_identity` draws one from a
seed; the same seed always gives the same person. Body and face *proportions*
live in :class:`Proportions` and are applied to keypoints (see
``training.synthetic.proportions``), so the drawing always follows the keypoints
it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]

HAIR_STYLES: tuple[str, ...] = ("buzz", "short", "bob", "long", "bun", "curly", "bald")
COLLARS: tuple[str, ...] = ("round", "v", "shirt")
BACKGROUNDS: tuple[str, ...] = ("vertical", "diagonal", "radial")

#: Skin tones from very light to very dark.
_SKIN_TONES: tuple[RGB, ...] = (
    (255, 224, 204), (243, 204, 176), (234, 189, 157), (214, 164, 126),
    (190, 135, 98), (160, 105, 72), (121, 78, 52), (84, 54, 38),
)
_NATURAL_HAIR: tuple[RGB, ...] = (
    (22, 18, 18), (48, 32, 24), (86, 56, 36), (128, 88, 56),
    (150, 70, 40), (214, 178, 112), (236, 222, 184), (160, 158, 156),
)
_DYED_HAIR: tuple[RGB, ...] = ((40, 90, 200), (220, 90, 160), (120, 60, 170), (40, 150, 120), (230, 120, 40))
_IRIS: tuple[RGB, ...] = ((70, 45, 25), (110, 70, 35), (60, 100, 140), (90, 130, 90), (120, 110, 70), (40, 30, 25))
_LIPS: tuple[RGB, ...] = ((200, 100, 100), (180, 80, 90), (160, 90, 80), (210, 120, 120), (150, 60, 70))
_SHIRTS: tuple[RGB, ...] = (
    (40, 70, 140), (150, 40, 50), (40, 110, 80), (230, 230, 225), (30, 30, 36), (200, 160, 60),
    (110, 60, 140), (90, 140, 190), (220, 120, 90), (120, 120, 126), (70, 50, 40), (20, 120, 140),
)


@dataclass(frozen=True)
class Proportions:
    """Per-person keypoint proportions; each is a factor around 1 (or an offset around 0).

    Attributes:
        face_width, face_height: face size about the nose tip.
        jaw_square: 0 oval .. 1 square jaw (pushes the lower jaw outward).
        eye_scale: eye opening size about each eye's centre.
        eye_spacing: horizontal eye offset, in face widths (+ apart).
        mouth_width: lip width about the mouth centre.
        nose_length: lower nose offset, in face widths (+ longer).
        shoulder_width: shoulder span about the neck.
        arm_length: upper arm and forearm length.
        hand_size: hand size about the wrist.
    """

    face_width: float = 1.0
    face_height: float = 1.0
    jaw_square: float = 0.0
    eye_scale: float = 1.0
    eye_spacing: float = 0.0
    mouth_width: float = 1.0
    nose_length: float = 0.0
    shoulder_width: float = 1.0
    arm_length: float = 1.0
    hand_size: float = 1.0


@dataclass(frozen=True)
class Glasses:
    """Spectacles: ``shape`` "round" or "rect", frame colour, frame thickness in head units."""

    shape: str
    colour: RGB
    thickness: float


@dataclass(frozen=True)
class Background:
    """A studio backdrop: a two-colour gradient plus a few soft flat shapes.

    ``shapes`` holds ``(kind, cx, cy, w, h, colour)`` with kind "disc", "panel" or "shelf"
    and positions/sizes in frame units (0..1).
    """

    kind: str
    top: RGB
    bottom: RGB
    shapes: tuple[tuple[str, float, float, float, float, RGB], ...]


@dataclass(frozen=True)
class Identity:
    """Everything that makes one synthetic presenter look like themselves."""

    seed: int
    skin: RGB
    blush: float  # 0..1 cheek colour strength
    hair_style: str
    hair_colour: RGB
    bangs: bool
    hair_volume: float  # how far the hair stands off the skull, head units
    hairline: float  # forehead height of the hairline, 0 low .. 1 high
    parting: float  # -1 .. 1, side of the parting
    hair_length: float  # long/bob styles: how far below the chin, head units
    brow_colour: RGB
    brow_thickness: float  # head units
    iris: RGB
    iris_scale: float
    lips: RGB
    glasses: Glasses | None
    shirt: RGB
    shirt_trim: RGB
    collar: str
    long_sleeves: bool
    stripes: RGB | None
    background: Background
    cranium_height: float  # skull top above the eyes, relative to the eyes-to-chin distance
    cranium_width: float  # skull width relative to the temples
    neck_width: float  # relative to the face width
    ear_size: float
    light_angle: float  # direction the light comes from, radians in image coordinates (−π/2 = above)
    shading: float  # 0 flat .. 1 strong shading
    proportions: Proportions


def _pick(rng: np.random.Generator, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    c = np.asarray(colour, dtype=np.float64) * (1.0 + rng.uniform(-amount, amount)) + rng.normal(0, 255 * amount / 3, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _random_colour(rng: np.random.Generator, lo: int = 20, hi: int = 240) -> RGB:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))  # type: ignore[return-value]


def _background(rng: np.random.Generator) -> Background:
    base = _random_colour(rng, 40, 230)
    top = _jitter(rng, base, 0.25)
    bottom = _mix(_jitter(rng, base, 0.35), (20, 20, 30), float(rng.uniform(0.1, 0.5)))
    shapes = []
    for _ in range(int(rng.integers(0, 4))):
        kind = str(_pick(rng, ("disc", "panel", "shelf")))
        colour = _mix(top, _random_colour(rng), float(rng.uniform(0.2, 0.6)))
        shapes.append((kind, float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.05, 0.7)),
                       float(rng.uniform(0.08, 0.35)), float(rng.uniform(0.05, 0.4)), colour))
    return Background(kind=str(_pick(rng, BACKGROUNDS)), top=top, bottom=bottom, shapes=tuple(shapes))


def sample_identity(seed: int) -> Identity:
    """Draw an identity from ``seed`` (any non-negative integer); the same seed gives the same person."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"identity seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1D]))
    skin = _jitter(rng, _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))], 0.05)
    dyed = rng.random() < 0.12
    hair = _jitter(rng, _pick(rng, _DYED_HAIR if dyed else _NATURAL_HAIR), 0.08)  # type: ignore[arg-type]
    style = str(_pick(rng, HAIR_STYLES)) if rng.random() > 0.04 else "bald"
    if style == "bald" and rng.random() < 0.8:
        style = "short"  # keep bald heads rare
    darker = _mix(hair, (10, 8, 8), 0.35)
    glasses = None
    if rng.random() < 0.3:
        glasses = Glasses(shape=str(_pick(rng, ("round", "rect"))),
                          colour=_jitter(rng, _pick(rng, ((20, 20, 20), (90, 60, 30), (170, 170, 180), (140, 30, 40))), 0.1),  # type: ignore[arg-type]
                          thickness=float(rng.uniform(0.025, 0.05)))
    shirt = _jitter(rng, _pick(rng, _SHIRTS), 0.12)  # type: ignore[arg-type]
    trim = _mix(shirt, (255, 255, 255) if sum(shirt) < 380 else (0, 0, 0), float(rng.uniform(0.2, 0.45)))
    lips = _mix(_jitter(rng, _pick(rng, _LIPS), 0.08), skin, float(rng.uniform(0.15, 0.5)))  # type: ignore[arg-type]
    proportions = Proportions(
        face_width=float(rng.uniform(0.92, 1.08)), face_height=float(rng.uniform(0.93, 1.07)),
        jaw_square=float(rng.uniform(0.0, 1.0)), eye_scale=float(rng.uniform(0.85, 1.2)),
        eye_spacing=float(rng.uniform(-0.02, 0.02)), mouth_width=float(rng.uniform(0.88, 1.12)),
        nose_length=float(rng.uniform(-0.02, 0.03)), shoulder_width=float(rng.uniform(0.88, 1.1)),
        arm_length=float(rng.uniform(0.92, 1.06)), hand_size=float(rng.uniform(0.9, 1.1)),
    )
    return Identity(
        seed=int(seed),
        skin=skin,
        blush=float(rng.uniform(0.0, 0.6)),
        hair_style=style,
        hair_colour=hair,
        bangs=bool(rng.random() < 0.35) and style not in ("buzz", "bald"),
        hair_volume=float(rng.uniform(0.06, 0.2)) * (1.8 if style == "curly" else 1.0),
        hairline=float(rng.uniform(0.0, 1.0)),
        parting=float(rng.uniform(-1.0, 1.0)),
        hair_length=float(rng.uniform(0.6, 2.2)) if style == "long" else float(rng.uniform(0.1, 0.5)),
        brow_colour=darker,
        brow_thickness=float(rng.uniform(0.035, 0.07)),
        iris=_jitter(rng, _pick(rng, _IRIS), 0.1),  # type: ignore[arg-type]
        iris_scale=float(rng.uniform(0.85, 1.1)),
        lips=lips,
        glasses=glasses,
        shirt=shirt,
        shirt_trim=trim,
        collar=str(_pick(rng, COLLARS)),
        long_sleeves=bool(rng.random() < 0.6),
        stripes=_mix(shirt, _random_colour(rng), 0.5) if rng.random() < 0.2 else None,
        background=_background(rng),
        cranium_height=float(rng.uniform(0.9, 1.05)),
        cranium_width=float(rng.uniform(1.0, 1.08)),
        neck_width=float(rng.uniform(0.32, 0.42)),
        ear_size=float(rng.uniform(0.85, 1.15)),
        light_angle=float(rng.uniform(-2.4, -0.7)),
        shading=float(rng.uniform(0.5, 1.0)),
        proportions=proportions,
    )
