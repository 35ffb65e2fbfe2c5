"""Cues: what a storyboard lays over a film (sound cues, captions, a title) in; where each
lands on the film's `Timeline`, out.

Pure data and arithmetic, no PyAV, so the language phase builds these and the media phase
reads them. Times written relative to a shot (`start: {shot: x}`, a caption) are read from
the timeline, so they follow the film's actual cut points after trims, handovers and
crossfades: a shot's stretch of the film runs from its cut point (where its crossfade begins)
to the next entry's. A title on black is a card of its own frames in front of the film.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

from .timeline import Timeline, TimelineEntry

__all__ = ["CUES_VERSION", "DEFAULT_DUCK_DB", "DEFAULT_LOUDNESS", "TITLE_KEY", "Caption",
           "CaptionMode", "Finish", "Shown", "ShotTime", "SoundCue", "Soundtrack", "Title",
           "caption_times", "cue_start", "shot_stretch", "title_frames", "with_title"]

# Bumped when the way cues are rendered changes (font, style, mixing), so films re-make.
CUES_VERSION = 1
DEFAULT_DUCK_DB = 12.0  # how far music drops under a clip's own sound
DEFAULT_LOUDNESS = -16.0  # LUFS, the common level for online video
TITLE_KEY = "(title)"  # the timeline key of a title card; no shot id can look like it


@dataclass(frozen=True)
class ShotTime:
    """`at` seconds after the film entry `shot` (a shot key) begins."""

    shot: str
    at: float = 0.0


@dataclass(frozen=True)
class SoundCue:
    """Seconds [trim_in, trim_out) of an audio file (None: to its end), placed at `start`."""

    path: Path
    sha256: str
    start: float | ShotTime = 0.0
    trim_in: float = 0.0
    trim_out: float | None = None
    gain_db: float = 0.0
    fade_in: float = 0.0
    fade_out: float = 0.0

    def facts(self) -> dict[str, Any]:
        """What the film's sound depends on: the file's content, not where it lies."""
        start = self.start if isinstance(self.start, float) else [self.start.shot,
                                                                   self.start.at]
        return {"sha256": self.sha256, "start": start, "in": self.trim_in,
                "out": self.trim_out, "gain_db": self.gain_db, "fade": [self.fade_in,
                                                                       self.fade_out]}


@dataclass(frozen=True)
class Soundtrack:
    """Music under the film: cues mixed under the clips' sound, lowered by `duck_db` while
    a clip has sound, the whole normalised to `loudness` LUFS."""

    cues: tuple[SoundCue, ...] = ()
    duck_db: float = DEFAULT_DUCK_DB
    loudness: float = DEFAULT_LOUDNESS

    def facts(self) -> dict[str, Any]:
        return {"cues": [cue.facts() for cue in self.cues], "duck_db": self.duck_db,
                "loudness": self.loudness}


@dataclass(frozen=True)
class Caption:
    """`text` shown from `at` seconds into a shot's stretch, for `seconds` (None: until the
    next caption of the shot or the end of its stretch)."""

    shot: str
    text: str
    at: float = 0.0
    seconds: float | None = None


class CaptionMode(StrEnum):
    FILES = "files"  # WebVTT and SRT next to the film
    BURN = "burn"  # drawn into the picture
    BOTH = "both"


@dataclass(frozen=True)
class Title:
    """A title for `seconds`: over the start of the film entry `over`, or (None) on a black
    card before the film."""

    text: str
    seconds: float = 3.0
    over: str | None = None


@dataclass(frozen=True)
class Finish:
    """Everything laid over one film."""

    soundtrack: Soundtrack | None = None
    captions: tuple[Caption, ...] = ()
    mode: CaptionMode = CaptionMode.FILES
    title: Title | None = None
    audio_files: tuple[str, ...] = field(default=(), compare=False)  # as written, for reports

    @property
    def burns(self) -> bool:
        return bool(self.captions) and self.mode in (CaptionMode.BURN, CaptionMode.BOTH)

    @property
    def writes_files(self) -> bool:
        return bool(self.captions) and self.mode in (CaptionMode.FILES, CaptionMode.BOTH)

    @property
    def edits_picture(self) -> bool:
        return self.burns or self.title is not None

    def summary(self) -> str:
        """What is laid over the film, in a few words."""
        parts = []
        if self.title is not None:
            where = "on a card" if self.title.over is None else f"over {self.title.over}"
            parts.append(f"a {self.title.seconds:g} s title {where}")
        if self.soundtrack is not None:
            cues = len(self.soundtrack.cues)
            parts.append(f"{cues} sound cue{'s' * (cues != 1)} at "
                         f"{self.soundtrack.loudness:g} LUFS")
        if self.captions:
            how = {CaptionMode.FILES: "as files", CaptionMode.BURN: "burned in",
                   CaptionMode.BOTH: "as files and burned in"}[self.mode]
            parts.append(f"{len(self.captions)} caption{'s' * (len(self.captions) != 1)} {how}")
        return "; ".join(parts)

    def facts(self) -> dict[str, Any]:
        """What the film depends on beyond its clips; part of the film's stamp."""
        title = self.title
        return {"version": CUES_VERSION,
                "soundtrack": self.soundtrack.facts() if self.soundtrack else None,
                "captions": [[c.shot, c.text, c.at, c.seconds] for c in self.captions],
                "mode": str(self.mode),
                "title": [title.text, title.seconds, title.over] if title else None}

    def to_json(self) -> dict[str, Any]:
        track = self.soundtrack
        return {"audio": list(self.audio_files),
                "duck_db": track.duck_db if track else None,
                "loudness": track.loudness if track else None,
                "captions": [{"shot": c.shot, "text": c.text, "at": c.at, "for": c.seconds}
                             for c in self.captions],
                "caption_mode": str(self.mode),
                "title": {"text": self.title.text, "seconds": self.title.seconds,
                          "over": self.title.over or "black"} if self.title else None}


