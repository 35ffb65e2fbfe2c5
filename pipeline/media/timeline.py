"""Timeline: what of each clip goes into a film in (`Span`s); where each one lands, out.

A `Span` is a clip and the frames [start, stop) of it that the film keeps (after trims and
cut points). Stitching returns a `Timeline`: for every entry, the frames of its clip it kept
and where it sits in the film, in frames of the film and in seconds, crossfades included.
It is what the film is made of, recorded with the film, and what anything placed on the
film (captions, sound cues) reads its cut points from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import MediaError

__all__ = ["Span", "Timeline", "TimelineEntry", "lay_out"]


@dataclass(frozen=True)
class Span:
    """Frames [start, stop) of a clip, counted in the clip's own frames; `stop` None is its
    end and a negative `stop` counts from its end. `key` names it in the timeline."""

    clip: Path
    start: int = 0
    stop: int | None = None
    key: str = ""

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop is None

    def bounds(self, count: int) -> tuple[int, int]:
        """(start, stop) within a clip of `count` frames; a span that keeps nothing is an error."""
        stop = count if self.stop is None else self.stop + count if self.stop < 0 else self.stop
        if not 0 <= self.start < stop <= count:
            raise MediaError(f"{self.clip}: frames {self.start} to {stop - 1} are not within "
                             f"its {count} frames, or are none")
        return self.start, stop


@dataclass(frozen=True)
class TimelineEntry:
    """One film entry: its clip's frames first..last (inclusive) shown from film frame
    `start` for `frames` frames; the first `fade_in` of them blend with the entry before."""

    key: str
    clip: str
    first: int
    last: int
    start: int
    frames: int
    fade_in: int = 0

    @property
    def end(self) -> int:
        """The film frame after its last one."""
        return self.start + self.frames

    def to_json(self, fps: Fraction) -> dict[str, Any]:
        return {"key": self.key, "clip": self.clip, "first": self.first, "last": self.last,
                "start": self.start, "frames": self.frames, "fade_in": self.fade_in,
                "start_seconds": _seconds(self.start, fps), "seconds": _seconds(self.frames, fps)}


@dataclass(frozen=True)
class Timeline:
    """The film as made: its frame rate and, in order, what each entry shows when."""

    fps: Fraction
    entries: tuple[TimelineEntry, ...]

    @property
    def frames(self) -> int:
        return self.entries[-1].end if self.entries else 0

    @property
    def seconds(self) -> float:
        return _seconds(self.frames, self.fps)

    def cut_points(self) -> list[int]:
        """The film frame where each entry after the first begins (a crossfade's start)."""
        return [entry.start for entry in self.entries[1:]]

    def to_json(self) -> dict[str, Any]:
        return {"fps": f"{self.fps.numerator}/{self.fps.denominator}", "frames": self.frames,
                "seconds": self.seconds, "cut_points": self.cut_points(),
                "entries": [entry.to_json(self.fps) for entry in self.entries]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Timeline:
        fields = ("key", "clip", "first", "last", "start", "frames", "fade_in")
        entries = tuple(TimelineEntry(**{name: item[name] for name in fields})
                        for item in data["entries"])
        return cls(Fraction(str(data["fps"])), entries)


def lay_out(spans: Sequence[Span], kept: Sequence[tuple[int, int]], lengths: Sequence[int],
            fades: Sequence[int], fps: Fraction) -> Timeline:
    """The timeline of spans that kept clip frames `kept[i]` (first, stop), lasting
    `lengths[i]` film frames, overlapping the one before by `fades[i - 1]`."""
    entries, start = [], 0
    for i, (span, (first, stop), length) in enumerate(zip(spans, kept, lengths, strict=True)):
        fade = fades[i - 1] if i else 0
        start -= fade
        entries.append(TimelineEntry(span.key, str(span.clip), first, stop - 1, start, length,
                                     fade))
        start += length
    return Timeline(fps, tuple(entries))


def _seconds(frames: int, fps: Fraction) -> float:
    return round(float(frames / fps), 6)
