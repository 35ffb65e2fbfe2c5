"""Finishing in the run: a film's spans, seams and `Finish` (its soundtrack, captions and
title, from the film plan) in; the film file, its caption files and its timeline out.

A film with nothing laid over it, or with captions as files only, is stitched straight into
place. Otherwise it is stitched into a working file in the store and finished from there
into place (`media.finish`). Caption files go next to the film; files of this name that an
earlier run wrote (their hashes are in the store's film records) are removed when the film
no longer has them, so a player does not show captions the picture now burns in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..media.captions import caption_files, write_captions
from ..media.cues import Finish, caption_times
from ..media.finish import finish_film, needs_finishing
from ..media.stitch import Span, Timeline, Transition, stitch_film
from ..store import ObjectStore, remove_partials, sha256_file

__all__ = ["MadeFilm", "make_film_file", "recorded_captions"]


@dataclass(frozen=True)
class MadeFilm:
    method: str  # how the picture was stitched, and how it was finished if it was
    timeline: Timeline
    captions: dict[str, str]  # caption file name -> sha256


def make_film_file(spans: Sequence[Span], target: Path,
                   transitions: Transition | Sequence[Transition], finish: Finish | None,
                   store: ObjectStore, *, size: tuple[int, int] | None = None,
                   fps: float | None = None) -> MadeFilm:
    """Stitch (on the canvas `size` and `fps` say, if they do), finish and caption the film
    at `target`."""
    if finish is None or not needs_finishing(finish):
        result = stitch_film(spans, target, transitions=transitions, size=size, fps=fps)
        method, timeline = str(result.method), result.timeline
    else:
        work = store.film_work_path(target.name)
        work.parent.mkdir(parents=True, exist_ok=True)
        remove_partials(work)  # a run killed while stitching; this one holds the folder
        try:
            result = stitch_film(spans, work, transitions=transitions, size=size, fps=fps)
            finished = finish_film(work, result.timeline, finish, target)
        finally:
            work.unlink(missing_ok=True)
        method, timeline = f"{result.method}+{finished.picture}", finished.timeline
    return MadeFilm(method, timeline, _captions(finish, timeline, target, store))


def _captions(finish: Finish | None, timeline: Timeline, target: Path, store: ObjectStore
              ) -> dict[str, str]:
    if finish is None or not finish.writes_files:
        _remove_stale(target, store)
        return {}
    paths = write_captions(caption_times(finish.captions, timeline), timeline.fps, target)
    return {path.name: sha256_file(path) for path in paths}


def _remove_stale(target: Path, store: ObjectStore) -> None:
    """Delete `<film>.vtt`/`.srt` where a film record says storyreel wrote them as they are."""
    ours = recorded_captions(store)
    for path in caption_files(target):
        if path.is_file() and sha256_file(path) in ours.get(path.name, set()):
            path.unlink()


def recorded_captions(store: ObjectStore) -> dict[str, set[str]]:
    """Every caption file the store's film records list: name -> the hashes written."""
    found: dict[str, set[str]] = {}
    for record in store.film_record_paths():
        try:
            captions = json.loads(record.read_text(encoding="utf-8")).get("captions") or {}
        except (OSError, ValueError):
            continue
        for name, sha in captions.items():
            found.setdefault(name, set()).add(sha)
    return found
