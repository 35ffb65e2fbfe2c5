"""The simulator's painted scenes: a landscape for a text-to-video request.

Input: a prompt and seed, the frame size, and the margins the camera will see beyond the
first frame.
Output: a `Scene`, an RGB canvas (margins included) whose mood, land and layout follow the
prompt's words and the seed, with the `Flight`s of clouds and birds that cross it; and the
balloon `subject` that crosses a still background.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .camera import Margins
from .frames import U8, Flight, Sprite

Rgb = tuple[int, int, int]

MOODS: dict[str, tuple[Rgb, Rgb, Rgb]] = {  # sky top, horizon, sun or moon
    "day": ((70, 130, 210), (200, 225, 240), (255, 250, 225)),
    "sunset": ((60, 50, 120), (250, 150, 80), (255, 205, 120)),
    "dawn": ((90, 120, 190), (250, 200, 180), (255, 235, 200)),
    "night": ((8, 12, 35), (32, 48, 90), (235, 235, 215)),
    "overcast": ((120, 130, 145), (190, 195, 200), (235, 235, 235)),
}
MOOD_WORDS = {
    "night": ("night", "moon", "star", "stars", "midnight", "dark"),
    "sunset": ("sunset", "dusk", "evening", "golden"),
    "dawn": ("dawn", "sunrise", "morning"),
    "overcast": ("rain", "rainy", "storm", "fog", "mist", "misty", "cloudy", "grey", "gray"),
    "day": ("day", "noon", "sunny", "summer", "bright"),
}
LANDS: dict[str, tuple[float, float, float]] = {  # land -> hue, saturation, value
    "hills": (0.28, 0.55, 0.55), "sea": (0.33, 0.35, 0.35), "city": (0.62, 0.2, 0.4),
    "mountains": (0.6, 0.22, 0.5), "desert": (0.09, 0.5, 0.8), "forest": (0.35, 0.6, 0.35),
}
LAND_WORDS = {
    "sea": ("sea", "ocean", "lake", "beach", "coast", "harbor", "harbour", "lighthouse",
            "river", "water", "boat", "island", "waves"),
    "city": ("city", "street", "town", "neon", "building", "buildings", "skyline", "downtown"),
    "mountains": ("mountain", "mountains", "peak", "peaks", "snow", "snowy", "alps", "cliff"),
    "desert": ("desert", "dune", "dunes", "sand", "canyon"),
    "forest": ("forest", "tree", "trees", "wood", "woods", "jungle", "pine"),
    "hills": ("hill", "hills", "meadow", "field", "fields", "countryside", "farm", "valley"),
}


@dataclass(frozen=True)
class Scene:
    """A painted canvas (RGB, margins included) and the sprites that move over it."""

    rgb: U8
    flights: tuple[Flight, ...]


def scene_rng(prompt: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def paint_scene(prompt: str, seed: int, width: int, height: int, margin: Margins) -> Scene:
    """A landscape whose mood, land and layout follow the prompt's words and the seed."""
    rng = scene_rng(prompt, seed)
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    mood = _choose(MOOD_WORDS, words, rng, ("day", "day", "sunset", "dawn", "night", "overcast"))
    land = _choose(LAND_WORDS, words, rng, tuple(LANDS))
    top, horizon, light = (_jitter(c, rng) for c in MOODS[mood])
    painter = _Painter(rng, width, height, margin, rng.uniform(0.5, 0.68) * height)
    painter.sky(top, horizon)
    painter.light(light, night=mood == "night", hazy=mood == "overcast")
    painter.land(land, horizon, night=mood == "night")
    return Scene(np.asarray(painter.image), tuple(painter.flights(mood, horizon)))


def _choose(table: dict[str, tuple[str, ...]], words: set[str], rng: np.random.Generator,
            fallback: tuple[str, ...]) -> str:
    picked = str(rng.choice(fallback))
    return next((key for key, keys in table.items() if words.intersection(keys)), picked)


