"""Schema stage: Document -> every violation of the storyboard schema, as located problems.

The storyboard schema (`schemas/storyboard.schema.json`) checks the file's structure; each
shot's request is checked later, after defaults and templates, against its model's schema
(`check_request_fields`). JSON Schema is the one validator: this module only translates its
errors into `Problem`s that point at the YAML.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..errors import Location, Problem, StoryboardError
from .catalog import ModelSpec, schemas_dir
from .load import Document
from .violations import JsonPath, Violation, translate_error


@cache
def storyboard_schema() -> dict[str, Any]:
    text = (schemas_dir() / "storyboard.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(ref: str) -> Draft202012Validator:
    schema = storyboard_schema()
    target = schema if ref == "#" else schema["$defs"][ref.removeprefix("#/$defs/")]
    # the editor hints (model ids, each model's fields) are for editors: the request fields
    # are checked against their model after defaults and templates (see editor.py)
    defs = {k: True if k.startswith("editor") else v for k, v in schema["$defs"].items()}
    return Draft202012Validator(_inline_refs(target, defs))


def _inline_refs(node: Any, defs: Mapping[str, Any]) -> Any:
    """`node` with every `#/$defs/...` reference replaced by its target. The storyboard schema
    is not recursive, and resolving a reference for each shot was a quarter of the check."""
    if isinstance(node, list):
        return [_inline_refs(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    rest = {k: _inline_refs(v, defs) for k, v in node.items() if k not in ("$ref", "$defs")}
    if any(v is True for v in rest.get("anyOf", ())):  # `true` (an editor hint) asks nothing
        del rest["anyOf"]
    if "allOf" in rest:
        rest["allOf"] = [v for v in rest["allOf"] if v is not True]
        if not rest["allOf"]:
            del rest["allOf"]
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return {**rest, "$ref": ref} if ref is not None else rest
    target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
    return {"allOf": [target], **rest} if rest else target


def check_document(doc: Document, *, ref: str = "#") -> list[Problem]:
    """Every problem of a storyboard (or, with ref '#/$defs/include', an included file)."""
    return [found.problem for found in find_violations(doc, ref=ref)]


@dataclass(frozen=True)
class Found:
    """A schema violation: where in the data (`path`), which keyword, and its problem."""

    path: JsonPath
    keyword: str
    problem: Problem


def find_violations(doc: Document, *, ref: str = "#") -> list[Found]:
    """`check_document`'s problems, each with the path and keyword it comes from."""
    if not isinstance(doc.data, dict):
        return [Found((), "type", _not_a_mapping(doc))]
    found = []
    for error in _validator(ref).iter_errors(doc.data):
        violation = translate_error(error)
        found.append(Found(violation.path, str(error.validator),
                           violation_problem(doc, (), violation, error)))
    return found


def _not_a_mapping(doc: Document) -> Problem:
    """One clear problem instead of a schema dump when the file is empty or not a mapping."""
    what = "empty" if doc.data is None else f"a {'list' if isinstance(doc.data, list) else 'value'}"
    return doc.problem((), f"the file is {what}; a storyboard is a mapping of keys",
                       hint="start with 'version: 1', then 'model:' and 'shots:'")


def violation_problem(doc: Document, base: JsonPath, v: Violation,
                      error: ValidationError | None = None) -> Problem:
    """A located Problem for a violation at `base + v.path` in `doc`."""
    full = base + v.path
    on_key = v.code == "unsupportedParameter" or (error is not None and _forbidden(error))
    if error is not None and "propertyNames" in error.absolute_schema_path:
        # jsonschema reports a bad key at its parent mapping; point at the key itself.
        full, on_key = full + (str(error.instance),), True
    label = ".".join(str(p) for p in full) or "storyboard"
    return doc.problem(full, f"{label}: {v.message}", hint=v.hint, key=on_key, warning=v.warning)


def _forbidden(error: ValidationError) -> bool:
    """A key that may never be written there (`false` or `not: {}`): point at the key."""
    return error.validator == "false" or (error.validator == "not" and error.validator_value == {})


Locate = Callable[[JsonPath, bool], tuple[Document, JsonPath]]


def check_request_fields(spec: ModelSpec, request: dict[str, Any], label: str,
                         locate: Locate) -> list[Problem]:
    """Check one resolved request against its model; `locate` maps a request path to the
    document and path where that field was written (the shot, a scene's or the file's
    defaults)."""
    problems = []
    for v in spec.check_request(request, frames=False):  # the plan checks frames (framing)
        doc, where = locate(v.path, v.code == "unsupportedParameter")
        key = v.code == "unsupportedParameter"
        loc: Location = doc.where(where, key=key)
        dotted = ".".join(str(p) for p in v.path)
        message = f"{label}.{dotted}: {v.message}" if dotted else f"{label}: {v.message}"
        problems.append(Problem(message, loc, v.hint, doc.source_line(loc), v.warning))
    return problems


# What later stages can still run on


_TOP = frozenset({"version", "name", "model", "vars", "defaults", "variants", "shots", "scenes",
                  "film", "concurrency"})
_CUT_TOP = frozenset({"version", "name", "concurrency"})
_CUT_SHOT = frozenset({"pick", "from", "inputs"})  # later stages read them; cut, they default
_CUT_DEFAULTS = frozenset({"from", "pick", "inputs"})


def set_aside(doc: Document, *, ref: str = "#") -> list[Problem]:
    """The schema's problems, with the values they are about taken out of `doc.data` so that
    the later stages can run on the rest and report their own problems too. Raises
    StoryboardError when the structure itself is wrong (the later stages would only
    stumble over it)."""
    found = find_violations(doc, ref=ref)
    cuts = [_cut(f.path, f.keyword) for f in found]
    if any(cut is None for cut in cuts):
        raise StoryboardError([f.problem for f in found])
    for cut in cuts:
        if cut:
            _remove(doc.data, cut)
    return [f.problem for f in found]


def _cut(path: JsonPath, keyword: str) -> JsonPath | None:
    """What to take out for a violation at `path`: a path, () for nothing, None when the
    later stages cannot run."""
    shot = _depth(path, "shots")
    if shot is not None and keyword == "pattern" and len(path) == shot - 1:
        return ()  # a shot id written badly (propertyNames): the id still names the shot
    if len(path) == 1:
        return path if path[0] in _CUT_TOP or path[0] not in _TOP else None
    if path[:1] == ("film",):
        return path[:2]
    if shot is not None and len(path) > shot:
        key = path[shot]
        if key in _CUT_SHOT:
            return path[:shot + 1]
        return () if key in ("model", "taskUUID", "taskType") else None
    defaults = _depth(path, "defaults")
    if defaults is not None and len(path) > defaults and path[defaults] in _CUT_DEFAULTS:
        return path[:defaults + 1]
    return None


def _depth(path: JsonPath, name: str) -> int | None:
    """Where the keys under `shots` (plus the shot id) or `defaults` start in `path`, at
    the top of a file or in a scene."""
    extra = 1 if name == "shots" else 0
    if path[:1] == (name,):
        return 1 + extra
    if path[:1] == ("scenes",) and path[2:3] == (name,):
        return 3 + extra
    return None


def _remove(data: Any, path: JsonPath) -> None:
    for step in path[:-1]:
        if isinstance(data, dict) and step in data:
            data = data[step]
        elif isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data):
            data = data[step]
        else:
            return
    if isinstance(data, dict):
        data.pop(path[-1], None)
