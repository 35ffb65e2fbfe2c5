"""The simulator's camera: where it looks, how it moves, and what it sees of a canvas.

Input: a `View` per frame (zoom, turn and shift relative to the first frame), or a PixVerse
camera movement's name and an amount; a `Canvas` of planes larger than the frame.
Output: the margins a clip's views need beyond the first frame, and each view sampled from
the canvas into a `FrameBuffer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from .frames import U8, FrameBuffer, Tables, recolour, rgb_to_yuv

Margins = tuple[int, int, int, int]  # left, top, right, bottom, all even


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


# -- camera movements ----------------------------------------------------------------------


def smoothstep(q: float) -> float:
    return q * q * (3 - 2 * q)


def _quick(q: float) -> float:
    return 1 - (1 - q) ** 3


def _whip(q: float) -> float:
    return smoothstep(min(1.0, max(0.0, (q - 0.4) / 0.2)))


Move = tuple[Callable[[float], float], Callable[[float], View]]  # easing, amount -> view

CAMERA: dict[str, Move] = {
    "horizontal_left": (smoothstep, lambda a: View(dx=-0.2 * a)),
    "horizontal_right": (smoothstep, lambda a: View(dx=0.2 * a)),
    "vertical_up": (smoothstep, lambda a: View(dy=-0.18 * a)),
    "vertical_down": (smoothstep, lambda a: View(dy=0.18 * a)),
    "zoom_in": (smoothstep, lambda a: View(zoom=1 + 0.35 * a)),
    "zoom_out": (smoothstep, lambda a: View(zoom=1 / (1 + 0.35 * a))),
    "auto_camera": (smoothstep, lambda a: View(zoom=1 + 0.08 * a, dx=0.05 * a, dy=-0.02 * a)),
    "crane_up": (smoothstep, lambda a: View(zoom=1 / (1 + 0.1 * a), dy=-0.25 * a)),
    "quickly_zoom_in": (_quick, lambda a: View(zoom=1 + 0.8 * a)),
    "quickly_zoom_out": (_quick, lambda a: View(zoom=1 / (1 + 0.8 * a))),
    "smooth_zoom_in": (lambda q: smoothstep(smoothstep(q)), lambda a: View(zoom=1 + 0.25 * a)),
    "camera_rotation": (smoothstep, lambda a: View(zoom=1 + 0.1 * a, angle=30 * a)),
    "robo_arm": (smoothstep,
                 lambda a: View(zoom=1 + 0.2 * a, angle=-12 * a, dx=0.12 * a, dy=-0.06 * a)),
    "super_dolly_out": (smoothstep, lambda a: View(zoom=1 / (1 + 1.2 * a))),
    "whip_pan": (_whip, lambda a: View(dx=0.6 * a)),
    "hitchcock": (smoothstep, lambda a: View(zoom=1 / (1 + 0.4 * a))),  # the subject stays put
    "left_follow": (smoothstep, lambda a: View(zoom=1 + 0.08 * a, dx=-0.28 * a)),
    "right_follow": (smoothstep, lambda a: View(zoom=1 + 0.08 * a, dx=0.28 * a)),
    "pan_left": (smoothstep, lambda a: View(zoom=1 + 0.04 * a, dx=-0.25 * a)),
    "pan_right": (smoothstep, lambda a: View(zoom=1 + 0.04 * a, dx=0.25 * a)),
    "fix_bg": (smoothstep, lambda a: View()),  # a subject moves instead
}
DRIFT: Move = (smoothstep, lambda a: View(zoom=1 + 0.05 * a, dx=0.03 * a))  # no movement asked


# -- sampling a canvas ---------------------------------------------------------------------


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
