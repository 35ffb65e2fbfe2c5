"""The simulator's frames and sprites, kept as YUV planes.

Input: RGB pictures (a painted scene, a request's frame image, a sprite's RGBA drawing, the
caption's text).
Output: BT.709 limited-range 4:2:0 planes, the `FrameBuffer` that a frame is composed in and
handed to the encoder, and `Sprite`s (with the `Flight`s that move them) blended into it.
Frames are built in YUV so the encoder gets them without a colour conversion per frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..media.frames import split_planes

U8 = npt.NDArray[np.uint8]
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


def recolour(planes: Sequence[U8], tables: Tables) -> tuple[U8, U8, U8]:
    """The planes passed through their lookup tables."""
    y, u, v = (p if t is None else np.take(t, p) for p, t in zip(planes, tables))
    return y, u, v


# -- sprites: small pictures blended over a frame ------------------------------------------


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
