"""Violations: what JSON Schema says is wrong, in Runware's terms.

Input: jsonschema's `ValidationError`s, from a model's request schema or the storyboard's.
Output: `Violation`s (path, message, Runware's error code and parameter, a hint, the allowed
values), and `closest_hint`, the "did you mean ...?" every stage offers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError

JsonPath = tuple[str | int, ...]


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
    # A ratio of 0.6 needs the shorter text at least 3/7 of the longer: skip the others.
    texts = [c for c in texts if 7 * min(len(c), len(value)) >= 3 * max(len(c), len(value))]
    close = difflib.get_close_matches(value, texts, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
