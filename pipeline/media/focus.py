"""Focus: a clip in; the sharpest of its last frames (the best one to hand over), out.

Video models often end a clip in motion blur or mid-blink. Among the frames of the last half
second, the one with the highest sharpness (the variance of the Laplacian, `metrics`) is the
best frame to continue from; where several are about as sharp, the latest, so the parent
plays as long as it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import MediaError
from .clip import Clip
from .metrics import sharpness
from .probe import media_errors

__all__ = ["BEST_WINDOW", "SHARPNESS_TOLERANCE", "Focus", "find_sharpest"]

BEST_WINDOW = Fraction(1, 2)  # seconds at the end of a clip to choose from
SHARPNESS_TOLERANCE = 0.02  # frames within 2 % of the sharpest count as just as sharp


@dataclass(frozen=True)
class Focus:
    """The chosen frame and the sharpness of every frame looked at, from `first` on."""

    index: int
    first: int
    sharpness: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "first": self.first,
                "sharpness": [round(v, 3) for v in self.sharpness]}


def find_sharpest(path: Path, seconds: Fraction = BEST_WINDOW) -> Focus:
    """The sharpest frame among the last `seconds` of the clip (at least its last frame)."""
    with Clip.open(path) as clip:
        clip.index()
        count = len(clip.stamps)
        first = max(0, count - max(1, round(seconds * clip.fps)))
        wanted = {pts: i for i, pts in enumerate(clip.stamps) if i >= first}
        scores: dict[int, float] = {}
        with media_errors(path):
            clip.container.seek(clip.stamps[first], stream=clip.video, backward=True)
            for frame in clip.container.decode(clip.video):
                index = wanted.get(frame.pts if frame.pts is not None else -1)
                if index is not None:
                    scores[index] = sharpness(frame.to_ndarray(format="rgb24"))
    if len(scores) != count - first:
        raise MediaError(f"{path}: decoded {len(scores)} of its last {count - first} frames")
    values = tuple(scores[i] for i in range(first, count))
    floor = max(values) * (1 - SHARPNESS_TOLERANCE)
    index = max(i for i, value in enumerate(values, start=first) if value >= floor)
    return Focus(index, first, values)
