"""Text on the picture: a caption or a title and the picture's size in; a `Stamp` (the text
drawn once: grey levels, an opacity per pixel, a place on the frame) out, and frames with
stamps drawn on them.

The look is fixed so a film looks the same on every machine: the DejaVu Sans Bold shipped
in `fonts/` (with its license), Pillow's basic layout, white letters in a dark outline,
wrapped to the title-safe area (a tenth of the width in from each side); captions sit at
the bottom centre above a safe margin, titles in the middle; sizes follow the picture's
height. White, black and the greys between have no colour in any Y'CbCr matrix, so a stamp
is drawn straight onto a yuv420p frame's planes, with no conversion of the frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from av.video.frame import VideoFrame
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CAPTION_STYLE", "FONT_FILE", "TITLE_STYLE", "Overlay", "Placement", "Stamp",
           "TextStyle", "black_frame", "draw_overlays", "draw_stamps", "render_text",
           "wrap_text"]

FONT_FILE = Path(__file__).parent / "fonts" / "DejaVuSans-Bold.ttf"
SAFE = 0.1  # of the width, kept clear at each side; of the height, below a caption


class Placement(StrEnum):
    BOTTOM = "bottom"
    MIDDLE = "middle"


@dataclass(frozen=True)
class TextStyle:
    """Letters `size` of the picture's height tall (never under `smallest` pixels)."""

    size: float
    placement: Placement
    smallest: int = 10


CAPTION_STYLE = TextStyle(0.055, Placement.BOTTOM)
TITLE_STYLE = TextStyle(0.09, Placement.MIDDLE)


@dataclass(frozen=True)
class Stamp:
    """Text drawn once: its top left corner on the frame (even), its grey level (0 black to
    255 white) and its opacity (0..1) per pixel, both of an even width and height."""

    x: int
    y: int
    grey: npt.NDArray[np.uint8]
    alpha: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Overlay:
    """A stamp over film frames [first, stop), fading in and out over `fade` frames."""

    first: int
    stop: int
    stamp: Stamp
    fade: int = 0

    def opacity(self, frame: int) -> float:
        if not self.first <= frame < self.stop:
            return 0.0
        steps = self.fade + 1
        return min(1.0, (frame - self.first + 1) / steps, (self.stop - frame) / steps)


@lru_cache(maxsize=16)
def _font(pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FILE), pixels, layout_engine=ImageFont.Layout.BASIC)


def wrap_text(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Lines no wider than `width` pixels: the text's own lines, broken between words (and
    inside a word too long for a line)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            joined = f"{line} {word}" if line else word
            if font.getlength(joined) <= width:
                line = joined
                continue
            if line:
                lines.append(line)
            line = word
            while font.getlength(line) > width and len(line) > 1:
                cut = _fitting(line, font, width)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _fitting(word: str, font: ImageFont.FreeTypeFont, width: float) -> int:
    """How many of the word's first characters fit `width` (at least one)."""
    count = 1
    while count < len(word) and font.getlength(word[: count + 1]) <= width:
        count += 1
    return count


def render_text(text: str, width: int, height: int, style: TextStyle) -> Stamp:
    """`text` drawn for a picture of `width` x `height` in `style`."""
    pixels = max(style.smallest, round(height * style.size))
    font, stroke = _font(pixels), max(1, round(pixels / 12))
    body = "\n".join(wrap_text(text, font, width * (1 - 2 * SAFE) - 2 * stroke))
    spacing = round(pixels * 0.25)
    box = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox(
        (0, 0), body, font=font, spacing=spacing, align="center", stroke_width=stroke)
    left, top = math.floor(box[0]), math.floor(box[1])
    size = (_even_up(math.ceil(box[2]) - left + 2), _even_up(math.ceil(box[3]) - top + 2))
    layers = []
    for outline in (255, 0):  # letters and outline together (the opacity), letters alone
        image = Image.new("L", size)
        ImageDraw.Draw(image).multiline_text(
            (1 - left, 1 - top), body, fill=255, font=font, spacing=spacing, align="center",
            stroke_width=stroke, stroke_fill=outline)
        layers.append(np.asarray(image, np.uint8))
    x = _even_down((width - size[0]) / 2)
    y = (_even_down((height - size[1]) / 2) if style.placement is Placement.MIDDLE
         else _even_down(height * (1 - SAFE) - size[1]))
    right, bottom = min(size[0], width - x) // 2 * 2, min(size[1], height - y) // 2 * 2
    alpha = (layers[0][:bottom, :right] / np.float32(255)).astype(np.float32)
    return Stamp(x, y, layers[1][:bottom, :right], alpha)


def _even_up(count: int) -> int:
    return count + count % 2


def _even_down(value: float) -> int:
    return max(0, int(value) // 2 * 2)


def draw_stamps(frame: VideoFrame, stamps: Sequence[tuple[Stamp, float]],
                full_range: bool = False) -> VideoFrame:
    """A yuv420p frame with each (stamp, opacity) drawn on it, in order."""
    planes = np.asarray(frame.to_ndarray(), np.uint8)
    height, width = frame.height, frame.width
    flat = planes.reshape(-1)
    luma = flat[: height * width].reshape(height, width)
    quarter = (height // 2) * (width // 2)
    chroma = [flat[height * width + i * quarter : height * width + (i + 1) * quarter]
              .reshape(height // 2, width // 2) for i in range(2)]
    for stamp, opacity in stamps:
        _draw(luma, chroma, stamp, opacity, full_range)
    return VideoFrame.from_ndarray(planes, format="yuv420p")


def draw_overlays(frame: VideoFrame, index: int, overlays: Sequence[Overlay],
                  full_range: bool = False) -> VideoFrame:
    """Frame `index` of the film with the overlays shown on it drawn on; as it was if none."""
    shown = [(o.stamp, o.opacity(index)) for o in overlays if o.first <= index < o.stop]
    return draw_stamps(frame, shown, full_range) if shown else frame


def _draw(luma: npt.NDArray[np.uint8], chroma: list[npt.NDArray[np.uint8]], stamp: Stamp,
          opacity: float, full_range: bool) -> None:
    h, w = stamp.grey.shape
    if not h or not w or opacity <= 0:
        return
    alpha = stamp.alpha * np.float32(opacity)
    grey = stamp.grey.astype(np.float32)
    level = grey if full_range else grey * np.float32(219 / 255) + 16
    region = luma[stamp.y : stamp.y + h, stamp.x : stamp.x + w]
    region[:] = (region * (1 - alpha) + level * alpha + 0.5).astype(np.uint8)
    half = alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    for plane in chroma:
        part = plane[stamp.y // 2 : (stamp.y + h) // 2, stamp.x // 2 : (stamp.x + w) // 2]
        part[:] = (part * (1 - half) + 128 * half + 0.5).astype(np.uint8)


def black_frame(width: int, height: int, full_range: bool = False) -> VideoFrame:
    """A black yuv420p picture."""
    planes = np.full((height * 3 // 2, width), 128, np.uint8)
    planes[:height] = 0 if full_range else 16
    return VideoFrame.from_ndarray(planes, format="yuv420p")
