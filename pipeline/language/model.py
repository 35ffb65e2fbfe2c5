"""Model stage: validated Documents -> `Storyboard` (frozen dataclasses).

Reads nothing itself: included scene files are loaded by `load_storyboard`, which is the one
entry point that touches the file system (load + schema + model for the main file and its
includes), and refuses includes that leave the storyboard's folder or repeat one. Values the
schema refuses are set aside (`schema.set_aside`) so that the later stages still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Problem, StoryboardError
from .load import Document, Path_, load_document
from .schema import set_aside


@dataclass(frozen=True)
class Layer:
    """Request fields written in one place (a defaults block or a shot), lowest first."""

    fields: Mapping[str, Any]
    doc: Document
    path: Path_


@dataclass(frozen=True)
class ShotDef:
    """A shot as written: its body, where it stands, and the defaults layered under it."""

    id: str
    body: Mapping[str, Any]
    doc: Document
    path: Path_
    defaults: tuple[Layer, ...]
    scene: str | None = None

    @property
    def layer(self) -> Layer:
        return Layer(self.body, self.doc, self.path)


@dataclass(frozen=True)
class Film:
    shots: tuple[str, ...] | None
    transition: str | Mapping[str, Any]
    file: str | None
    path: Path_ = ("film",)


@dataclass(frozen=True)
class Storyboard:
    path: Path
    folder: Path
    name: str
    model: str | None
    vars: Mapping[str, Any]
    variants: tuple[tuple[str, tuple[Any, ...]], ...]
    exclude: tuple[Mapping[str, Any], ...]
    shots: tuple[ShotDef, ...]
    film: Film
    doc: Document
    concurrency: int | None = None
    documents: tuple[Document, ...] = field(default=())
    continuity: Mapping[str, Any] = field(default_factory=dict)

    def shot(self, shot_id: str) -> ShotDef | None:
        return next((s for s in self.shots if s.id == shot_id), None)


def read_storyboard(path: Path, *, display: str | None = None) -> Storyboard:
    """Load, schema-check and model a storyboard and its included scenes."""
    board, problems = load_storyboard(path, display=display)
    if problems:
        raise StoryboardError(problems)
    return board


def load_storyboard(path: Path, *, display: str | None = None
                    ) -> tuple[Storyboard, list[Problem]]:
    """The storyboard made of what is valid, and the problems of the rest. Raises
    StoryboardError when there is nothing sound to go on (YAML or structure)."""
    doc = load_document(path, display)
    problems = set_aside(doc)
    folder = path.resolve().parent
    try:
        includes, found = _load_includes(doc, path.parent, folder)
    except StoryboardError as exc:
        raise StoryboardError(problems + exc.problems) from None
    board, found_in_board = build_storyboard(doc, path, includes)
    return board, problems + found + found_in_board


def _load_includes(doc: Document, base: Path, folder: Path
                   ) -> tuple[dict[int, Document], list[Problem]]:
    """Each included scene file, loaded and checked; raises StoryboardError when one cannot
    be read or its structure is wrong (its shots would be missing from the graph)."""
    includes: dict[int, Document] = {}
    fatal: list[Problem] = []
    problems: list[Problem] = []
    seen: dict[Path, int] = {}
    for i, scene in enumerate(doc.data.get("scenes") or []):
        if "include" not in scene:
            continue
        where = ("scenes", i, "include")
        target = (base / scene["include"])
        if not target.resolve().is_relative_to(folder):
            fatal.append(doc.problem(where, f"include {scene['include']!r} is outside the "
                                     "storyboard's folder", hint="move the file next to "
                                     "the storyboard or into a subfolder"))
            continue
        if not target.is_file():
            fatal.append(doc.problem(where, f"included file not found: {scene['include']}"))
            continue
        first = seen.setdefault(target.resolve(), i)
        if first != i:
            line = doc.where(("scenes", first, "include")).line
            fatal.append(doc.problem(where, f"{scene['include']!r} is already included on line "
                                     f"{line}", hint="a scene file is included once: its "
                                     "shot ids are unique in the storyboard"))
            continue
        try:
            inc = load_document(target, _display(target, doc.file, scene["include"]))
            problems.extend(set_aside(inc, ref="#/$defs/include"))
        except StoryboardError as exc:
            fatal.extend(exc.problems)
            continue
        includes[i] = inc
    if fatal:
        raise StoryboardError(problems + fatal)
    return includes, problems


def _display(target: Path, parent_display: str, written: str) -> str:
    return str(Path(parent_display).parent / written)


def build_storyboard(doc: Document, path: Path, includes: Mapping[int, Document]
                     ) -> tuple[Storyboard, list[Problem]]:
    """Pure: Documents -> Storyboard, plus problems (duplicate shot ids across scenes)."""
    data = doc.data
    top = _defaults_layer(doc, ("defaults",), data.get("defaults"))
    shots, problems = _collect_shots(doc, top, includes)
    variants = data.get("variants") or {}
    board = Storyboard(
        path=path,
        folder=path.resolve().parent,
        name=data.get("name") or _stem_name(path),
        model=data.get("model"),
        vars=data.get("vars") or {},
        variants=tuple((k, tuple(v)) for k, v in variants.items() if k != "exclude"),
        exclude=tuple(variants.get("exclude") or ()),
        shots=tuple(shots),
        film=_film(data.get("film") or {}),
        doc=doc,
        concurrency=data.get("concurrency"),
        documents=(doc, *includes.values()),
        continuity=data.get("continuity") or {},
    )
    return board, problems


def _stem_name(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "_-" else "-" for c in path.stem.lower())
    return stem.lstrip("-_") or "storyboard"


def _defaults_layer(doc: Document, path: Path_, fields: Any) -> tuple[Layer, ...]:
    return (Layer(fields, doc, path),) if fields else ()


def _collect_shots(doc: Document, top: tuple[Layer, ...], includes: Mapping[int, Document]
                   ) -> tuple[list[ShotDef], list[Problem]]:
    shots: list[ShotDef] = []
    problems: list[Problem] = []
    seen: dict[str, ShotDef] = {}
    for group in _shot_groups(doc, top, includes):
        for shot in group:
            first = seen.get(shot.id)
            if first is not None:
                line = first.doc.where(first.path, key=True)
                problems.append(shot.doc.problem(
                    shot.path, f"duplicate shot id {shot.id!r} (first defined at {line})",
                    hint="shot ids must be unique across every scene", key=True))
                continue
            seen[shot.id] = shot
            shots.append(shot)
    return shots, problems


def _shot_groups(doc: Document, top: tuple[Layer, ...], includes: Mapping[int, Document]
                 ) -> list[list[ShotDef]]:
    data = doc.data
    if "shots" in data:
        return [_shots_of(doc, ("shots",), data["shots"], top, None)]
    groups = []
    for i, scene in enumerate(data["scenes"]):
        src, base = (includes[i], ()) if i in includes else (doc, ("scenes", i))
        body = src.data if i in includes else scene
        name = body.get("name") or scene.get("include") or f"scene {i + 1}"
        layers = top + _defaults_layer(src, base + ("defaults",), body.get("defaults"))
        groups.append(_shots_of(src, base + ("shots",), body["shots"], layers, name))
    return groups


def _shots_of(doc: Document, base: Path_, shots: Mapping[str, Any], layers: tuple[Layer, ...],
              scene: str | None) -> list[ShotDef]:
    return [ShotDef(sid, body or {}, doc, base + (sid,), layers, scene)
            for sid, body in shots.items()]


def _film(data: Mapping[str, Any]) -> Film:
    shots = data.get("shots")
    return Film(tuple(shots) if shots else None, data.get("transition", "cut"), data.get("file"))