def _jitter(colour: Rgb, rng: np.random.Generator, amount: float = 0.05) -> Rgb:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
    h = (h + rng.uniform(-amount, amount)) % 1.0
    s = min(1.0, max(0.0, s + rng.uniform(-amount, amount) * 2))
    return _rgb(colorsys.hsv_to_rgb(h, s, v))


def _rgb(values: Sequence[float]) -> Rgb:
    r, g, b = (min(255, max(0, round(c * 255))) for c in values)
    return r, g, b


def _mix(a: Rgb, b: Rgb, t: float) -> Rgb:
    return _rgb([(x + (y - x) * t) / 255 for x, y in zip(a, b)])


class _Painter:
    """Draws on a canvas whose first frame sits at (left, top); x, y are frame pixels."""

    def __init__(self, rng: np.random.Generator, width: int, height: int, margin: Margins,
                 horizon_y: float) -> None:
        self.rng, self.width, self.height, self.horizon_y = rng, width, height, horizon_y
        self.left, self.top = margin[0], margin[1]
        self.size = (width + margin[0] + margin[2], height + margin[1] + margin[3])
        self.image = Image.new("RGB", self.size)
        self.draw = ImageDraw.Draw(self.image)
        self.sun = (width * rng.uniform(0.15, 0.85), horizon_y - height * rng.uniform(0.1, 0.38))

    def sky(self, top: Rgb, horizon: Rgb) -> None:
        rows = np.arange(self.size[1], dtype=np.float32) - self.top
        height = np.maximum(self.horizon_y - rows, 0) / self.horizon_y
        t = np.tanh(1.6 * height) / math.tanh(1.6)  # 1 at the frame's top, easing off above
        column = np.array(horizon, np.float32) + np.outer(t, np.subtract(top, horizon))
        band = np.clip(column, 0, 255).astype(np.uint8)[:, None, :]
        self.image.paste(Image.fromarray(np.repeat(band, self.size[0], axis=1)))

    def light(self, colour: Rgb, night: bool, hazy: bool) -> None:
        x, y = self.sun[0] + self.left, self.sun[1] + self.top
        r = self.height * self.rng.uniform(0.035, 0.07)
        if night:
            self._stars()
        self._glow(x, y, r, colour, 0.25 if hazy else 0.6)
        disc = _mix(colour, (200, 200, 200), 0.3 * hazy)
        self.draw.ellipse((x - r, y - r, x + r, y + r), fill=disc)
        if night:  # the moon's seas
            shade = _mix(colour, (120, 120, 130), 0.35)
            for dx, dy, k in ((-0.3, -0.2, 0.3), (0.25, 0.1, 0.22), (-0.1, 0.35, 0.18)):
                cx, cy, cr = x + dx * r, y + dy * r, k * r
                self.draw.ellipse((cx - cr, cy - cr, cx + cr, cy + cr), fill=shade)

    def _glow(self, x: float, y: float, r: float, colour: Rgb, strength: float) -> None:
        reach = 6 * r
        x0, y0 = max(0, round(x - reach)), max(0, round(y - reach))
        x1, y1 = min(self.size[0], round(x + reach)), min(self.size[1], round(y + reach))
        if x0 >= x1 or y0 >= y1:
            return
        yy, xx = np.ogrid[y0:y1, x0:x1]
        distance = np.hypot(xx - x, yy - y) / r
        weight = (strength * np.exp(-np.maximum(distance - 1, 0) * 0.7))[..., None]
        patch = np.asarray(self.image.crop((x0, y0, x1, y1)), np.float32)
        patch += (np.array(colour, np.float32) - patch) * weight
        self.image.paste(Image.fromarray(patch.astype(np.uint8)), (x0, y0))

    def _stars(self) -> None:
        count = 3000
        xs = self.rng.uniform(-2 * self.width, 3 * self.width, count) + self.left
        ys = self.rng.uniform(-2 * self.height, self.horizon_y, count) + self.top
        shine = self.rng.uniform(120, 255, count)
        keep = (xs >= 0) & (xs < self.size[0]) & (ys >= 0) & (ys < self.size[1])
        pixels = np.array(self.image)
        pixels[ys[keep].astype(int), xs[keep].astype(int)] = shine[keep, None].astype(np.uint8)
        self.image.paste(Image.fromarray(pixels))

    def land(self, land: str, haze: Rgb, night: bool) -> None:
        hue, sat, val = LANDS[land]
        base = _jitter(_rgb(colorsys.hsv_to_rgb(hue, sat, val * (0.35 if night else 1))), self.rng)
        layers = int(self.rng.integers(3, 5))
        for k in range(layers):
            near = (k + 1) / layers
            colour = _mix(haze, _mix(base, (0, 0, 0), 0.35 * near), 0.35 + 0.65 * near)
            y = self.horizon_y + (self.height - self.horizon_y) * 0.45 * k / layers
            self._layer(land, k, layers, y, colour, haze)

    def _layer(self, land: str, k: int, layers: int, y: float, colour: Rgb, haze: Rgb) -> None:
        amp = self.height * (0.14 if land == "mountains" and k < 2 else 0.05)
        if land == "sea" and k > 0:
            if k == 1:
                self._water(haze)
            return
        if land == "city":
            self._skyline(y, colour, k)
            return
        ridge = self._ridge(y, amp, sharp=land == "mountains" and k < 2)
        self.draw.polygon(ridge, fill=colour)
        if land == "forest" and k >= layers - 2:
            self._trees(y, amp, colour)

    def _ridge(self, y: float, amp: float, sharp: bool) -> list[tuple[float, float]]:
        xs = np.arange(-self.left // 8 * 8, self.size[0] - self.left + 8, 8, dtype=np.float64)
        freq = self.rng.uniform(0.6, 1.4, 3) * np.array([2.0, 5.0, 11.0]) * np.pi / self.width
        phase = self.rng.uniform(0, 2 * np.pi, 3)
        wave = np.sin(np.outer(xs, freq) + phase)
        shape = 1 - np.abs(wave) if sharp else wave * 0.5 + 0.5
        ys = y - amp * (shape @ np.array([0.6, 0.3, 0.1])) + self.top
        bottom = float(self.size[1])
        points = [(float(x) + self.left, float(v)) for x, v in zip(xs, ys)]
        return [(points[0][0], bottom), *points, (points[-1][0], bottom)]

    def _trees(self, y: float, amp: float, colour: Rgb) -> None:
        dark = _mix(colour, (0, 0, 0), 0.3)
        for x in np.arange(-2 * self.width, 3 * self.width, self.width / 45):
            x = x + self.rng.uniform(-8, 8) + self.left
            base = y + self.top - amp * 0.2 + self.rng.uniform(0, self.height * 0.06)
            tall = self.height * self.rng.uniform(0.05, 0.11)
            if 0 <= x < self.size[0]:
                self.draw.polygon([(x - tall / 4, base), (x, base - tall), (x + tall / 4, base)],
                                  fill=dark)

    def _skyline(self, y: float, colour: Rgb, k: int) -> None:
        x = -2.0 * self.width
        lit = _mix(colour, (255, 210, 120), 0.6)
        while x < 3 * self.width:
            span = self.width * self.rng.uniform(0.025, 0.07)
            tall = self.height * self.rng.uniform(0.08, 0.3) / (1 + k * 0.5)
            box = (x + self.left, y + self.top - tall, x + span + self.left, float(self.size[1]))
            self.draw.rectangle(box, fill=colour)
            for _ in range(int(self.rng.integers(0, 8))):
                wx = box[0] + self.rng.uniform(0.1, 0.8) * span
                wy = box[1] + self.rng.uniform(0.05, 0.9) * tall
                self.draw.rectangle((wx, wy, wx + span * 0.1, wy + tall * 0.04), fill=lit)
            x += span + self.width * self.rng.uniform(0.0, 0.01)

    def _water(self, sky: Rgb) -> None:
        near, deep = _mix(sky, (10, 30, 60), 0.2), _mix(sky, (10, 30, 60), 0.6)
        top = round(self.horizon_y + self.top)
        rows = np.arange(max(1, self.size[1] - top), dtype=np.float32)[:, None]
        t = np.minimum(rows / (self.height - self.horizon_y), 1.5)
        band = np.clip(np.array(near, np.float32) + t * np.subtract(deep, near), 0, 255)
        band = band.astype(np.uint8)
        water = np.repeat(band[:, None, :], self.size[0], axis=1)
        self.image.paste(Image.fromarray(water), (0, top))
        x, depth = self.sun[0] + self.left, self.height - self.horizon_y  # the sun's reflection
        for row in range(0, round(depth), max(3, self.height // 120)):
            half = self.height * 0.05 * (1 - row / depth) * self.rng.uniform(0.4, 1.0)
            glint = _mix(sky, (255, 240, 200), 0.5)
            self.draw.line((x - half, top + row, x + half, top + row), fill=glint)

    def flights(self, mood: str, sky: Rgb) -> list[Flight]:
        """Clouds drifting and, by day, a few birds."""
        rng, w, h = self.rng, self.width, self.height
        cloud = _mix(sky, (255, 255, 255), 0.2 if mood == "night" else 0.7)
        clouds = [Flight(_cloud(rng, w, h, cloud), w * rng.uniform(-0.1, 1.1),
                         self.horizon_y * rng.uniform(0.1, 0.7), vx=w * rng.uniform(-0.04, 0.04))
                  for _ in range(int(rng.integers(2, 6)))]
        if mood == "night":
            return clouds
        heading = 1 if rng.random() < 0.5 else -1
        cx, cy = w * rng.uniform(0.2, 0.8), self.horizon_y * rng.uniform(0.2, 0.6)
        birds = [Flight(_bird(h), cx + rng.normal(0, w * 0.05), cy + rng.normal(0, h * 0.04),
                        vx=heading * w * rng.uniform(0.07, 0.1), bob=h * 0.01,
                        rate=rng.uniform(0.5, 1.0), phase=rng.uniform(0, 6.3))
                 for _ in range(int(rng.integers(2, 7)))]
        return clouds + birds


def _cloud(rng: np.random.Generator, width: int, height: int, colour: Rgb) -> Sprite:
    w, h = round(width * rng.uniform(0.12, 0.25)), round(height * rng.uniform(0.06, 0.1))
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(7):
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.45, 0.6) * h
        rx, ry = rng.uniform(0.1, 0.2) * w, rng.uniform(0.15, 0.3) * h
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=int(rng.integers(170, 230)))
    image = Image.new("RGB", (w, h), colour)
    image.putalpha(mask.filter(ImageFilter.GaussianBlur(h * 0.08)))
    return Sprite(image)


def _bird(height: int) -> Sprite:
    size = max(6, round(height / 40))
    image = Image.new("RGBA", (size, size // 2 + 2), (30, 30, 35, 0))
    line = [(0, 0), (size / 2, size / 3), (size - 1, 0)]
    ImageDraw.Draw(image).line(line, fill=(30, 30, 35, 255), width=max(1, size // 8))
    return Sprite(image)


def subject(rng: np.random.Generator, width: int, height: int, seconds: float) -> Flight:
    """A red balloon crossing the frame in front of a still background."""
    r = round(height * 0.07)
    image = Image.new("RGBA", (2 * r + 2, 3 * r + 2), (210, 40, 45, 0))
    draw = ImageDraw.Draw(image)
    draw.line((r, 2 * r, r + r // 3, 3 * r), fill=(230, 230, 230, 255), width=max(1, r // 12))
    draw.ellipse((1, 1, 2 * r, 2 * r + r // 4), fill=(210, 40, 45, 255))
    draw.ellipse((r // 2, r // 3, r, r), fill=(250, 150, 150, 255))
    direction = 1 if rng.random() < 0.5 else -1
    start = width / 2 - direction * width * 0.62
    return Flight(Sprite(image), start, height * rng.uniform(0.3, 0.6),
                  vx=direction * width * 1.24 / seconds, vy=-height * 0.05 / seconds,
                  bob=height * 0.03, rate=0.7)
