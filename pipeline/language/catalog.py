"""The model catalog: request schemas, cross-field rules, sizes and prices, as data.

Input: the JSON files under `schemas/models/` (one per Runware model AIR id).
Output: `ModelSpec` objects that check a request (`check_request`), estimate its cost
(`prices`), resolve its output size, and say what it takes and makes (`capabilities`). The
planner and the simulator both use this, so the simulator refuses exactly what the planner
refuses. Adding a model means adding a file, not code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ..errors import UsageError
from .capabilities import Sound, describe_frames, frame_positions, read_frames
from .prices import Cost, PriceList
from .shapes import RequestShapes
from .violations import JsonPath, Violation, closest_hint, translate_error


def schemas_dir() -> Path:
    """The schemas folder: inside the installed package, or at the top of a source checkout."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "schemas"
    return packaged if packaged.is_dir() else package.parent / "schemas"


@dataclass(frozen=True)
class Rule:
    id: str
    warning: bool
    code: str
    parameter: str
    message: str
    hint: str | None
    when: Draft202012Validator


@dataclass(frozen=True)
class ImageLimits:
    """What a model takes as an input image (`x-storyreel.images`): the length of each side
    in pixels, the file's size in bytes, and its formats (as Pillow names them)."""

    min_side: int
    max_side: int
    max_bytes: int
    formats: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    """One model: its request schema (JSON Schema 2020-12) and the x-storyreel extension."""

    air: str
    name: str
    schema: Mapping[str, Any]
    fps: int
    default_duration: float
    sent: Mapping[str, Any]
    sizes: Mapping[str, Any]
    prices: Mapping[str, Any]
    rules: tuple[Rule, ...]
    validator: Draft202012Validator = field(repr=False)
    shapes: RequestShapes = field(repr=False, compare=False)
    frames: tuple[str, ...] = ("first", "last")
    sound: Sound = Sound("never")
    price_list: PriceList = field(default_factory=lambda: PriceList.read(None))
    absent: Mapping[str, str] = field(default_factory=dict)  # field -> why the model lacks it
    images: ImageLimits | None = None  # None: the model file states no limits

    @property
    def seed_range(self) -> tuple[int, int] | None:
        """The smallest and largest seed the model takes, from its request schema."""
        seed = self.schema.get("properties", {}).get("seed", {})
        if "minimum" not in seed or "maximum" not in seed:
            return None
        return int(seed["minimum"]), int(seed["maximum"])

    @property
    def label(self) -> str:
        return f"{self.name} ({self.air})"

    @property
    def takes_seed(self) -> bool:
        return "seed" in self.schema.get("properties", {})

    def check_request(self, request: Mapping[str, Any], *, frames: bool = True
                      ) -> list[Violation]:
        """Every schema violation and rule break of `request`, warnings included; with
        `frames`, also every frame image in a position the model does not take."""
        found = self.shapes.check(request, self._check)
        wrong = self.frame_violations(request) if frames else []
        if wrong:  # the schema's own complaints about those images say less
            found = [v for v in found if v.path[:2] != ("inputs", "frameImages")]
        return wrong + found

    def frame_violations(self, request: Mapping[str, Any]) -> list[Violation]:
        """A frame image in a position the model does not take, or two in one position."""
        out: list[Violation] = []
        seen: set[str] = set()
        positions = frame_positions(request)
        if len(positions) > 2:  # the schema's maxItems says what is wrong
            return out
        for i, position in enumerate(positions):
            if position not in self.frames:
                message = (f"{self.label} takes {describe_frames(self.frames)}, "
                           f"not a {position} frame")
            elif position in seen:
                message = f"two frame images for the {position} frame"
            else:
                seen.add(position)
                continue
            out.append(Violation(("inputs", "frameImages", i), message,
                                 "unsupportedFrameImages", "inputs.frameImages"))
        return out

    def _check(self, request: Mapping[str, Any]) -> list[Violation]:
        errors = list(self.validator.iter_errors(request))
        # A value of the wrong type breaks its enum or range too; report the type alone.
        mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
        found = [self._own_words(translate_error(e)) for e in errors
                 if e.validator == "type" or tuple(e.absolute_path) not in mistyped]
        for rule in self.rules:
            if rule.when.is_valid(request):
                found.append(_rule_violation(rule, request))
        return found

    def _own_words(self, v: Violation) -> Violation:
        """A field the model does not have: say so, with why or the closest field it has."""
        if v.code != "unsupportedParameter":
            return v
        hint = self.absent.get(v.parameter) or v.hint or self._fields_hint(v.path[:-1])
        return replace(v, message=f"{self.air} has no parameter {v.path[-1]!r}", hint=hint)

    def _fields_hint(self, path: JsonPath) -> str | None:
        node: Any = self.schema
        for part in path:
            node = node.get("properties", {}).get(part, {}) if isinstance(node, dict) else {}
        names = list(node.get("properties", {})) if isinstance(node, dict) else []
        if not names or len(names) > 8:
            return None
        where = ".".join(str(p) for p in path) or "the request"
        return f"{self.name} takes, in {where}: {', '.join(names)}"

    def resolution(self, request: Mapping[str, Any]) -> str:
        """The resolution class (e.g. '720p') of a request, from resolution or width x height."""
        if "width" in request and "height" in request:
            w, h = request["width"], request["height"]
            found = self._classes.get((w, h)) or self._classes.get(min(int(w), int(h)))
            if found:
                return found
        return str(request.get("resolution", self.sizes["default"]))

    @cached_property
    def _classes(self) -> dict[tuple[int, int] | int, str]:
        """Resolution class by size in the table, and by a size's short side ('720p' for 720)."""
        classes: dict[tuple[int, int] | int, str] = {}
        for name, pairs in self.sizes["table"].items():
            for w, h in pairs:
                classes.setdefault((w, h), str(name))
                classes.setdefault(min(w, h), str(name))
        return classes

    def output_size(
        self, request: Mapping[str, Any], image_size: tuple[int, int] | None = None
    ) -> tuple[int, int]:
        """Width x height the model renders: explicit size, else the resolution's row at the
        aspect ratio closest to the input image (16:9 without one)."""
        if "width" in request and "height" in request:
            return int(request["width"]), int(request["height"])
        row = self.sizes["table"][self.resolution(request)]
        if image_size is None:
            return int(row[0][0]), int(row[0][1])
        aspect = image_size[0] / image_size[1]
        w, h = min(row, key=lambda p: abs(p[0] / p[1] - aspect))
        return int(w), int(h)

    def duration(self, request: Mapping[str, Any]) -> float:
        return float(request.get("duration", self.default_duration))

    def estimate_cost(self, request: Mapping[str, Any]) -> Cost:
        """Price of one request (all its results) from the published prices."""
        clip = self.price_list.clip(self.resolution(request), self.duration(request),
                                    self.sound.is_on(request))
        count = int(request.get("numberResults", 1))
        return Cost(round(clip.amount * count, 6), clip.estimated, clip.known)


