"""Plan stage: graph + lock + cache -> `Plan`: each shot's exact request, identity, cost and
why it runs.

Pure: the lock, the cache lookup and what was read of local images are arguments.
A shot's identity is the sha256 of its canonical resolved request with every image replaced
by its content: a local file by its sha256, another shot's frame by that shot's identity,
the take picked and the frame index. Changing a prompt changes that shot's identity and,
through the chain, its descendants'; changing `pick` changes only the dependents'.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from ..errors import Problem
from ..store import Spot
from .catalog import Catalog, ModelSpec
from .continuity import holds_colour
from .films import FilmPlan
from .framing import check_frames
from .graph import ShotGraph
from .images import (
    ClipLength,
    ImageResolver,
    LocalImage,
    image_identity,
    source_keys,
    with_placeholders,
)
from .load import Path_
from .schema import check_request_fields
from .templates import ExpandedShot
from .violations import closest_hint

SEED_RANGE = 2**31


class Reason(StrEnum):
    NEW = "new"
    REQUEST_CHANGED = "request changed"
    INPUT_CHANGED = "input frame changed"
    PICK_CHANGED = "pick changed"
    MISSING_FILE = "missing file: generate again"
    DOWNLOAD_AGAIN = "missing file: download again"  # the service still has the videos
    LOCK_MISMATCH = "lock mismatch"  # cached, but the lock says otherwise than the cache
    CACHED = "cached"


class LockFacts(Protocol):
    """What the plan reads from a lock entry, and where in the lock file each field stands."""

    @property
    def identity(self) -> str: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def pick(self) -> int: ...
    @property
    def spots(self) -> Mapping[str, Spot]: ...


@dataclass(frozen=True)
class PlannedShot:
    id: str
    key: str
    variant: Mapping[str, Any]
    needs: tuple[str, ...]
    request: Mapping[str, Any]  # the exact task, taskUUID aside; run-time images as objects
    identity: str
    cached: bool
    reason: Reason
    estimated_cost: float
    cost_is_estimate: bool
    seed: int
    seed_source: str  # storyboard | lock | new | none (the model takes no seed)
    takes: int
    pick: int
    model: str
    size: tuple[int, int]
    duration: float
    fps: int  # the model's frame rate
    price_known: bool = True
    color_hold: bool = False  # continuity: {color: match}

    @property
    def frames(self) -> int:
        """How many frames its clip holds: the duration at the model's frame rate."""
        return round(self.duration * self.fps)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "key": self.key, "variant": dict(self.variant),
            "needs": list(self.needs), "request": self.request, "identity": self.identity,
            "cached": self.cached, "status": str(self.reason), "seed": self.seed,
            "seed_source": self.seed_source, "takes": self.takes, "pick": self.pick,
            "size": f"{self.size[0]}x{self.size[1]}", "duration": self.duration,
            "estimated_cost": self.estimated_cost if self.price_known else None,
            "cost_is_estimate": self.cost_is_estimate,
        } | ({"continuity": {"color": "match"}} if self.color_hold else {})


@dataclass(frozen=True)
class Plan:
    name: str
    shots: tuple[PlannedShot, ...]
    films: tuple[FilmPlan, ...]
    layers: tuple[tuple[str, ...], ...]
    critical_path: tuple[str, ...]
    warnings: tuple[Problem, ...] = field(default=())

    def shot(self, key: str) -> PlannedShot:
        return next(s for s in self.shots if s.key == key)

    @property
    def estimated_cost(self) -> float:
        """What running the plan would spend: each uncached identity once."""
        unique = {s.identity: s.estimated_cost for s in self.shots if not s.cached}
        return round(sum(unique.values()), 6)

    @property
    def unpriced(self) -> list[str]:
        """Keys of the shots to run whose model has no published price."""
        return [s.key for s in self.shots if not s.cached and not s.price_known]

    @property
    def estimated_cost_all(self) -> float:
        unique = {s.identity: s.estimated_cost for s in self.shots}
        return round(sum(unique.values()), 6)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shots": [s.to_json() for s in self.shots],
            "films": [film.to_json() for film in self.films],
            "layers": [list(layer) for layer in self.layers],
            "critical_path": list(self.critical_path),
            "estimated_cost": self.estimated_cost,
            "estimated_cost_all": self.estimated_cost_all,
            "unpriced": self.unpriced,
        }


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class PlanInputs:
    """Everything the plan reads besides the graph: pure data and one lookup."""

    catalog: Catalog
    default_model: str | None
    lock: Mapping[str, LockFacts] = field(default_factory=dict)
    is_cached: Callable[[str], bool] = lambda identity: False
    files: Mapping[str, LocalImage] = field(default_factory=dict)  # local images, by path
    clips: Mapping[str, ClipLength] | None = None  # by shot key; None: worked out here
    color_hold: bool = False  # the storyboard's continuity: {color: match}
    # the `frame: best` of a shot identity's take, once it is made (None before)
    best_frame: Callable[[str, int], int | None] = lambda identity, pick: None
    # What the store knows better than the lock, by shot key and identity: a lock entry
    # that disagrees with the cache, or a lost take the service can send again.
    store_reason: Callable[[str, str], Reason | None] = lambda key, identity: None


