"""Schema stage: Document -> every violation of the storyboard schema, as located problems.

The storyboard schema (`schemas/storyboard.schema.json`) checks the file's structure; each
shot's request is checked later, after defaults and templates, against its model's schema
(`check_request_fields`). JSON Schema is the one validator: this module only translates its
errors into `Problem`s that point at the YAML.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..errors import Location, Problem
from .catalog import JsonPath, ModelSpec, Violation, schemas_dir, translate_error
from .load import Document


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
    if not isinstance(doc.data, dict):
        return [_not_a_mapping(doc)]
    errors = _validator(ref).iter_errors(doc.data)
    return [violation_problem(doc, (), translate_error(e), e) for e in errors]


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
