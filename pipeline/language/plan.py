"""Plan stage: graph + lock + cache -> `Plan`: each shot's exact request, identity, cost and
why it runs.

Pure: the lock, the cache lookup and the content hashes of local images are arguments.
A shot's identity is the sha256 of its canonical resolved request with every image replaced
by its content: a local file by its sha256, another shot's frame by that shot's identity,
the take picked and the frame index. Changing a prompt changes that shot's identity and,
through the chain, its descendants'; changing `pick` changes only the dependents'.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ..errors import Problem
from .catalog import Catalog, ModelSpec, closest_hint
from .continuity import holds_colour
from .films import FilmPlan
from .framing import check_frames
from .graph import ShotGraph, parse_ref
from .load import Path_
from .schema import check_request_fields
from .templates import ExpandedShot, shot_key

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}$")
PLACEHOLDER_UUID = "00000000-0000-4000-8000-000000000000"
SEED_RANGE = 2**31


class Reason(StrEnum):
    NEW = "new"
    REQUEST_CHANGED = "request changed"
    INPUT_CHANGED = "input frame changed"
    PICK_CHANGED = "pick changed"
    MISSING_FILE = "missing file"
    CACHED = "cached"


class ImageKind(StrEnum):
    URL = "url"
    UUID = "uuid"
    DATA_URI = "data-uri"
    BASE64 = "base64"
    FILE = "file"
    SHOT = "shot"


def classify_image(value: Any) -> ImageKind:
    if parse_ref(value) is not None:
        return ImageKind.SHOT
    text = str(value)
    if text.startswith(("http://", "https://")):
        return ImageKind.URL
    if text.startswith("data:"):
        return ImageKind.DATA_URI
    if _UUID.match(text):
        return ImageKind.UUID
    if len(text) >= 200 and _BASE64.match(text):
        return ImageKind.BASE64
    return ImageKind.FILE


class LockFacts(Protocol):
    """What the plan reads from a lock entry."""

    @property
    def identity(self) -> str: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def pick(self) -> int: ...


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
    price_known: bool = True
    color_hold: bool = False  # continuity: {color: match}

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
    file_hashes: Mapping[str, str] = field(default_factory=dict)
    color_hold: bool = False  # the storyboard's continuity: {color: match}
    # the `frame: best` of a shot identity's take, once it is made (None before)
    best_frame: Callable[[str, int], int | None] = lambda identity, pick: None


def make_plan(name: str, graph: ShotGraph, inputs: PlanInputs
              ) -> tuple[list[PlannedShot], list[Problem]]:
    """Plan every shot in dependency order (a child's identity needs its parents')."""
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
    model = shot.glue.get("model") or dict(shot.variant).get("model") or inputs.default_model
    spec = inputs.catalog.find(str(model)) if model else None
    if spec is None:  # an unknown model named by a variant is reported there, once
        named = "model" not in shot.glue and "model" in dict(shot.variant)
        return None, [] if named else [_model_problem(shot, model, inputs.catalog)]
    request, problems = build_request(shot, spec, graph, planned, inputs)
    blocked = any(k not in planned for k in _source_keys(request))
    if blocked or any(not p.warning for p in problems):
        return None, problems
    lock = inputs.lock.get(shot.key)
    seed, seed_source = _seed(request, lock)
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
        price_known=cost.known,
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
    images = _frame_images(shot, planned, inputs, problems)
    if images is not None:
        fields["inputs"] = {**(fields.get("inputs") or {}), "frameImages": images}
    request: dict[str, Any] = {"taskType": "videoInference", "model": spec.air}
    request.update((k, v) for k, v in fields.items() if k not in request)
    for k, v in spec.sent.items():
        request.setdefault(k, v)
    wrong, probe = check_frames(shot, spec, _with_placeholders(request), inputs.catalog)
    problems.extend(wrong)
    problems.extend(check_request_fields(spec, dict(probe), f"shots.{shot.id}",
                                         lambda p, key: _locate(shot, p)))
    problems.extend(_pick_problems(shot, request))
    return request, problems


def _locate(shot: ExpandedShot, path: Sequence[str | int]) -> tuple[Any, Path_]:
    layer = shot.locate(path)
    return layer.doc, layer.path + tuple(path)


def _frame_images(shot: ExpandedShot, planned: Mapping[str, PlannedShot], inputs: PlanInputs,
                  problems: list[Problem]) -> list[Any] | None:
    written = (shot.fields.get("inputs") or {}).get("frameImages")
    items = [_resolve_item(item, shot, planned, inputs) for item in written or []]
    origin = shot.glue.get("from")
    if origin is None:
        return items if written is not None else None
    ref = {"shot": origin, "frame": "last"} if isinstance(origin, str) else origin
    if any(isinstance(i, Mapping) and i.get("frame") in ("first", 0) for i in items):
        problems.append(shot.source.doc.problem(
            shot.source.path + ("from",), f"shots.{shot.id}: from sets the first frame, and "
            "inputs.frameImages sets one too", hint="drop one of them", key=True))
    return [{"image": _shot_source(ref, shot, planned, inputs), "frame": "first"}, *items]


def _resolve_item(item: Any, shot: ExpandedShot, planned: Mapping[str, PlannedShot],
                  inputs: PlanInputs) -> Any:
    if isinstance(item, Mapping) and "image" in item:
        return {**item, "image": _resolve_image(item["image"], shot, planned, inputs)}
    return _resolve_image(item, shot, planned, inputs)


def _resolve_image(value: Any, shot: ExpandedShot, planned: Mapping[str, PlannedShot],
                   inputs: PlanInputs) -> Any:
    kind = classify_image(value)
    if kind is ImageKind.SHOT:
        return _shot_source(value, shot, planned, inputs)
    if kind is ImageKind.FILE:
        return {"source": "file", "path": value, "sha256": inputs.file_hashes.get(value)}
    return value


def _shot_source(ref: Mapping[str, Any], shot: ExpandedShot,
                 planned: Mapping[str, PlannedShot], inputs: PlanInputs) -> dict[str, Any]:
    """A frame of a shot's picked take: graded if it holds its colour; `best`'s choice."""
    key = shot_key(str(ref["shot"]), shot.variant)
    parent = planned.get(key)
    frame = ref.get("frame", "last")
    source = {"source": "shot", "shot": ref["shot"], "key": key, "frame": frame,
              "take": parent.pick if parent else 1}
    if parent is not None and parent.color_hold:
        source["color"] = "match"
    if parent is not None and frame == "best":
        source["chosen"] = inputs.best_frame(parent.identity, parent.pick)
    return source


def _source_keys(request: Mapping[str, Any]) -> list[str]:
    images = (request.get("inputs") or {}).get("frameImages") or []
    items = [i["image"] if isinstance(i, Mapping) and "image" in i else i for i in images]
    return [i["key"] for i in items if isinstance(i, Mapping) and i.get("source") == "shot"]


def _with_placeholders(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as the model's schema sees it: run-time images as a UUID."""
    inputs = request.get("inputs")
    if not isinstance(inputs, Mapping) or not isinstance(inputs.get("frameImages"), list):
        return dict(request)
    items = [_placeholder(i) for i in inputs["frameImages"]]
    return {**request, "inputs": {**inputs, "frameImages": items}}