def model_of(shot: ExpandedShot, default: str | None) -> Any:
    """A shot's model: its own (or its defaults'), else a variant named `model`, else the
    storyboard's (rendered for the shot's variant)."""
    return (shot.glue.get("model") or dict(shot.variant).get("model") or shot.file_model
            or default)


class ClipLengths(Mapping[str, ClipLength]):
    """How long each shot's clip will be, by shot key, worked out when first asked: for
    every shot whose model and duration are known, even one whose request has other
    problems, so the frames other shots take from it and the crossfades around it are
    checked all the same."""

    def __init__(self, shots: Mapping[str, ExpandedShot], catalog: Catalog,
                 default_model: str | None) -> None:
        self._shots, self._catalog, self._default = shots, catalog, default_model
        self._known: dict[str, ClipLength | None] = {}

    def __getitem__(self, key: str) -> ClipLength:
        if key not in self._known:
            self._known[key] = self._length(self._shots[key])
        found = self._known[key]
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[str]:
        return (key for key in self._shots if key in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _length(self, shot: ExpandedShot) -> ClipLength | None:
        model = model_of(shot, self._default)
        spec = self._catalog.find(str(model)) if model and "model" not in shot.failed else None
        duration = shot.fields.get("duration", spec.default_duration if spec else None)
        if spec is None or not isinstance(duration, int | float) or isinstance(duration, bool):
            return None
        return ClipLength(float(duration), spec.fps)


def make_plan(name: str, graph: ShotGraph, inputs: PlanInputs
              ) -> tuple[list[PlannedShot], list[Problem]]:
    """Plan every shot in dependency order (a child's identity needs its parents')."""
    if inputs.clips is None:
        inputs = replace(inputs, clips=ClipLengths(graph.shots, inputs.catalog,
                                                   inputs.default_model))
    planned: dict[str, PlannedShot] = {}
    problems: list[Problem] = []
    for key in graph.order:
        shot, found = plan_shot(graph.shots[key], graph, planned, inputs)
        problems.extend(found)
        if shot is not None:
            planned[key] = shot
    return [planned[k] for k in graph.shots if k in planned], list(dict.fromkeys(problems))


def plan_shot(shot: ExpandedShot, graph: ShotGraph, planned: Mapping[str, PlannedShot],
              inputs: PlanInputs) -> tuple[PlannedShot | None, list[Problem]]:
    if "model" in shot.failed:
        return None, []  # its template is wrong, and said so: no model to check against
    model = model_of(shot, inputs.default_model)
    spec = inputs.catalog.find(str(model)) if model else None
    if spec is None:  # an unknown model named by a variant is reported there, once
        named = "model" not in shot.glue and "model" in dict(shot.variant)
        return None, [] if named else [_model_problem(shot, model, inputs.catalog)]
    request, problems = build_request(shot, spec, graph, planned, inputs)
    lock = inputs.lock.get(shot.key)
    seed, seed_source = _seed(request, lock)
    if lock is not None and seed_source == "lock" and spec.takes_seed:
        problems += _lock_seed_problems(shot, spec, seed, lock)
    blocked = any(k not in planned for k in source_keys(request))
    if blocked or any(not p.warning for p in problems):
        return None, problems
    if spec.takes_seed:
        request["seed"] = seed
    else:
        seed_source = "none"
    identity = sha256_text(canonical_json(_identity_view(request, planned, inputs)))
    cached = inputs.is_cached(identity)
    cost = spec.estimate_cost(request)
    pick = int(shot.glue.get("pick", 1))
    return PlannedShot(
        id=shot.id, key=shot.key, variant=dict(shot.variant),
        needs=tuple(graph.parents(shot.key)), request=request, identity=identity,
        cached=cached, reason=_reason(shot, identity, cached, lock, graph, planned, inputs),
        estimated_cost=cost.amount, cost_is_estimate=cost.estimated, seed=seed,
        seed_source=seed_source, takes=int(request.get("numberResults", 1)), pick=pick,
        model=spec.air, size=spec.output_size(request), duration=spec.duration(request),
        fps=spec.fps, price_known=cost.known,
        color_hold=holds_colour(shot.glue, inputs.color_hold, request),
    ), problems


def _model_problem(shot: ExpandedShot, model: Any, catalog: Catalog) -> Problem:
    if not model:
        return shot.source.doc.problem(shot.source.path, f"shots.{shot.id}: no model",
                                       hint="set model: at the top of the file or on the shot",
                                       key=True)
    layer = shot.locate(("model",)) if "model" in shot.glue else None
    doc, path = (layer.doc, layer.path + ("model",)) if layer else (shot.source.doc, ("model",))
    return doc.problem(path, f"unknown model {model!r}", hint=closest_hint(
        str(model), catalog.ids) or "storyreel models lists the models")


def build_request(shot: ExpandedShot, spec: ModelSpec, graph: ShotGraph,
                  planned: Mapping[str, PlannedShot], inputs: PlanInputs
                  ) -> tuple[dict[str, Any], list[Problem]]:
    """The exact task (taskUUID aside) and the problems its model finds in it."""
    fields = dict(shot.fields)
    problems: list[Problem] = []
    clips = inputs.clips if inputs.clips is not None else {}
    images = ImageResolver(shot, spec, planned, inputs.files, clips, problems,
                           inputs.best_frame).frame_images()
    if images is not None:
        fields["inputs"] = {**(fields.get("inputs") or {}), "frameImages": images}
    request: dict[str, Any] = {"taskType": "videoInference", "model": spec.air}
    request.update((k, v) for k, v in fields.items() if k not in request)
    for k, v in spec.sent.items():
        request.setdefault(k, v)
    wrong, probe = check_frames(shot, spec, with_placeholders(request), inputs.catalog)
    problems.extend(wrong)
    problems.extend(check_request_fields(spec, dict(probe), f"shots.{shot.id}",
                                         lambda p, key: _locate(shot, p)))
    problems.extend(_pick_problems(shot, request))
    return request, problems


def _locate(shot: ExpandedShot, path: Sequence[str | int]) -> tuple[Any, Path_]:
    layer = shot.locate(path)
    return layer.doc, layer.path + tuple(path)


def _pick_problems(shot: ExpandedShot, request: Mapping[str, Any]) -> list[Problem]:
    pick = shot.glue.get("pick", 1)
    takes = request.get("numberResults", 1)
    if isinstance(pick, int) and isinstance(takes, int) and pick > takes:
        return [shot.source.doc.problem(
            shot.source.path + ("pick",), f"shots.{shot.id}.pick: take {pick} does not exist: "
            f"numberResults is {takes}", hint=f"use pick: 1..{takes} or raise numberResults")]
    return []


def _lock_seed_problems(shot: ExpandedShot, spec: ModelSpec, seed: int, lock: LockFacts
                        ) -> list[Problem]:
    """The lock is input too: a seed it holds must be one the shot's model takes."""
    limits = spec.seed_range
    if limits is None or limits[0] <= seed <= limits[1]:
        return []
    spot = lock.spots.get("seed") or lock.spots.get("")
    return [Problem(f"lock: {shot.key}: seed {seed} is not one {spec.air} takes ({limits[0]} to "
                    f"{limits[1]})", spot.location if spot else None,
                    "the lock file is generated: delete this seed line (or the shot's entry) "
                    "and a new seed is chosen", spot.source_line if spot else None)]


def _seed(request: Mapping[str, Any], lock: LockFacts | None) -> tuple[int, str]:
    """The storyboard's seed, else the lock's, else one derived from the request, so a
    plan and the run after it agree, and identical requests share a seed."""
    if isinstance(request.get("seed"), int):
        return int(request["seed"]), "storyboard"
    if lock is not None and lock.seed is not None:
        return int(lock.seed), "lock"
    digest = sha256_text(canonical_json(request))
    return int(digest[:12], 16) % SEED_RANGE, "new"


def _identity_view(request: Mapping[str, Any], planned: Mapping[str, PlannedShot],
                   inputs: PlanInputs) -> dict[str, Any]:
    view = dict(request)
    images = (request.get("inputs") or {}).get("frameImages")
    if isinstance(images, list):
        view["inputs"] = {**request["inputs"],
                          "frameImages": [image_identity(i, planned) for i in images]}
    return view


def _reason(shot: ExpandedShot, identity: str, cached: bool, lock: LockFacts | None,
            graph: ShotGraph, planned: Mapping[str, PlannedShot], inputs: PlanInputs) -> Reason:
    known = inputs.store_reason(shot.key, identity)
    if known is not None:
        return known
    if cached:
        return Reason.CACHED
    if lock is None:
        return Reason.NEW
    if lock.identity == identity:
        return Reason.MISSING_FILE
    parents = graph.parents(shot.key)
    if any(not planned[p].cached for p in parents):
        return Reason.INPUT_CHANGED
    for p in parents:
        facts = inputs.lock.get(p)
        if facts is not None and facts.pick != planned[p].pick:
            return Reason.PICK_CHANGED
    return Reason.REQUEST_CHANGED

