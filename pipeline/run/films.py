"""Films: finished jobs -> one stitched film per variant, written next to the storyboard.

A film is re-stitched only when its inputs (the picked takes, the transition, the format)
changed or the file is gone or altered; otherwise the file on disk is left as it is, byte
for byte. A film whose shot failed is not made, and says which shot stopped it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MediaError
from ..language.compile import Compiled
from ..language.films import FilmPlan
from ..media.stitch import Transition, stitch_clips
from ..store import ObjectStore, remove_partials, sha256_file, write_atomic
from .scheduler import Job, Reporter


@dataclass(frozen=True)
class FilmResult:
    variant: dict[str, Any]
    path: Path | None
    method: str | None  # copy | reencode | crossfade | unchanged
    error: str | None = None


def make_films(compiled: Compiled, jobs: Mapping[str, Job], store: ObjectStore,
               reporter: Reporter) -> list[FilmResult]:
    return [_make_film(compiled, film, jobs, store, reporter) for film in compiled.plan.films]


def _make_film(compiled: Compiled, film: FilmPlan, jobs: Mapping[str, Job], store: ObjectStore,
               reporter: Reporter) -> FilmResult:
    clips, missing = _clips(compiled, film, jobs, store)
    target = (compiled.board.folder / film.file).resolve()
    if missing:
        return FilmResult(dict(film.variant), None, None, f"not made: {missing} did not finish")
    if not target.is_relative_to(compiled.board.folder):
        return FilmResult(dict(film.variant), None, None,
                          f"film.file {film.file!r} is outside the storyboard's folder")
    if target.parent.is_dir():
        remove_partials(target)  # a run killed while stitching; this one holds the folder
    stamp = _stamp(clips, film)
    if _unchanged(store, stamp, target):
        return FilmResult(dict(film.variant), target, "unchanged")
    reporter.note(f"stitching {film.file} from {len(clips)} clips")
    transition = Transition(film.transition, film.seconds)
    try:
        result = stitch_clips(clips, target, transition=transition, size=film.size,
                              fps=film.fps)
    except MediaError as exc:
        return FilmResult(dict(film.variant), None, None, exc.render())
    _record(store, stamp, target)
    return FilmResult(dict(film.variant), target, result.method)


def _clips(compiled: Compiled, film: FilmPlan, jobs: Mapping[str, Job], store: ObjectStore
           ) -> tuple[list[Path], str | None]:
    clips = []
    for key in film.keys:
        shot = compiled.plan.shot(key)
        job = jobs.get(shot.identity)
        if job is None or job.record is None:
            return [], key
        take = job.record.takes[shot.pick - 1]
        clips.append(store.path_for(take.sha256, take.ext))
    return clips, None


def _stamp(clips: list[Path], film: FilmPlan) -> str:
    facts = {"clips": [p.name for p in clips], "transition": film.transition,
             "seconds": film.seconds, "file": Path(film.file).suffix.lower()}
    if film.size or film.fps:  # only then, so films made before these keys stay unchanged
        facts.update(size=film.size, fps=film.fps)
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _stamp_path(store: ObjectStore, stamp: str) -> Path:
    return store.root / "films" / f"{stamp}.json"


def _unchanged(store: ObjectStore, stamp: str, target: Path) -> bool:
    path = _stamp_path(store, stamp)
    if not path.is_file() or not target.is_file():
        return False
    recorded = json.loads(path.read_text(encoding="utf-8"))
    return bool(recorded.get("sha256") == sha256_file(target))


def _record(store: ObjectStore, stamp: str, target: Path) -> None:
    data = json.dumps({"sha256": sha256_file(target), "file": target.name}).encode()
    path = _stamp_path(store, stamp)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
