"""Style knobs of the motion stage and their presets.

Every knob has a documented range; :meth:`MotionStyle.validated` clamps nothing
silently: out-of-range values raise :class:`ConfigError` naming the knob.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from inference.errors import ConfigError

FramingName = Literal["head-and-shoulders", "half-body"]
Handedness = Literal["right", "left", "both"]
FRAMINGS: tuple[str, ...] = ("head-and-shoulders", "half-body")
HANDEDNESS: tuple[str, ...] = ("right", "left", "both")


@dataclass(frozen=True)
class MotionStyle:
    """How the presenter moves.

    Attributes:
        gesture_amount: 0 (hands at rest) .. 1 (large, frequent gestures).
        head_motion: 0 (still head) .. 1 (lively nods and turns).
        expressiveness: 0 (neutral face) .. 1 (strong brows, smiles, wide mouth shapes).
        idle_energy: 0 (calm idle) .. 1 (fidgety idle: more sway, glances, shifts).
        framing: "head-and-shoulders" or "half-body".
        handedness: which hand leads gestures: "right", "left" or "both".
        seed: random seed; a fixed seed gives exactly the same motion offline.
    """

    gesture_amount: float = 0.5
    head_motion: float = 0.5
    expressiveness: float = 0.5
    idle_energy: float = 0.4
    framing: FramingName = "half-body"
    handedness: Handedness = "right"
    seed: int = 7

    def validated(self) -> MotionStyle:
        for name in ("gesture_amount", "head_motion", "expressiveness", "idle_energy"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"style.{name} must be a number from 0 to 1, got {value!r}")
        if self.framing not in FRAMINGS:
            raise ConfigError(f"style.framing must be one of {', '.join(FRAMINGS)}, got {self.framing!r}")
        if self.handedness not in HANDEDNESS:
            raise ConfigError(f"style.handedness must be one of {', '.join(HANDEDNESS)}, got {self.handedness!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**31:
            raise ConfigError(f"style.seed must be a whole number from 0 to 2147483647, got {self.seed!r}")
        return self

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, object]) -> MotionStyle:
        known = {f.name for f in fields(MotionStyle)}
        return MotionStyle(**{k: v for k, v in data.items() if k in known}).validated()  # type: ignore[arg-type]


PRESETS: dict[str, MotionStyle] = {
    "calm": MotionStyle(gesture_amount=0.25, head_motion=0.3, expressiveness=0.35, idle_energy=0.2),
    "lively": MotionStyle(gesture_amount=0.85, head_motion=0.75, expressiveness=0.8, idle_energy=0.6),
    "lecturer": MotionStyle(gesture_amount=0.65, head_motion=0.5, expressiveness=0.5, idle_energy=0.35,
                            handedness="both"),
}


def apply_preset(style: MotionStyle, preset: str) -> MotionStyle:
    """``style`` with the knobs of ``preset``, keeping its framing and seed."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    return replace(p, framing=style.framing, seed=style.seed)
