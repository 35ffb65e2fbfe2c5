"""Continuity settings: the storyboard's and each shot's `continuity` blocks in; whether a
shot holds its colour, and the thresholds seams are held to, out.

`continuity: {color: match}` at the top level, in `defaults` (or a scene's) or on a shot
(the nearest wins) grades that shot's clip so its colour ends where it began; `min_psnr`,
`min_ssim`, `max_delta_e` and `max_drift` at the top level are what `storyreel seams
--check` holds every seam and chain to. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .capabilities import frame_position

__all__ = ["DEFAULT_MIN_PSNR", "Thresholds", "ends_on_image", "holds_colour", "image_position"]

DEFAULT_MIN_PSNR = 30.0  # dB: a clean handover through a video encoder lands well above


def holds_colour(glue: Mapping[str, Any], default: bool, request: Mapping[str, Any]) -> bool:
    """Whether a shot (its rendered glue keys and its request) holds its colour; `default`
    is the storyboard's. A shot given its last frame is held at both ends already: grading it
    towards its first frame would pull it away from the frame it was asked to end on."""
    color = (glue.get("continuity") or {}).get("color")
    hold = default if color is None else bool(color == "match")
    return hold and not ends_on_image(request)


def ends_on_image(request: Mapping[str, Any]) -> bool:
    """Whether a request gives its video's last frame."""
    images = (request.get("inputs") or {}).get("frameImages") or []
    return any(image_position(item, i, len(images)) == "last" for i, item in enumerate(images))


def image_position(item: Any, index: int, count: int) -> str:
    """first or last, for an item of a planned request's frame images; an image of another
    shot written bare has no position of its own (its `frame` is the other shot's frame)."""
    return frame_position(item if isinstance(item, Mapping) and "image" in item else None,
                          index, count)


@dataclass(frozen=True)
class Thresholds:
    """Where a seam or a chain fails `seams --check`; None: not checked."""

    min_psnr: float | None = DEFAULT_MIN_PSNR
    min_ssim: float | None = None
    max_delta_e: float | None = None
    max_drift: float | None = None

    @classmethod
    def of(cls, continuity: Mapping[str, Any]) -> Thresholds:
        def number(name: str, default: float | None = None) -> float | None:
            value = continuity.get(name, default)
            return None if value is None else float(value)

        return cls(number("min_psnr", DEFAULT_MIN_PSNR), number("min_ssim"),
                   number("max_delta_e"), number("max_drift"))

    def to_json(self) -> dict[str, float | None]:
        return {"min_psnr": self.min_psnr, "min_ssim": self.min_ssim,
                "max_delta_e": self.max_delta_e, "max_drift": self.max_drift}
