"""Request shapes: `check_request` remembered by the shape of a request.

Input: a model's request schema, then requests and the check to run on each.
Output: the check's violations, computed once per shape (see `RequestShapes`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .violations import Violation


class RequestShapes:
    """`check_request` remembered by the shape of a request.

    A plan checks one request per shot, and most differ only in free fields (prompts, seeds)
    whose schema is a plain type with bounds or a pattern and which nothing else in the
    schema or its rules reads. Such a field, when its own bounds hold, cannot change the
    outcome, so it is swapped for a valid value seen before: requests that differ only there
    share one check.
    """

    LIMIT = 4096  # remembered shapes; a long-lived process forgets them all past this
    _SIMPLE = frozenset({"type", "minLength", "maxLength", "minimum", "maximum", "pattern",
                         "description", "default", "title", "examples", "x-message"})
    _TYPES = {"string": (str,), "integer": (int,), "number": (int, float)}

    def __init__(self, schema: Mapping[str, Any]) -> None:
        rest = json.dumps({k: v for k, v in schema.items() if k not in ("properties", "required")})
        self.free = {name: sub for name, sub in schema.get("properties", {}).items()
                     if isinstance(sub, dict) and set(sub) <= self._SIMPLE
                     and sub.get("type") in self._TYPES
                     and f'"{name}"' not in rest and f"{{{name}}}" not in rest}
        self.stand_in: dict[str, Any] = {}
        self.memo: dict[str, tuple[Violation, ...]] = {}

    def check(self, request: Mapping[str, Any],
              run: Callable[[Mapping[str, Any]], list[Violation]]) -> list[Violation]:
        shaped = dict(request)
        for name, sub in self.free.items():
            if name in shaped and _holds(sub, shaped[name]):
                shaped[name] = self.stand_in.setdefault(name, shaped[name])
        try:
            key = json.dumps(shaped, separators=(",", ":"))  # same order, same shape
        except (TypeError, ValueError):  # not JSON: check it as it is
            return run(request)
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) >= self.LIMIT:
                self.memo.clear()
            found = self.memo[key] = tuple(run(shaped))
        return list(found)


def _holds(sub: Mapping[str, Any], value: Any) -> bool:
    """Whether `value` meets a simple schema (type, bounds, pattern) as jsonschema reads it."""
    if isinstance(value, bool) or not isinstance(value, RequestShapes._TYPES[sub["type"]]):
        return False
    if isinstance(value, str):
        return (sub.get("minLength", 0) <= len(value) <= sub.get("maxLength", len(value))
                and ("pattern" not in sub or re.search(sub["pattern"], value) is not None))
    return bool(sub.get("minimum", value) <= value <= sub.get("maximum", value))
