"""Compile: a storyboard path -> a validated `Plan`, every stage's problems reported at once.

This is the one place that strings the stages together (load -> schema -> model ->
templates -> graph -> plan -> film -> finishing) and has the few files they need read
(`files`: local images, and where films go; `finishing`: soundtrack files; both refused
outside the storyboard's folder unless allowed). A stage runs on whatever the stages before
it found valid, so one pass reports every problem it can; a later problem at the very place
of an earlier one is the same mistake seen again and is left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import Problem, StoryboardError
from ..media.formats import EXTENSIONS
from .catalog import Catalog, load_catalog
from .files import film_file_problems, read_local_images
from .films import FilmPlan, entry_id, film_plans
from .finishing import AudioFile, finish_plan, read_audio_files
from .graph import HINTS, ShotGraph, build_graph
from .model import Storyboard, load_storyboard
from .plan import ClipLengths, LockFacts, Plan, PlanInputs, Reason, make_plan
from .templates import (
    ExpandedShot,
    Renderer,
    Variant,
    expand_shots,
    iter_variants,
    render_film_strings,
    shot_key,
)
from .violations import closest_hint


@dataclass(frozen=True)
class Compiled:
    board: Storyboard
    graph: ShotGraph
    plan: Plan


def compile_storyboard(
    path: Path,
    *,
    display: str | None = None,
    lock: Mapping[str, LockFacts] | None = None,
    is_cached: Callable[[str], bool] | None = None,
    allow_outside: bool = False,
    catalog: Catalog | None = None,
    best_frame: Callable[[str, int], int | None] | None = None,
    store_reason: Callable[[str, str], Reason | None] | None = None,
) -> Compiled:
    """Everything `validate`, `plan` and `run` need; raises StoryboardError on any problem.
    `best_frame` says which frame `frame: best` chose in a shot identity's take, once made."""
    board, early = load_storyboard(path, display=display)
    catalog = catalog or load_catalog()
    renderer = Renderer()
    variants, problems = iter_variants(board)
    if board.variants and not variants:
        raise StoryboardError(early + problems)  # nothing to render; later stages would echo
    variants = variants or [()]
    shots, found = expand_shots(board, variants, renderer)
    problems += found
    films, found = _films(board, variants, shots, renderer)
    problems += found + _variant_models(board, catalog)
    if renderer.budget.spent:  # the rest would only trip over what was left unrendered
        raise StoryboardError(early + problems)
    graph, found = build_graph(shots)
    problems += found
    files, found = read_local_images(board, shots, allow_outside)
    problems += found + film_file_problems(board, films)
    audio, found = read_audio_files(board.doc, board.folder, films, allow_outside)
    problems += found
    planned: list[Any] = []
    if graph.layers:
        inputs = PlanInputs(catalog, board.model, lock or {}, is_cached or (lambda i: False),
                            files, ClipLengths(graph.shots, catalog, board.model),
                            board.continuity.get("color") == "match",
                            best_frame or (lambda identity, pick: None),
                            store_reason or (lambda key, identity: None))
        planned, found = make_plan(board.name, graph, inputs)
        problems += found
    problems = early + _new(problems, early)
    plans: list[FilmPlan] = []
    if not any(not p.warning for p in problems):
        plans, found = _film_plans(board, variants, films, planned, catalog)
        problems += found
        plans, found = _finished(board, films, plans, shots, planned, audio)
        problems += found
    errors = [p for p in problems if not p.warning]
    if errors:
        raise StoryboardError(problems)
    plan = Plan(board.name, tuple(planned), tuple(plans),
                tuple(tuple(layer) for layer in graph.layers),
                tuple(graph.critical_path()), tuple(p for p in problems if p.warning))
    return Compiled(board, graph, plan)