def _placeholder(item: Any) -> Any:
    if isinstance(item, Mapping) and "source" in item:
        return PLACEHOLDER_UUID
    if isinstance(item, Mapping) and isinstance(item.get("image"), Mapping):
        return {**item, "image": PLACEHOLDER_UUID}
    return item


def _pick_problems(shot: ExpandedShot, request: Mapping[str, Any]) -> list[Problem]:
    pick = shot.glue.get("pick", 1)
    takes = request.get("numberResults", 1)
    if isinstance(pick, int) and isinstance(takes, int) and pick > takes:
        return [shot.source.doc.problem(
            shot.source.path + ("pick",), f"shots.{shot.id}.pick: take {pick} does not exist: "
            f"numberResults is {takes}", hint=f"use pick: 1..{takes} or raise numberResults")]
    return []


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
                          "frameImages": [_image_identity(i, planned) for i in images]}
    return view


def _image_identity(item: Any, planned: Mapping[str, PlannedShot]) -> Any:
    if isinstance(item, Mapping) and "image" in item:
        return {**item, "image": _image_identity(item["image"], planned)}
    if isinstance(item, Mapping) and item.get("source") == "shot":
        parent = planned[item["key"]]
        graded = {"color": item["color"]} if "color" in item else {}
        return {"shot": parent.identity, "take": item["take"], "frame": item["frame"], **graded}
    if isinstance(item, Mapping) and item.get("source") == "file":
        return {"file": item["sha256"]}
    return item


def _reason(shot: ExpandedShot, identity: str, cached: bool, lock: LockFacts | None,
            graph: ShotGraph, planned: Mapping[str, PlannedShot], inputs: PlanInputs) -> Reason:
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
