"""The simulator's pictures, kept as YUV planes.

Input: a prompt and seed (text-to-video) or the request's frame images, the frame size, and
the margins the camera will see beyond the first frame.
Output: `Canvas` planes (BT.709, limited range, 4:2:0) that a `View` samples into a
`FrameBuffer`, and `Sprite`s (clouds, birds, a moving subject, the caption) pasted on top.
Frames are built in YUV so the encoder gets them without a colour conversion per frame.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image, ImageDraw, ImageFilter, ImageFont

U8 = npt.NDArray[np.uint8]
Rgb = tuple[int, int, int]
Margins = tuple[int, int, int, int]  # left, top, right, bottom, all even
Tables = tuple[U8 | None, ...]  # lookup tables for Y, U and V; None leaves a plane unchanged


def rgb_to_yuv(rgb: U8) -> tuple[U8, U8, U8]:
    """BT.709 limited-range 4:2:0 planes of an even-sized RGB array."""
    height, width = rgb.shape[:2]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    yuv = frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709,
                         dst_color_range=ColorRange.MPEG)
    return split_planes(cast(U8, yuv.to_ndarray()), width, height)


_BT709 = np.array([[0.2126, 0.7152, 0.0722],
                   [-0.2126 / 1.8556, -0.7152 / 1.8556, 0.5],
                   [0.5, -0.7152 / 1.5748, -0.0722 / 1.5748]], np.float32)


def small_rgb_to_yuv(rgb: U8) -> tuple[U8, U8, U8]:
    """`rgb_to_yuv` in numpy: slow for frames, but free of swscale's set-up cost per size."""
    height, width = rgb.shape[:2]
    ypbpr = rgb.astype(np.float32) @ (_BT709.T / 255)
    luma = (16 + 219 * ypbpr[..., 0] + 0.5).astype(np.uint8)
    chroma = ypbpr[..., 1:].reshape(height // 2, 2, width // 2, 2, 2).mean(axis=(1, 3))
    u, v = np.moveaxis((128 + 224 * chroma + 0.5).astype(np.uint8), 2, 0)
    return luma, np.ascontiguousarray(u), np.ascontiguousarray(v)


def split_planes(buf: U8, width: int, height: int) -> tuple[U8, U8, U8]:
    """Views of the Y, U and V planes in a packed yuv420p buffer."""
    flat = buf.reshape(-1)
    luma, quarter = width * height, width * height // 4
    chroma = (height // 2, width // 2)
    return (flat[:luma].reshape(height, width),
            flat[luma:luma + quarter].reshape(chroma),
            flat[luma + quarter:luma + 2 * quarter].reshape(chroma))


@dataclass(frozen=True)
class FrameBuffer:
    """One yuv420p frame in a single array, with views of its planes."""

    buf: U8
    planes: tuple[U8, U8, U8]

    @classmethod
    def new(cls, width: int, height: int) -> FrameBuffer:
        buf = np.empty((height * 3 // 2, width), np.uint8)
        return cls(buf, split_planes(buf, width, height))

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.planes[0].shape
        return width, height

    def mix(self, other: FrameBuffer, weight: float) -> None:
        """Move this frame `weight` (0..1) of the way towards `other`."""
        k = round(weight * 256)
        mixed = self.buf.astype(np.uint16) * (256 - k)
        mixed += other.buf.astype(np.uint16) * k
        mixed += 128
        self.buf[...] = mixed >> 8


@dataclass(frozen=True)
class View:
    """Where the camera looks, relative to the first frame.

    zoom > 1 magnifies; angle (degrees) turns the camera; dx, dy move its centre by
    fractions of the frame width and height.
    """

    zoom: float = 1.0
    angle: float = 0.0
    dx: float = 0.0
    dy: float = 0.0

    def then(self, other: View) -> View:
        return View(self.zoom * other.zoom, self.angle + other.angle,
                    self.dx + other.dx, self.dy + other.dy)

    def weaken(self, strength: float) -> View:
        return View(self.zoom ** strength, self.angle * strength,
                    self.dx * strength, self.dy * strength)

    def affine(self, width: float, height: float) -> tuple[float, ...]:
        """PIL AFFINE coefficients: output pixel -> point of the first frame."""
        rad = math.radians(self.angle)
        a, b = math.cos(rad) / self.zoom, math.sin(rad) / self.zoom
        cx, cy = width * (0.5 + self.dx), height * (0.5 + self.dy)
        return (a, b, cx - a * width / 2 - b * height / 2,
                -b, a, cy + b * width / 2 - a * height / 2)

    def to_screen(self, x: float, y: float, width: int, height: int) -> tuple[float, float]:
        """Where a point of the first frame appears in this view."""
        a, b, c, d, e, f = self.affine(width, height)
        det, px, py = a * e - b * d, x - c, y - f
        return (e * px - b * py) / det, (a * py - d * px) / det


def margins(views: Sequence[View], width: int, height: int) -> Margins:
    """How far beyond the first frame any of `views` looks, padded for the filters."""
    xs, ys = [], []
    for view in views:
        a, b, c, d, e, f = view.affine(width, height)
        for x, y in ((0, 0), (width, 0), (0, height), (width, height)):
            xs.append(a * x + b * y + c)
            ys.append(d * x + e * y + f)
    return (_even(-min(xs)), _even(-min(ys)), _even(max(xs) - width), _even(max(ys) - height))


def _even(extent: float) -> int:
    return 2 * math.ceil((max(0.0, extent) + 4) / 2)


FINE_ZOOM = 0.7  # views zoomed out further sample the softened level, which does not alias


@dataclass(frozen=True)
class _Level:
    """A resampled copy of part of a canvas: `box` (canvas pixels) at `scale` pixels each."""

    planes: tuple[U8, ...]
    box: Margins  # x0, y0, x1, y1
    scale: int

    @classmethod
    def fine(cls, images: Sequence[Image.Image], box: Margins) -> _Level:
        """Twice the resolution, bilinear: nearest lookups in it act as a cheap bilinear."""
        def enlarge(image: Image.Image) -> Image.Image:
            return image.resize((2 * image.width, 2 * image.height), Image.Resampling.BILINEAR)
        return cls(tuple(np.asarray(enlarge(_crop(image, box, sub)))
                         for image, sub in zip(images, (1, 2, 2))), box, 2)

    @classmethod
    def soft(cls, images: Sequence[Image.Image], box: Margins) -> _Level:
        """The same resolution with detail above half its frequency removed."""
        def soften(image: Image.Image) -> Image.Image:
            return image.reduce(2).resize(image.size, Image.Resampling.BILINEAR)
        return cls(tuple(np.asarray(soften(_crop(image, box, sub)))
                         for image, sub in zip(images, (1, 2, 2))), box, 1)

    def recoloured(self, tables: Tables) -> _Level:
        return _Level(recolour(self.planes, tables), self.box, self.scale)

    def sample(self, coeffs: tuple[float, ...], origin: tuple[int, int],
               frame: FrameBuffer) -> None:
        for plane, out, sub in zip(self.planes, frame.planes, (1, 2, 2)):
            offset = ((origin[0] - self.box[0]) / sub, (origin[1] - self.box[1]) / sub)
            _sample_plane(plane, _plane_coeffs(coeffs, sub, offset, self.scale), out)


def recolour(planes: Sequence[U8], tables: Tables) -> tuple[U8, U8, U8]:
    """The planes passed through their lookup tables."""
    y, u, v = (p if t is None else np.take(t, p) for p, t in zip(planes, tables))
    return y, u, v


def _crop(image: Image.Image, box: Margins, sub: int) -> Image.Image:
    return image.crop((box[0] // sub, box[1] // sub, box[2] // sub, box[3] // sub))


@dataclass(frozen=True)
class Canvas:
    """Planes larger than the frame; (left, top) is where the first frame sits in them.

    An unmoved view copies the planes exactly. Moving views use nearest-neighbour lookups in
    a `_Level` made once: bilinear-like quality at a fraction of a per-frame resize's cost.
    """

    planes: tuple[U8, U8, U8]
    left: int
    top: int
    levels: tuple[_Level | None, _Level | None] = (None, None)  # fine, soft

    @classmethod
    def build(cls, planes: tuple[U8, U8, U8], margin: Margins,
              views: Sequence[View]) -> Canvas:
        """A canvas of `planes`, with the levels that `views` will need."""
        images = [Image.fromarray(p) for p in planes]
        near = [v for v in views if v.zoom >= FINE_ZOOM and v.angle == 0 and v != View()]
        far = [v for v in views if v.zoom < FINE_ZOOM]
        fine = _Level.fine(images, _seen(near, margin, planes[0].shape)) if near else None
        soft = _Level.soft(images, _seen(far, margin, planes[0].shape)) if far else None
        return cls(planes, margin[0], margin[1], (fine, soft))

    @classmethod
    def mirrored(cls, rgb: U8, margin: Margins, views: Sequence[View]) -> Canvas:
        """The frame-sized `rgb`, extended into the margins by mirroring it."""
        left, top, right, bottom = margin
        planes = tuple(np.pad(p, ((top // s, bottom // s), (left // s, right // s)), "symmetric")
                       for p, s in zip(rgb_to_yuv(rgb), (1, 2, 2)))
        return cls.build((planes[0], planes[1], planes[2]), margin, views)

    def recoloured(self, tables: Tables) -> Canvas:
        fine, soft = self.levels
        return Canvas(recolour(self.planes, tables), self.left, self.top,
                      (fine.recoloured(tables) if fine else None,
                       soft.recoloured(tables) if soft else None))

    def sample(self, view: View, frame: FrameBuffer) -> None:
        width, height = frame.size
        if view == View():
            for plane, out, sub in zip(self.planes, frame.planes, (1, 2, 2)):
                x, y = self.left // sub, self.top // sub
                out[...] = plane[y:y + out.shape[0], x:x + out.shape[1]]
            return
        if view.zoom < FINE_ZOOM:
            level = self.levels[1]
        elif view.angle == 0:
            level = self.levels[0]
        else:  # turning: the enlarged level would cost twice the memory traffic
            level = _Level(self.planes, (0, 0, *self.planes[0].shape[::-1]), 1)
        assert level is not None, "the canvas was built without this view"
        level.sample(view.affine(width, height), (self.left, self.top), frame)


def _seen(views: Sequence[View], margin: Margins, shape: tuple[int, ...]) -> Margins:
    """The box of canvas pixels that `views` look at."""
    frame_w, frame_h = shape[1] - margin[0] - margin[2], shape[0] - margin[1] - margin[3]
    seen = margins(views, frame_w, frame_h)
    return (margin[0] - seen[0], margin[1] - seen[1],
            margin[0] + frame_w + seen[2], margin[1] + frame_h + seen[3])


def _plane_coeffs(coeffs: tuple[float, ...], sub: int, offset: tuple[float, float],
                  scale: int) -> tuple[float, ...]:
    """Affine coefficients from output plane pixels to a (sub-sampled, enlarged) plane."""
    a, b, c, d, e, f = coeffs
    return (scale * a, scale * b, scale * (c / sub + offset[0]),
            scale * d, scale * e, scale * (f / sub + offset[1]))


def _sample_plane(plane: U8, coeffs: tuple[float, ...], out: U8) -> None:
    """Fill `out` with nearest lookups of the plane points the coefficients map it to."""
    a, b, c, d, e, f = coeffs
    height, width = out.shape
    if b != 0:  # a turning camera
        moved = Image.fromarray(plane).transform((width, height), Image.Transform.AFFINE, coeffs,
                                                 resample=Image.Resampling.NEAREST)
        out[...] = np.asarray(moved)
        return
    rows = _lookups(f, e, height, plane.shape[0])
    cols = _lookups(c, a, width, plane.shape[1])
    first, last = int(cols[0]), int(cols[-1])
    np.take(plane[rows, first:last + 1], cols - first, axis=1, out=out)


def _lookups(start: float, step: float, count: int, limit: int) -> npt.NDArray[np.intp]:
    """Which source pixel each output pixel's centre falls in, along one axis."""
    centres = start + step * (np.arange(count, dtype=np.float64) + 0.5)
    return np.clip(centres, 0, limit - 1).astype(np.intp)


@dataclass(frozen=True)
class _Layer:
    """A sprite's plane at one size: premultiplied colour and what shows through, /256."""

    colour: npt.NDArray[np.uint16]
    alpha: npt.NDArray[np.uint16]
    through: npt.NDArray[np.uint16]

    @classmethod
    def of(cls, plane: U8, alpha: U8) -> _Layer:
        weight = alpha.astype(np.uint16) + (alpha >= 128)  # 0..256, so that >> 8 divides
        return cls(plane * weight, weight, 256 - weight)

    def blend(self, dst: U8, corner: tuple[int, int], level: int) -> None:
        """Blend into `dst` with the top-left at `corner`, clipped to `dst`."""
        left, top = corner
        x0, y0 = max(left, 0), max(top, 0)
        x1 = min(left + self.alpha.shape[1], dst.shape[1])
        y1 = min(top + self.alpha.shape[0], dst.shape[0])
        if x0 >= x1 or y0 >= y1:
            return
        region = dst[y0:y1, x0:x1]
        inside = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
        if level >= 256:
            mixed = region * self.through[inside] + self.colour[inside]
        else:
            weight = (self.alpha[inside].astype(np.uint32) * level) >> 8
            colour = (self.colour[inside].astype(np.uint32) * level) >> 8
            mixed = region * (256 - weight) + colour
        region[...] = mixed >> 8


@dataclass(frozen=True)
class Sprite:
    """A small RGBA picture, kept as YUV planes and alpha; scaled layers are cached."""

    rgba: Image.Image
    tables: Tables = ()  # a colouring applied to the planes once
    _cache: dict[int, tuple[_Layer, ...]] = field(default_factory=dict, compare=False, repr=False)

    def recoloured(self, tables: Tables) -> Sprite:
        return Sprite(self.rgba, tables)

    @cached_property
    def _planes(self) -> tuple[Image.Image, ...]:
        """Y, U, V, alpha and half-size alpha at scale 1, sized to even numbers."""
        even = Image.new("RGBA", (self.rgba.width + self.rgba.width % 2,
                                  self.rgba.height + self.rgba.height % 2))
        even.paste(self.rgba)
        alpha = even.getchannel("A")
        yuv = small_rgb_to_yuv(np.asarray(even.convert("RGB")))
        if self.tables:
            yuv = recolour(yuv, self.tables)
        return (*(Image.fromarray(p) for p in yuv), alpha, alpha.reduce(2))

    def layers(self, scale: float) -> tuple[_Layer, ...]:
        """Y, U and V layers at `scale`, rounded to 1/32."""
        key = max(1, round(scale * 32))
        if key not in self._cache:
            self._cache[key] = _scaled_layers(self._planes, key / 32)
        return self._cache[key]

    def size(self, scale: float = 1.0) -> tuple[int, int]:
        height, width = self.layers(scale)[0].alpha.shape
        return width, height

    def paste(self, frame: FrameBuffer, centre: tuple[float, float], scale: float = 1.0,
              opacity: float = 1.0) -> None:
        if opacity <= 0:
            return
        layers = self.layers(scale)
        height, width = layers[0].alpha.shape
        left = 2 * round((centre[0] - width / 2) / 2)
        top = 2 * round((centre[1] - height / 2) / 2)
        level = round(min(opacity, 1.0) * 256)
        for layer, plane, sub in zip(layers, frame.planes, (1, 2, 2)):
            layer.blend(plane, (left // sub, top // sub), level)


def _scaled_layers(planes: Sequence[Image.Image], scale: float) -> tuple[_Layer, ...]:
    y, u, v, alpha, half = planes
    if scale != 1:
        size = (max(2, 2 * round(y.width * scale / 2)), max(2, 2 * round(y.height * scale / 2)))
        small = (size[0] // 2, size[1] // 2)
        bilinear = Image.Resampling.BILINEAR
        y, alpha = y.resize(size, bilinear), alpha.resize(size, bilinear)
        u, v, half = (p.resize(small, bilinear) for p in (u, v, half))
    arrays = [np.asarray(p) for p in (y, u, v, alpha, half)]
    return (_Layer.of(arrays[0], arrays[3]), _Layer.of(arrays[1], arrays[4]),
            _Layer.of(arrays[2], arrays[4]))


@dataclass(frozen=True)
class Flight:
    """A sprite moving through the scene: position at 0 s, velocity and a vertical bob."""

    sprite: Sprite
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    bob: float = 0.0
    rate: float = 0.0
    phase: float = 0.0

    def at(self, seconds: float) -> tuple[float, float]:
        swing = self.bob * math.sin(2 * math.pi * self.rate * seconds + self.phase)
        return self.x + self.vx * seconds, self.y + self.vy * seconds + swing


def caption(text: str, height: int) -> Sprite:
    """Small light text on a dark translucent band."""
    font = ImageFont.load_default(size=max(10, round(height / 45)))
    left, top, right, bottom = (math.floor(v) if i < 2 else math.ceil(v)
                                for i, v in enumerate(font.getbbox(text)))
    pad = max(3, round(height / 150))
    size = (right - left + 2 * pad, bottom - top + 2 * pad)
    rgb, alpha = Image.new("RGB", size, (0, 0, 0)), Image.new("L", size, 150)
    ImageDraw.Draw(rgb).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255))
    ImageDraw.Draw(alpha).text((pad - left, pad - top), text, font=font, fill=255)
    rgb.putalpha(alpha)
    return Sprite(rgb)


def cutout(rgb: U8, width_share: float = 0.42, height_share: float = 0.6) -> Sprite:
    """The middle of a frame inside a soft ellipse: the subject a dolly zoom keeps still."""
    height, width = rgb.shape[:2]
    w, h = round(width * width_share), round(height * height_share)
    x, y = (width - w) // 2, (height - h) // 2
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((w * 0.08, h * 0.08, w * 0.92, h * 0.92), fill=255)
    patch = Image.fromarray(rgb[y:y + h, x:x + w])
    patch.putalpha(mask.filter(ImageFilter.GaussianBlur(min(w, h) * 0.04)))
    return Sprite(patch)


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


# -- the procedural landscape ------------------------------------------------------------

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
