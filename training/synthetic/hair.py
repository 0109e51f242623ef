"""Hair: shapes in head coordinates, built once per identity and placed on each frame's head.

A :class:`Hair` has three layers, drawn at different depths of the painting:

* ``back``: behind the body (long hair, a bun, the back of a bob);
* ``sides``: behind the face but in front of the ears and shoulders (bob and long locks);
* ``cap``: over the skull and forehead, with strand lines and a sheen.

Shapes are polygons in head coordinates (see :mod:`training.synthetic.head_frame`)
with a depth weight per point, so the hairline follows the face when the head
turns while the back of the hair moves the other way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from training.synthetic.head_frame import HeadFrame
from training.synthetic.identity import RGB, Identity
from training.synthetic.paint import FACE, Canvas, mix_colour, shade_colour

_FRONT, _BACK = 0.45, -0.25  # depth weights of the hairline and of the hair's outer edge


@dataclass(frozen=True)
class HairShape:
    """One filled hair polygon: head coordinates ``uv`` ``[n, 2]``, depth weights ``[n]``, colour."""

    uv: np.ndarray
    depth: np.ndarray
    colour: RGB


@dataclass(frozen=True)
class Strand:
    """A strand line: head-coordinate polyline ``[n, 2]``, depth weights ``[n]``, colour, width at 256 px."""

    uv: np.ndarray
    depth: np.ndarray
    colour: RGB
    width: float


@dataclass(frozen=True)
class Hair:
    back: tuple[HairShape, ...]
    sides: tuple[HairShape, ...]
    cap: tuple[HairShape, ...]
    strands: tuple[Strand, ...]


def skull_top(identity: Identity) -> float:
    """Height of the top of the skull above the temples, in head ``v`` units."""
    return 1.75 * identity.cranium_height


def _arc(rx: float, ry: float, a0: float, a1: float, n: int, bumps: float = 0.0, freq: int = 9) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    r = 1.0 + bumps * np.abs(np.sin(freq * t))
    return np.stack([rx * r * np.cos(t), -ry * r * np.sin(t)], axis=1)


def build_hair(identity: Identity) -> Hair:
    """The hair of ``identity`` in head coordinates (deterministic)."""
    style = identity.hair_style
    if style == "bald":
        return Hair((), (), (), ())
    rng = np.random.default_rng(np.random.SeedSequence([identity.seed, 0x4A1]))
    colour = identity.hair_colour
    if style == "buzz":
        colour = mix_colour(colour, identity.skin, 0.45)
    dark = shade_colour(colour, 0.62)
    light = mix_colour(colour, (255, 255, 255), 0.14)
    top = skull_top(identity)
    width = identity.cranium_width
    vol = 0.04 if style in ("buzz", "bun") else identity.hair_volume
    curly = style == "curly"
    bumps = 0.05 if curly else 0.0

    # the cap: outer edge over the skull, inner edge along the hairline
    side_drop = -0.22 if style in ("buzz", "short", "bun") else -0.35
    outer = _arc(width + vol, top + vol, math.pi - side_drop, side_drop, 25, bumps, int(rng.integers(8, 12)))
    hairline_h = top * (0.5 + 0.15 * identity.hairline)
    part = 0.35 * identity.parting
    sideburn = 0.28 if style in ("buzz", "short", "bun") else 0.5
    if identity.bangs:
        xs = np.linspace(-0.78, 0.78, 9)
        tips = -0.42 - 0.07 * (np.arange(9) % 2) - 0.1 * np.clip(xs * np.sign(part + 1e-6), 0, None)
        front = np.stack([xs, tips], axis=1)
    else:
        xs = np.linspace(-0.7, 0.7, 7)
        dip = 0.12 * np.exp(-((xs - part) ** 2) / 0.02)
        front = np.stack([xs, -hairline_h + 0.25 * xs**2 + dip], axis=1)
    if curly:
        front[:, 1] += 0.05 * np.abs(np.sin(np.arange(len(front)) * 1.7))
    temples = [[width - 0.06, sideburn], [width - 0.12, -0.25]]
    inner = np.concatenate([temples, front[::-1], np.array(temples[::-1]) * (-1.0, 1.0)])
    inner_depth = np.concatenate([[0.05, 0.15], np.full(len(front), _FRONT), [0.15, 0.05]])
    # outer goes left → over the top → right; the hairline comes back right → left
    cap_uv = np.concatenate([outer, inner])
    cap_depth = np.concatenate([np.full(len(outer), _BACK), inner_depth])
    cap = [HairShape(cap_uv, cap_depth, colour)]

    back: list[HairShape] = []
    sides: list[HairShape] = []
    if style in ("bob", "long", "curly"):
        length = {"bob": 1.3 + 0.3 * identity.hair_length, "curly": 1.2 + 0.4 * identity.hair_length,
                  "long": 2.0 + 1.1 * identity.hair_length}[style]
        w = width + vol
        spread = 0.45 if style == "long" else 0.08
        back_uv = np.concatenate([_arc(w, top + vol, math.pi, 0.0, 15, bumps),
                                  [[w + spread, length * 0.6], [w + spread * 0.8, length], [-w - spread * 0.8, length],
                                   [-(w + spread), length * 0.6]]])
        back.append(HairShape(back_uv, np.full(len(back_uv), _BACK), shade_colour(colour, 0.8)))
        for s in (-1.0, 1.0):
            flare, end = (0.45, 0.75 * length) if style == "long" else (0.06, length)
            panel = np.array([[w, -0.3], [w + 0.06 + flare * 0.5, end * 0.5], [w + flare, end],
                              [w - 0.1, end + 0.08], [w - 0.5, end - 0.1], [w - 0.32, end * 0.45], [w - 0.22, 0.0],
                              [w - 0.3, -0.4]])
            panel[:, 0] *= s
            sides.append(HairShape(panel, np.array([_BACK, _BACK, 0.0, 0.05, 0.1, 0.1, 0.2, 0.2]), colour))
    if style == "bun":
        bun = _arc(0.42, 0.36, 0, 2 * math.pi, 20) + np.array([0.2 * identity.parting, -top - 0.25])
        back.append(HairShape(bun, np.zeros(len(bun)), colour))

    strands: list[Strand] = []
    if style != "buzz":
        crown = np.array([part * 0.6, -top * 0.92])
        n = 9 if curly else 6
        for i in range(n):
            t = (i + 0.5) / n
            end = np.array([-(width - 0.1) + 2 * (width - 0.1) * t, -hairline_h * (0.9 + 0.2 * rng.random())])
            if identity.bangs:
                end[1] = -0.5
            mid = (crown + end) / 2 + np.array([0.15 * (t - 0.5), -0.15])
            line = np.stack([crown + (mid - crown) * 0.35, mid, end * 0.92 + crown * 0.08])
            if curly:
                line = line + rng.normal(0, 0.06, line.shape)
            strands.append(Strand(line, np.array([_BACK, 0.1, _FRONT * 0.8]), dark, 1.0))
        sheen = _arc((width + vol) * 0.78, (top + vol) * 0.86, 0.62 * math.pi, 0.38 * math.pi, 8)
        sheen[:, 0] += part * 0.3
        strands.append(Strand(sheen, np.full(len(sheen), -0.05), light, 1.5))
    return Hair(tuple(back), tuple(sides), tuple(cap), tuple(strands))


def draw_hair_layer(canvas: Canvas, shapes: tuple[HairShape, ...], frame: HeadFrame) -> None:
    """Fill one layer's polygons on ``canvas`` (they own their pixels as face)."""
    for shape in shapes:
        poly = frame.to_px(shape.uv, shape.depth)
        canvas.fill(poly, shape.colour, FACE)
        canvas.line(poly, shade_colour(shape.colour, 0.55), canvas.px(0.8), closed=True)


def draw_strands(canvas: Canvas, strands: tuple[Strand, ...], frame: HeadFrame) -> None:
    """Strand lines and sheen over the cap."""
    for strand in strands:
        width = max(1, int(round(strand.width * frame.sx / 40.0)))
        canvas.line(frame.to_px(strand.uv, strand.depth), strand.colour, width)