def title_frames(title: Title | None, fps: Fraction) -> int:
    """Frames of the black card in front of the film (none for a title over a shot)."""
    return max(1, round(Fraction(title.seconds) * fps)) if title and title.over is None else 0


def with_title(timeline: Timeline, frames: int) -> Timeline:
    """The timeline of the film behind a title card of `frames` frames."""
    if not frames:
        return timeline
    card = TimelineEntry(TITLE_KEY, "", 0, frames - 1, 0, frames)
    moved = (replace(entry, start=entry.start + frames) for entry in timeline.entries)
    return Timeline(timeline.fps, (card, *moved))


def shot_stretch(timeline: Timeline, index: int) -> tuple[int, int]:
    """Film frames [from, to) of entry `index`: its cut point up to the next entry's."""
    entries = timeline.entries
    stop = entries[index + 1].start if index + 1 < len(entries) else timeline.frames
    return entries[index].start, stop


def _first_entry(timeline: Timeline, key: str) -> int:
    for index, entry in enumerate(timeline.entries):
        if entry.key == key:
            return index
    raise KeyError(f"{key} is not in the film")


def cue_start(start: float | ShotTime, timeline: Timeline) -> Fraction:
    """Seconds into the film where a cue starts; a shot means its first entry."""
    if not isinstance(start, ShotTime):
        return Fraction(start)
    begin, _ = shot_stretch(timeline, _first_entry(timeline, start.shot))
    return begin / timeline.fps + Fraction(start.at)


@dataclass(frozen=True)
class Shown:
    """A caption on screen over film frames [first, stop)."""

    first: int
    stop: int
    text: str


def caption_times(captions: Sequence[Caption], timeline: Timeline) -> list[Shown]:
    """Where each caption shows, in film frames, on every entry of its shot, in film order;
    a caption is cut at the film's end, and one that would start after it is dropped."""
    fps, shown = timeline.fps, []
    for index, entry in enumerate(timeline.entries):
        mine = sorted((c for c in captions if c.shot == entry.key), key=lambda c: c.at)
        begin, stop = shot_stretch(timeline, index)
        for i, caption in enumerate(mine):
            first = begin + round(Fraction(caption.at) * fps)
            if caption.seconds is not None:
                last = first + round(Fraction(caption.seconds) * fps)
            else:
                last = begin + round(Fraction(mine[i + 1].at) * fps) if i + 1 < len(mine) else stop
            last = min(last, timeline.frames)
            if first < last:
                shown.append(Shown(first, last, caption.text))
    return sorted(shown, key=lambda s: (s.first, s.stop))
