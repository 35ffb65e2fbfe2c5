"""Continuity work on picked takes: a take in (and whether its shot holds its colour); the
clip that goes on from it, and the index of a frame it hands over, out.

- A shot with `continuity: {color: match}` goes on as its graded clip: graded once, kept in
  the store as an object derived from the take (`store.derived`), the take left untouched.
  Frames it hands over are taken from the graded clip, and so is its part of the film.
- `frame: best` is the sharpest frame of the take's last half second (`media.focus`), found
  once per take and recorded, so the plan, the run and the film agree on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import MediaError
from ..language.films import shot_sources
from ..language.plan import Plan, PlannedShot
from ..media.focus import find_sharpest
from ..media.grade import grade_clip, measure_correction
from ..store import ObjectStore, Take
from ..store.derived import DerivedStore

__all__ = ["BEST_KIND", "GRADE_KIND", "ClipFile", "best_frame", "best_frame_lookup",
           "frame_count", "frame_index", "frames_used", "graded_clip", "is_graded",
           "picked_take", "take_clip"]

GRADE_KIND = "color-match-1"  # the work, and its version: a new grading is a new kind
BEST_KIND = "best-frame-1"


@dataclass(frozen=True)
class ClipFile:
    """A clip in the store: its content hash and its file."""

    sha256: str
    path: Path


def take_clip(store: ObjectStore, take: Take, color_hold: bool) -> ClipFile:
    """The clip a take goes on as: graded when its shot holds its colour, else itself."""
    if color_hold:
        return graded_clip(store, take)
    return ClipFile(take.sha256, store.path_for(take.sha256, take.ext))


def is_graded(store: ObjectStore, take: Take) -> bool:
    return DerivedStore(store).find_object(take.sha256, GRADE_KIND) is not None


def graded_clip(store: ObjectStore, take: Take) -> ClipFile:
    """The take graded to cancel its colour drift: found in the store, or made once now."""
    derived = DerivedStore(store)
    found = derived.find_object(take.sha256, GRADE_KIND)
    if found is not None:
        return ClipFile(found.sha256, found.path)
    source = store.path_for(take.sha256, take.ext)
    correction = measure_correction(source)
    temp = store.temp_path(f".{take.ext}")
    try:
        frames = grade_clip(source, temp, correction)
        made = derived.put_object(take.sha256, GRADE_KIND, temp, take.ext,
                                  {"correction": correction.to_json(), "frames": frames})
    finally:
        temp.unlink(missing_ok=True)
    return ClipFile(made.sha256, made.path)


def best_frame(store: ObjectStore, take: Take, *, record: bool = True) -> int:
    """The index of the take's sharpest frame in its last half second."""
    derived = DerivedStore(store)
    found = derived.find(take.sha256, BEST_KIND)
    if found is not None:
        return int(found["index"])
    focus = find_sharpest(store.path_for(take.sha256, take.ext))
    if record:
        derived.record(take.sha256, BEST_KIND, focus.to_json())
    return focus.index


def frame_count(take: Take) -> int:
    """The take's frame count, as probed when it was downloaded."""
    count = take.probe.get("frames")
    if not isinstance(count, int) or count < 1:
        raise MediaError(f"take {take.sha256}: its frame count is unknown")
    return count


def frame_index(store: ObjectStore, take: Take, mark: str | int) -> int:
    """The 0-based index of a frame mark (first, last, best or an index, negative from the
    end) in a take."""
    if mark == "best":
        return best_frame(store, take)
    count = frame_count(take)
    if mark in ("first", "last"):
        return 0 if mark == "first" else count - 1
    return int(mark) + count if int(mark) < 0 else int(mark)


def best_frame_lookup(store: ObjectStore) -> Callable[[str, int], int | None]:
    """For the plan: the best frame of a shot identity's take `pick`, once that shot has been
    made; None before. Nothing is written: a plan only reads."""

    def lookup(identity: str, pick: int) -> int | None:
        take = picked_take(store, identity, pick)
        return None if take is None else best_frame(store, take, record=False)

    return lookup


def picked_take(store: ObjectStore, identity: str, pick: int) -> Take | None:
    """The take `pick` of a shot identity, if the shot is in the store."""
    record = store.find_shot(identity)
    if record is None or not 1 <= pick <= len(record.takes):
        return None
    return record.takes[pick - 1]


def frames_used(plan: Plan, shot: PlannedShot, store: ObjectStore) -> list[dict[str, object]]:
    """The frames of other shots a shot was made from, with the index each one is (None
    while that shot is not made), as `run --json` tells them."""
    used = []
    for image in shot_sources(shot.request):
        parent = plan.shot(str(image["key"]))
        take = picked_take(store, parent.identity, parent.pick)
        index = None if take is None else frame_index(store, take, image["frame"])
        used.append({"shot": image["key"], "take": image["take"], "frame": image["frame"],
                     "index": index, "graded": image.get("color") == "match"})
    return used

