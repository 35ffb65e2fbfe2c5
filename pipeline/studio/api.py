"""API: a `Board` in; the JSON the studio's API answers with, out.

`GET /api/board` gives `{shots: [{key, id, variant, pick, status, takes: [{n, video,
poster}], cost}], seams: [{parent, child, psnr}], films: [{variant, video}]}` plus the
details the page shows, where `video` and `poster` are the addresses the page itself uses.
`cost` is what the shot's takes cost (from the lock); `next_run` what a run now would
spend on it. Seams not measured yet (the child has not been rendered) are listed apart.
"""

from __future__ import annotations

from typing import Any

from .board import Board, FilmView, ShotView
from .pages import Urls
from .seams import Seam


def board_json(board: Board, urls: Urls) -> dict[str, Any]:
    if board.problems:
        return {"name": board.name, "file": board.file, "problems": board.problems,
                "shots": [], "seams": [], "films": []}
    return {
        "name": board.name,
        "file": board.file,
        "variants": [dict(v) for v in board.variants],
        "shots": [_shot(s, urls) for s in board.shots],
        "seams": [_seam(s, urls) for s in board.seams if s.score is not None],
        "pending_seams": [{"parent": s.edge.parent, "child": s.edge.child, "note": s.note}
                          for s in board.seams if s.score is None],
        "films": [_film(f, urls) for f in board.films],
        "spent": board.spent,
        **pending_runs(board),
        "warnings": list(board.warnings),
    }


def pending_runs(board: Board) -> dict[str, Any]:
    """What the next run would render, and what it would cost."""
    return {
        "estimate": board.estimate,
        "cost_is_estimate": board.cost_is_estimate,
        "to_run": board.to_run,
        "unpriced": list(board.unpriced),
        "will_run": [{"key": s.key, "reason": str(s.shot.reason),
                      "cost": s.shot.estimated_cost} for s in board.shots if s.will_run],
    }


def _shot(view: ShotView, urls: Urls) -> dict[str, Any]:
    shot = view.shot
    return {
        "key": shot.key, "id": shot.id, "variant": dict(shot.variant), "pick": shot.pick,
        "status": view.status, "reason": str(shot.reason), "error": view.error,
        "takes": [{"n": t.n, "video": urls.video(t), "poster": urls.poster(t),
                   "picked": t.picked, "sha256": t.sha256} for t in view.takes],
        "cost": view.spent, "next_run": shot.estimated_cost if view.will_run else 0.0,
        "seed": shot.seed, "model": shot.model, "size": list(shot.size),
        "duration": shot.duration, "task_uuid": view.task_uuid, "identity": shot.identity,
        "settings": view.settings, "prompt": shot.request.get("positivePrompt"),
    }


def _seam(seam: Seam, urls: Urls) -> dict[str, Any]:
    assert seam.score is not None and seam.given and seam.taken
    return {
        "parent": seam.edge.parent, "child": seam.edge.child, **seam.score.to_json(),
        "poor": seam.poor,
        "parent_frame": seam.edge.frame, "child_frame": seam.edge.position,
        "parent_take": seam.edge.take, "given": urls.image(seam.given),
        "taken": urls.image(seam.taken),
    }


def _film(film: FilmView, urls: Urls) -> dict[str, Any]:
    return {"variant": dict(film.variant), "video": urls.film(film), "file": film.file,
            "shots": list(film.keys), "up_to_date": film.up_to_date}