class Catalog:
    """Every model spec found in a schemas folder, by AIR id."""

    def __init__(self, specs: Sequence[ModelSpec]) -> None:
        self._specs = {s.air: s for s in specs}

    @property
    def ids(self) -> list[str]:
        return sorted(self._specs)

    def find(self, air: str) -> ModelSpec | None:
        return self._specs.get(air)

    def get(self, air: str) -> ModelSpec:
        spec = self._specs.get(air)
        if spec is None:
            raise UsageError(f"unknown model {air!r}", hint=closest_hint(air, self.ids))
        return spec


@cache
def load_catalog(folder: Path | None = None) -> Catalog:
    """Read every `*.json` model spec under `schemas/models/`."""
    root = (folder or schemas_dir()) / "models"
    return Catalog([load_model_spec(p) for p in sorted(root.glob("*.json"))])


def load_model_spec(path: Path) -> ModelSpec:
    # Checked against the JSON Schema metaschema by the tests, not at every start (half a
    # second for the twelve files): these files ship with the package.
    schema = json.loads(path.read_text(encoding="utf-8"))
    ext = schema["x-storyreel"]
    rules = tuple(_make_rule(r) for r in ext.get("rules", []))
    return ModelSpec(
        air=ext["model"],
        name=ext.get("name", ext["model"]),
        schema=schema,
        fps=int(ext.get("fps", 24)),
        default_duration=float(ext.get("defaultDuration", 5)),
        sent=ext.get("sent", {}),
        sizes=ext["sizes"],
        prices=ext.get("prices") or {},
        rules=rules,
        validator=Draft202012Validator(schema),
        shapes=RequestShapes(schema),
        frames=read_frames(ext.get("frames")),
        sound=Sound.read(ext.get("audio")),
        price_list=PriceList.read(ext.get("prices")),
        absent={str(k): str(v) for k, v in (ext.get("absent") or {}).items()},
        images=_image_limits(ext["images"]) if "images" in ext else None,
    )


def _image_limits(raw: Mapping[str, Any]) -> ImageLimits:
    return ImageLimits(int(raw["minSide"]), int(raw["maxSide"]), int(raw["maxBytes"]),
                       tuple(str(f).upper() for f in raw["formats"]))


def _make_rule(raw: Mapping[str, Any]) -> Rule:
    return Rule(
        id=raw["id"],
        warning=raw.get("level") == "warning",
        code=raw["code"],
        parameter=raw["parameter"],
        message=raw["message"],
        hint=raw.get("hint"),
        when=Draft202012Validator(raw["when"]),
    )


def _rule_violation(rule: Rule, request: Mapping[str, Any]) -> Violation:
    fields = {k: v for k, v in request.items() if isinstance(v, (int, float, str))}
    path: JsonPath = tuple(rule.parameter.split("."))
    return Violation(
        path=path,
        message=rule.message.format_map(_Blank(fields)),
        code=rule.code,
        parameter=rule.parameter,
        warning=rule.warning,
        hint=rule.hint,
    )


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"
