"""Images the simulator takes: data URIs, base64, loopback URLs in; pictures, or an
`ImageProblem` saying why not, out.

Also the sides a model accepts for a frame image (`ImageLimits`, from its file's
`x-storyreel.images`) and the placeholder that stands in for a URL the simulator may not
fetch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
STORED_LONG_SIDE = 2048
PLACEHOLDER_SIZE = (1280, 720)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class ImageProblem(ValueError):
    """An image input that cannot be used; the message says why."""


@dataclass(frozen=True)
class ImageLimits:
    """The sides, in pixels, of a frame image a model takes: from its file's
    `x-storyreel.images`, else PixVerse's 300-4000 px."""

    min_side: int = 300
    max_side: int = 4000

    @classmethod
    def of(cls, extension: Mapping[str, Any]) -> ImageLimits:
        raw = extension.get("images")
        if not isinstance(raw, Mapping):
            return cls()
        return cls(int(raw.get("minSide", cls.min_side)), int(raw.get("maxSide", cls.max_side)))

    def check(self, size: tuple[int, int]) -> None:
        low, high = self.min_side, self.max_side
        if not all(low <= side <= high for side in size):
            raise ImageProblem(f"{size[0]}x{size[1]} is outside {low}-{high} px per side")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A loopback server must not send the simulator elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_loopback(url: str) -> bytes:
    """An image from a server on this machine (the only network the simulator touches):
    no proxy, no redirect, at most MAX_IMAGE_BYTES."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    try:
        with opener.open(url, timeout=5) as answer:
            data: bytes = answer.read(MAX_IMAGE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection
        raise ImageProblem(f"cannot fetch {url}: HTTP {exc.code}") from None
    except OSError as exc:
        raise ImageProblem(f"cannot fetch {url}: {exc}") from None
    return data


def decode_data(value: str) -> bytes:
    """Bytes of a data URI or of raw base64; `ImageProblem` if it is neither."""
    payload = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    if value.startswith("data:") and ";base64" not in value.split(",", 1)[0]:
        raise ImageProblem("a data URI image must be base64-encoded")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem("not an imageUUID, a URL, a data URI or base64 image data") from None


def decode_image(data: bytes) -> Image.Image:
    """A PNG, JPEG or WEBP image from bytes, refused when too large or not an image."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in IMAGE_FORMATS:
                raise ImageProblem(f"image format {image.format} is not PNG, JPEG or WEBP")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ImageProblem(f"image of {image.width}x{image.height} has too many pixels")
            image.load()
    except ImageProblem:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem("image data cannot be decoded as PNG, JPEG or WEBP") from None
    return image.convert("RGB")


def fit_long_side(image: Image.Image, long_side: int = STORED_LONG_SIDE) -> Image.Image:
    """Scale down (never up) so the long side is at most `long_side`, as Runware stores."""
    scale = long_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def placeholder_image(url: str, size: tuple[int, int] = PLACEHOLDER_SIZE) -> Image.Image:
    """Stands in for an image the simulator may not fetch: a tint from the URL, labelled."""
    digest = hashlib.sha256(url.encode()).digest()
    image = Image.new("RGB", size, (digest[0], digest[1], digest[2]))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, size[0] - 40, size[1] - 40), outline=(255, 255, 255), width=4)
    draw.text((60, 60), "simulator placeholder for an image not fetched:", fill=(255, 255, 255))
    draw.text((60, 80), url[:150], fill=(255, 255, 255))
    return image