def _films(board: Storyboard, variants: Sequence[Variant], shots: Sequence[ExpandedShot],
           renderer: Renderer) -> tuple[list[dict[str, Any]], list[Problem]]:
    films, problems = [], []
    ids = [s.id for s in board.shots]
    for variant in variants:
        film, found = render_film_strings(board, variant, renderer)
        problems += found
        for i, entry in enumerate(film.get("shots") or []):
            sid = entry_id(entry)
            if sid not in ids:  # a hint is a pass over every id: the first few get one
                where = ("film", "shots", i) + (("shot",) if isinstance(entry, Mapping) else ())
                hint = closest_hint(sid, ids) if len(problems) < HINTS else None
                problems.append(board.doc.problem(where, f"film.shots: unknown shot {sid!r}",
                                                  hint=hint))
        file = film.get("file")
        if file is not None and Path(str(file)).suffix.lower().lstrip(".") not in EXTENSIONS.values():
            problems.append(board.doc.problem(("film", "file"), f"film.file: {file!r} must end "
                                              "in .mp4, .webm or .mov"))
        films.append(film)
    return films, list(dict.fromkeys(problems))


def _film_plans(board: Storyboard, variants: Sequence[Variant], films: list[dict[str, Any]],
                planned: Sequence[Any], catalog: Catalog) -> tuple[list[FilmPlan], list[Problem]]:
    by_key = {s.key: s for s in planned}
    keys_by_variant: dict[Variant, list[str]] = {}
    for variant, film in zip(variants, films, strict=True):
        ids = [entry_id(e) for e in film.get("shots") or []] or [s.id for s in board.shots]
        keys_by_variant[variant] = [shot_key(i, variant) for i in ids]
        if not film.get("file"):
            first = by_key[keys_by_variant[variant][0]]
            film["file"] = f"{board.name}.{EXTENSIONS[first.request.get('outputFormat', 'MP4')]}"
    names = [f["file"] for f in films]
    for variant, film in zip(variants, films, strict=True):
        if variant and names.count(film["file"]) > 1:
            stem, dot, ext = film["file"].rpartition(".")
            film["file"] = f"{stem}-{'-'.join(_slug(v) for _, v in variant)}.{ext}"
    return film_plans(board.doc, variants, films, keys_by_variant, planned, catalog)


def _slug(value: Any) -> str:
    """A variant value as a part of a file name: 'pixverse:1@5' -> 'pixverse-1-5'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-") or "variant"


def _variant_models(board: Storyboard, catalog: Catalog) -> list[Problem]:
    """A variant named `model` sets each shot's model: every value must be a known one."""
    values = dict(board.variants).get("model", ())
    return [board.doc.problem(("variants", "model", i), f"variants.model: unknown model "
                              f"{value!r}", hint=closest_hint(str(value), catalog.ids)
                              or "storyreel models lists the models")
            for i, value in enumerate(values) if catalog.find(str(value)) is None]


def _finished(board: Storyboard, films: list[dict[str, Any]], plans: list[FilmPlan],
              shots: Sequence[ExpandedShot], planned: Sequence[Any],
              audio: Mapping[str, AudioFile]) -> tuple[list[FilmPlan], list[Problem]]:
    """Each film plan with its soundtrack, captions and title."""
    by_key = {s.key: s for s in planned}
    out, problems = [], []
    for film, plan in zip(films, plans, strict=True):
        finish, found = finish_plan(board.doc, film, plan, shots, by_key, audio)
        problems += found
        out.append(replace(plan, finish=finish))
    return out, list(dict.fromkeys(problems))


def _new(later: list[Problem], early: list[Problem]) -> list[Problem]:
    """The later problems that are not an earlier one seen again: at the same place, or on
    the same line about the same field (one at its key, the other at its value)."""
    places = {p.location for p in early if p.location is not None}
    fields = {(p.location.file, p.location.line, _label(p)) for p in early if p.location}
    return [p for p in dict.fromkeys(later) if p.location not in places and not (
        p.location and (p.location.file, p.location.line, _label(p)) in fields)]


def _label(problem: Problem) -> str:
    """What a message is about: 'shots.a.seed' of 'shots.a.seed: -5 must be at least 0'."""
    return problem.message.split(": ", 1)[0]
