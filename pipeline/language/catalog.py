"""The model catalog: request schemas, cross-field rules, sizes and prices, as data.

Input: the JSON files under `schemas/models/` (one per Runware model AIR id).
Output: `ModelSpec` objects that check a request (`check_request`), estimate its cost
(`prices`), resolve its output size, and say what it takes and makes (`capabilities`). The
planner and the simulator both use this, so the simulator refuses exactly what the planner
refuses. Adding a model means adding a file, not code.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..errors import UsageError
from .capabilities import Sound, describe_frames, frame_positions, read_frames
from .prices import Cost, PriceList
from .shapes import RequestShapes

JsonPath = tuple[str | int, ...]


def schemas_dir() -> Path:
    """The schemas folder: inside the installed package, or at the top of a source checkout."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "schemas"
    return packaged if packaged.is_dir() else package.parent / "schemas"


@dataclass(frozen=True)
class Violation:
    """One way a request breaks its model's schema or rules."""

    path: JsonPath
    message: str
    code: str
    parameter: str
    warning: bool = False
    hint: str | None = None
    allowed: tuple[Any, ...] | None = None


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
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
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
    )


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


def translate_error(error: ValidationError) -> Violation:
    """Translate one jsonschema error into Runware's terms (code, parameter, allowed values).

    A subschema may carry an `x-message`: the message to show when it fails as a whole.
    """
    path: JsonPath = tuple(error.absolute_path)
    validator = str(error.validator)
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if custom and validator in ("anyOf", "oneOf", "not", "false", "pattern", "type"):
        return Violation(path, str(custom), f"invalid{_cap(_last_key(path))}", _dotted(path))
    if validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else ""
        path = path + (missing,)
        return Violation(path, f"{missing} is required", f"missing{_cap(missing)}",
                         _dotted(path))
    if validator == "additionalProperties":
        extra = _extra_keys(error)
        known = list(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        key = extra[0] if extra else "?"
        return Violation(path + (key,), f"unknown parameter {key!r}", "unsupportedParameter",
                         _dotted(path + (key,)), hint=closest_hint(key, known))
    if validator == "anyOf" and error.context:
        deeper = [e for e in error.context if e.validator != "type"]
        if deeper:
            return translate_error(deeper[0])
    param = _dotted(path)
    last = _last_key(path)
    if validator == "type":
        return Violation(path, _plain_message(error), f"invalid{_cap(last)}", param,
                         hint=_number_hint(error, error.validator_value))
    if validator == "const":
        value = error.validator_value
        return Violation(path, f"must be {value!r}, not {error.instance!r}",
                         f"unsupported{_cap(last)}", param, hint=_number_hint(error, value),
                         allowed=(value,))
    if validator == "enum":
        choices: Any = error.validator_value
        allowed = tuple(choices)
        return Violation(path, f"{error.instance!r} is not one of {_show(allowed)}",
                         f"unsupported{_cap(last)}", param,
                         hint=closest_hint(error.instance, allowed), allowed=allowed)
    return Violation(path, _plain_message(error), f"invalid{_cap(last)}", param)


def _plain_message(error: ValidationError) -> str:
    v, value = str(error.validator), error.validator_value
    instance: Any = error.instance
    if v == "minLength":
        return f"must be at least {value} characters long (got {len(instance)})"
    if v == "maxLength":
        return f"must be at most {value} characters long (got {len(instance)})"
    if v in ("minimum", "maximum"):
        word = "at least" if v == "minimum" else "at most"
        return f"{error.instance!r} must be {word} {value}"
    if v in ("minItems", "maxItems"):
        word = "at least" if v == "minItems" else "at most"
        return f"must have {word} {value} item{'s' if value != 1 else ''}"
    if v == "type" and error.instance is None:
        return f"is empty; expected {_KINDS.get(str(value), value)}"
    if v == "type":
        return f"{error.instance!r} is not of type {value!r}"
    if v == "minProperties":
        return "must not be empty" if value == 1 else f"must have at least {value} entries"
    if v == "anyOf":
        return "must be an image (URL, UUID, data URI or base64) or {image, frame}"
    return error.message


_KINDS = {"object": "a mapping", "array": "a list", "string": "a text", "integer": "an integer",
          "number": "a number", "boolean": "true or false"}
_NUMBER = re.compile(r"^\s*(-?[0-9]+(?:\.[0-9]+)?)")


def _number_hint(error: ValidationError, expected: Any) -> str | None:
    """For '5' or '1280px' where a number belongs: the number, written bare."""
    wants_number = expected in ("integer", "number") or (
        isinstance(expected, (int, float)) and not isinstance(expected, bool))
    if not wants_number or not isinstance(error.instance, str):
        return None
    found = _NUMBER.match(error.instance)
    return f"write the number without quotes or units: {found.group(1)}" if found else None


def _extra_keys(error: ValidationError) -> list[str]:
    props = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    inst = error.instance if isinstance(error.instance, dict) else {}
    return sorted(k for k in inst if k not in props)


def _show(values: Sequence[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:25])
    return shown + (", ..." if len(values) > 25 else "")


def _last_key(path: JsonPath) -> str:
    return next((str(p) for p in reversed(path) if isinstance(p, str)), "request")


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


def _dotted(path: JsonPath) -> str:
    return ".".join(str(p) for p in path)


def closest_hint(value: Any, choices: Sequence[Any]) -> str | None:
    """'did you mean ...?' for the closest choice, when one is close enough."""
    if not isinstance(value, str):
        numbers = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and numbers:
            return f"did you mean {min(numbers, key=lambda c: abs(c - value))!r}?"
        return None
    texts = [c for c in choices if isinstance(c, str)]
    norm = value.replace("-", "_").replace(" ", "_").lower()
    for c in texts:
        if c.replace("-", "_").replace(" ", "_").lower() == norm:
            return f"did you mean {c!r}?"
    close = difflib.get_close_matches(value, texts, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
