"""Compile: a storyboard path -> a validated `Plan`, every stage's problems reported at once.

This is the one place that strings the pure stages together (load -> schema -> model ->
templates -> graph -> plan -> film -> finishing) and does the little file reading they need
(local images are hashed here, soundtrack files probed and hashed by `finishing`; both are
refused outside the storyboard's folder unless allowed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import Problem, StoryboardError
from ..media.formats import EXTENSIONS
from ..store import sha256_file
from .catalog import Catalog, closest_hint, load_catalog
from .films import FilmPlan, entry_id, film_plans
from .finishing import AudioFile, finish_plan, read_audio_files
from .graph import ShotGraph, build_graph
from .model import Storyboard, read_storyboard
from .plan import ImageKind, LockFacts, Plan, PlanInputs, classify_image, make_plan
from .templates import (
    ExpandedShot,
    Renderer,
    Variant,
    expand_shots,
    iter_variants,
    render_film_strings,
    shot_key,
)


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
) -> Compiled:
    """Everything `validate`, `plan` and `run` need; raises StoryboardError on any problem.
    `best_frame` says which frame `frame: best` chose in a shot identity's take, once made."""
    board = read_storyboard(path, display=display)
    catalog = catalog or load_catalog()
    renderer = Renderer()
    variants, problems = iter_variants(board)
    if board.variants and not variants:
        raise StoryboardError(problems)  # nothing to render; later stages would only echo it
    variants = variants or [()]
    shots, found = expand_shots(board, variants, renderer)
    problems += found
    graph, found = build_graph(shots)
    problems += found
    hashes, found = hash_local_images(board, shots, allow_outside)
    problems += found
    films, found = _films(board, variants, shots, renderer)
    problems += found + _variant_models(board, catalog)
    audio, found = read_audio_files(board.doc, board.folder, films, allow_outside)
    problems += found
    planned: list[Any] = []
    if graph.layers:
        inputs = PlanInputs(catalog, board.model, lock or {}, is_cached or (lambda i: False),
                            hashes, board.continuity.get("color") == "match",
                            best_frame or (lambda identity, pick: None))
        planned, found = make_plan(board.name, graph, inputs)
        problems += found
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


def hash_local_images(board: Storyboard, shots: Sequence[ExpandedShot], allow_outside: bool
                      ) -> tuple[dict[str, str], list[Problem]]:
    """sha256 of every local image file the shots name, read once each."""
    hashes: dict[str, str] = {}
    problems: list[Problem] = []
    for shot in shots:
        for path, value in _image_values(shot):
            if classify_image(value) is not ImageKind.FILE or value in hashes:
                continue
            found = _hash_file(board.folder, value, allow_outside)
            if isinstance(found, str):
                hashes[value] = found
            else:
                layer = shot.locate(path)
                problems.append(layer.doc.problem(layer.path + path,
                                                  f"shots.{shot.id}: {found[0]}", hint=found[1]))
    return hashes, list(dict.fromkeys(problems))


def _image_values(shot: ExpandedShot) -> list[tuple[tuple[str | int, ...], Any]]:
    images = (shot.fields.get("inputs") or {}).get("frameImages")
    out: list[tuple[tuple[str | int, ...], Any]] = []
    for i, item in enumerate(images if isinstance(images, list) else []):
        if isinstance(item, Mapping) and "image" in item:
            out.append((("inputs", "frameImages", i, "image"), item["image"]))
        else:
            out.append((("inputs", "frameImages", i), item))
    return out


def _hash_file(folder: Path, name: str, allow_outside: bool) -> str | tuple[str, str | None]:
    target = (folder / name).resolve()
    if not allow_outside and not target.is_relative_to(folder):
        return (f"image file {name!r} is outside the storyboard's folder",
                "copy it next to the storyboard, or pass --allow-outside to read it")
    if not target.is_file():
        return (f"image file not found: {name}",
                "a local path is relative to the storyboard; URLs start with http(s)://")
    return sha256_file(target)


def _films(board: Storyboard, variants: Sequence[Variant], shots: Sequence[ExpandedShot],
           renderer: Renderer) -> tuple[list[dict[str, Any]], list[Problem]]:
    films, problems = [], []
    ids = [s.id for s in board.shots]
    for variant in variants:
        film, found = render_film_strings(board, variant, renderer)
        problems += found
        for i, entry in enumerate(film.get("shots") or []):
            sid = entry_id(entry)
            if sid not in ids:
                where = ("film", "shots", i) + (("shot",) if isinstance(entry, Mapping) else ())
                problems.append(board.doc.problem(where, f"film.shots: unknown shot {sid!r}",
                                                  hint=closest_hint(sid, ids)))
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
