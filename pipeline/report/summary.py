"""Run summary report: a `RunSummary` in; lines for people, JSON for tools, and the error
that says why a run is incomplete, out. The one place a run's outcome is put into words."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..errors import RunIncomplete
from ..run.films import FilmOutcome, FilmStatus
from ..run.jobs import JobStatus
from ..run.summary import RunSummary, ShotOutcome

_UNFINISHED = (JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.STOPPED)


def summary_lines(summary: RunSummary) -> list[str]:
    """What a person reads at the end of a run: the films, what went wrong, the totals."""
    lines = [_film_line(film) for film in summary.films]
    lines += [f"{shot.status}: {shot.key}: {shot.error}" for shot in summary.shots
              if shot.status in _UNFINISHED and shot.paid_by is None]
    lines.append(_totals(summary))
    return lines


def _film_line(film: FilmOutcome) -> str:
    variant = ", ".join(f"{k}={v}" for k, v in film.film.variant.items())
    label = f" [{variant}]" if variant else ""
    if film.path is None:
        return f"film{label}: {film.error}"
    return f"film{label}: {film.path} ({film.method or film.status})"


def _totals(summary: RunSummary) -> str:
    restored = summary.count(JobStatus.RESTORED)
    again = f", {restored} downloaded again" if restored else ""
    cost = "simulated cost" if summary.simulated else "cost"
    lock = "updated" if summary.lock_changed else "unchanged"
    return (f"{summary.count(JobStatus.DONE)} generated{again}, "
            f"{summary.count(JobStatus.CACHED)} cached; {sum(summary.requests.values())} API "
            f"requests; {cost} ${summary.cost:.3f}; lock file {lock}")


def incomplete_error(summary: RunSummary) -> RunIncomplete | None:
    """Why the run is incomplete, pointing at the lines above that say more; None if it
    is complete."""
    if summary.complete:
        return None
    if summary.stopped is not None:
        open_tasks = summary.stopped.open_tasks
        tasks = f"{open_tasks} task stays" if open_tasks == 1 else f"{open_tasks} tasks stay"
        return RunIncomplete(
            f"the run stopped: {summary.stopped.reason}",
            hint=f"{tasks} open in the journal: run the same command again to resume what "
            "was sent without paying twice (--patience SECONDS waits longer for the service)")
    failed_shots = any(not shot.finished for shot in summary.shots)
    failed_films = sum(not film.made for film in summary.films)
    if failed_shots:
        what = "the failed shots above"
    else:
        what = "the film that failed above" if failed_films == 1 else "the films that failed above"
    return RunIncomplete(f"the run is incomplete: see {what}",
                         hint="fix the cause and run the same command again: what finished "
                         "is kept")


def summary_json(summary: RunSummary) -> str:
    data: dict[str, object] = {
        "films": [_film_json(film) for film in summary.films],
        "shots": [_shot_json(shot) for shot in summary.shots],
        "requests": dict(summary.requests),
        "cost": summary.cost,
        "simulated": summary.simulated,
        "complete": summary.complete,
    }
    if summary.stopped is not None:
        data["stopped"] = {"reason": summary.stopped.reason,
                           "open_tasks": summary.stopped.open_tasks}
    return json.dumps(data, indent=2, ensure_ascii=False)


def _film_json(film: FilmOutcome) -> Mapping[str, object]:
    method = "unchanged" if film.status is FilmStatus.UNCHANGED else film.method
    return {"variant": dict(film.film.variant), "file": film.film.file,
            "path": str(film.path) if film.path else None, "status": str(film.status),
            "method": None if method is None else str(method), "error": film.error,
            "timeline": film.timeline.to_json() if film.timeline else None}


def _shot_json(shot: ShotOutcome) -> Mapping[str, object]:
    return {"id": shot.id, "key": shot.key, "variant": dict(shot.variant),
            "status": str(shot.status), "taskUUID": shot.task_uuid, "seed": shot.seed,
            "cost": shot.cost, "paid_by": shot.paid_by,
            "cached": shot.status is JobStatus.CACHED,
            "path": str(shot.path) if shot.path else None, "error": shot.error,
            "frames": [dict(frame) for frame in shot.frames]}
