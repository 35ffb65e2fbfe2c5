"""The simulator's looks: styles and effects, as lookup tables on Y, U and V.

Input: a style's or effect's name (the tables `STYLE_TONES` and `EFFECTS`), the strength a
look applies at (0 none, 1 full) and how far an effect's flash takes a frame to white.
Output: per-plane lookup tables, an effect's camera motion over the clip, and those applied
in place to a `FrameBuffer` (with the comic style's halftone dots).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .camera import View, smoothstep
from .frames import U8, FrameBuffer, Tables

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Tone:
    """A colour treatment, applied at a strength from 0 (none) to 1."""

    contrast: float = 1.0
    lift: float = 0.0
    levels: int = 0  # posterize luma to this many steps
    saturation: float = 1.0
    shift_u: float = 0.0  # + bluer, - yellower
    shift_v: float = 0.0  # + redder, - greener
    invert: bool = False
    dots: bool = False  # a halftone screen

    def tables(self, strength: float, flash: float = 0.0) -> tuple[U8, U8, U8]:
        x = np.arange(256, dtype=np.float64)
        y = (x - 126) * self.contrast + 126 + self.lift
        y = 251 - y if self.invert else y
        if self.levels:
            step = 219 / (self.levels - 1)
            y = 16 + np.round((np.clip(y, 16, 235) - 16) / step) * step
        y += (235 - y) * flash
        chroma = (x - 128) * self.saturation + 128
        return (_toward(x, y, strength), _toward(x, chroma + self.shift_u, strength),
                _toward(x, chroma + self.shift_v, strength))


def _toward(x: F64, target: F64, strength: float) -> U8:
    return np.clip(np.round(x + (target - x) * strength), 0, 255).astype(np.uint8)


STYLE_TONES = {
    "anime": Tone(contrast=1.1, levels=8, saturation=1.5),
    "3d_animation": Tone(contrast=1.2, saturation=1.15),
    "clay": Tone(contrast=0.8, lift=10, levels=10, saturation=1.1, shift_u=-16, shift_v=14),
    "comic": Tone(contrast=1.3, levels=5, saturation=1.4, dots=True),
    "cyberpunk": Tone(contrast=1.2, lift=-10, saturation=1.3, shift_u=22, shift_v=18),
}


def _wave(rate: float, seconds: float, phase: float = 0.0) -> float:
    return math.sin(2 * math.pi * rate * seconds + phase)


Motion = Callable[[float, float], View]  # progress 0..1, seconds -> view


def _shake(p: float, s: float) -> View:
    return View(dx=0.012 * _wave(7.3, s), dy=0.01 * _wave(5.1, s, 1), angle=1.5 * _wave(4.3, s))


def _pulse(p: float, s: float) -> View:
    return View(zoom=1 + 0.07 * _wave(1.0, s) ** 2)


def _sway(p: float, s: float) -> View:
    return View(angle=6 * _wave(0.9, s), dy=0.02 * abs(_wave(0.9, s)))


def _bounce(p: float, s: float) -> View:
    return View(zoom=1.04, dy=-0.035 * abs(_wave(1.2, s)))


def _spin(p: float, s: float) -> View:
    return View(zoom=1 + 0.25 * math.sin(math.pi * p), angle=360 * smoothstep(p))


def _punch(p: float, s: float) -> View:
    hit = math.exp(-((p - 0.45) / 0.08) ** 2)
    return View(zoom=1 + 0.3 * hit).then(_shake(p, s).weaken(hit))


def _swell(p: float, s: float) -> View:
    return View(zoom=1 + 0.25 * p + 0.03 * _wave(2.0, s))


def _drift(p: float, s: float) -> View:
    return View(dx=0.03 * _wave(0.4, s), dy=0.02 * _wave(0.6, s), angle=3 * _wave(0.5, s))


@dataclass(frozen=True)
class Effect:
    motion: Motion
    tone: Tone = Tone()
    flashes: float = 0.0  # white flashes per second


_LOVE = Tone(lift=8, contrast=0.9, shift_u=4, shift_v=16)
EFFECTS: dict[str, Effect] = {
    "bikini up": Effect(_swell, Tone(lift=6, saturation=1.2)),
    "the tigers touch": Effect(_shake, Tone(saturation=1.3, shift_u=-16, shift_v=14)),
    "jiggle jiggle": Effect(_bounce, Tone(saturation=1.2)),
    "hug your love": Effect(_pulse, _LOVE),
    "kiss me ai": Effect(_pulse, _LOVE),
    "subject 3 fever": Effect(_sway, Tone(saturation=1.4)),
    "fin-tastic mermaid": Effect(_drift, Tone(saturation=1.2, shift_u=18, shift_v=-14)),
    "lets ymca": Effect(_bounce, Tone(saturation=1.3, shift_v=6)),
    "skeleton dance": Effect(_sway, Tone(saturation=0.0, contrast=1.3, invert=True)),
    "kungfu club": Effect(_shake, Tone(contrast=1.2, shift_u=-8, shift_v=8)),
    "boom drop": Effect(_punch, Tone(contrast=1.15), flashes=1.0),
    "vroom vroom step": Effect(_bounce, Tone(contrast=1.1, saturation=1.2)),
    "creepy devil smile": Effect(_pulse, Tone(contrast=1.2, lift=-25, saturation=0.6,
                                              shift_u=-8, shift_v=30)),
    "pubg winner hit": Effect(_punch, Tone(saturation=1.2, shift_u=-10, shift_v=10), flashes=1.5),
    "360 microwave": Effect(_spin, Tone(lift=5, shift_u=-6, shift_v=10)),
    "eye zoom challenge": Effect(_punch, Tone(contrast=1.1)),
    "muscle surge": Effect(_swell, Tone(contrast=1.25, saturation=1.2)),
    "punch face": Effect(_punch, Tone(contrast=1.15), flashes=2.0),
    "balloon belly": Effect(_swell, Tone(lift=5, saturation=1.1)),
    "kiss kiss": Effect(_pulse, _LOVE),
}


# -- applying a look to a frame ------------------------------------------------------------


@lru_cache(maxsize=256)
def look_tables(tones: tuple[Tone, ...], strength: int, flash: int) -> Tables:
    """The tones' lookup tables chained, at strength and flash in 64ths; None: unchanged."""
    identity = np.arange(256, dtype=np.uint8)
    tables = [identity] * 3
    for tone in tones:
        tables = [new[old] for old, new in zip(tables, tone.tables(strength / 64, flash / 64))]
        flash = 0
    return tuple(None if np.array_equal(t, identity) else t for t in tables)


def apply_look(tones: tuple[Tone, ...], strength: float, flash: float,
               frame: FrameBuffer) -> None:
    if strength <= 0 or not (tones or flash):
        return
    tables = look_tables(tones, round(strength * 64), round(flash * 64))
    for plane, table in zip(frame.planes, tables):
        if table is not None:
            np.take(table, plane, out=plane)


def dot_screen(width: int, height: int) -> U8:
    """A Ben-Day dot screen: ink where a dot is, white elsewhere (used with minimum)."""
    pitch = max(4, height // 90)
    yy, xx = np.ogrid[:height, :width]
    dx = (xx % pitch) - pitch / 2
    dy = (yy % pitch) - pitch / 2
    return np.where(dx * dx + dy * dy <= (pitch * 0.3) ** 2, 70, 255).astype(np.uint8)


def apply_dots(dots: U8, strength: float, frame: FrameBuffer) -> None:
    if strength < 1:  # lighter dots while the look fades in or out
        ink = (255 - dots.astype(np.uint16)) * round(strength * 256) >> 8
        dots = (255 - ink).astype(np.uint8)
    np.minimum(frame.planes[0], dots, out=frame.planes[0])
