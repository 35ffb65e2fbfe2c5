"""Templates stage: Storyboard + variant -> shots with merged, rendered request fields.

Defaults are deep-merged (shot > scene defaults > storyboard defaults) and every string is
rendered by Jinja in a sandbox with strict undefined names, within the size and work caps of
`sandbox`. A string that is a single
`{{ expression }}` keeps the expression's native type, so `seed: "{{ seed }}"` stays a number.
Variants form a matrix (minus `exclude`); each expanded shot gets a stable, readable key.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from ..errors import Problem
from .load import Path_
from .model import Layer, ShotDef, Storyboard
from .sandbox import MAX_SIZE, Budget, GuardedEnvironment, TemplateLimit
from .violations import closest_hint

GLUE = ("from", "pick", "model", "continuity", "caption")  # not sent: storyreel's own
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}\s*$", re.S)

Variant = tuple[tuple[str, Any], ...]
Issue = tuple[Path_, str, str | None]  # where, what, hint
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


@dataclass(frozen=True)
class ExpandedShot:
    """One shot in one variant, with its templates rendered."""

    id: str
    key: str
    variant: Variant
    fields: Mapping[str, Any]  # merged, rendered request fields (glue removed)
    glue: Mapping[str, Any]  # rendered from / pick / model / continuity / caption
    source: ShotDef
    failed: frozenset[str] = frozenset()  # glue whose template is wrong (and reported)
    file_model: Any = None  # the storyboard's `model`, rendered for this variant

    def locate(self, path: Sequence[str | int]) -> Layer:
        """The layer (shot, scene defaults or file defaults) that wrote `path`."""
        for layer in (self.source.layer, *reversed(self.source.defaults)):
            if _has_path(layer.fields, path):
                return layer
        return self.source.layer


def _has_path(data: Any, path: Sequence[str | int]) -> bool:
    for part in path:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    return True


def shot_key(shot_id: str, variant: Variant) -> str:
    if not variant:
        return shot_id
    return f"{shot_id}[{','.join(f'{k}={v}' for k, v in variant)}]"


MAX_EXPANDED = 100_000  # shots times variant combinations


def iter_variants(board: Storyboard) -> tuple[list[Variant], list[Problem]]:
    """Every combination of the variant matrix, minus the excluded ones."""
    names = [name for name, _ in board.variants]
    problems = [board.doc.problem(("variants", "exclude", i, k), f"exclude names an unknown "
                                  f"variant {k!r}", hint=closest_hint(k, names), key=True)
                for i, ex in enumerate(board.exclude) for k in ex if k not in names]
    count = math.prod(len(values) for _, values in board.variants)
    if count * max(len(board.shots), 1) > MAX_EXPANDED:
        problems.append(board.doc.problem(
            ("variants",), f"{count:,} variant combinations of {len(board.shots):,} shots "
            f"make {count * len(board.shots):,} shots; a storyboard makes at most "
            f"{MAX_EXPANDED:,}", hint="split the storyboard, or use fewer variant values",
            key=True))
        return [], problems
    combos = [tuple(zip(names, values))
              for values in itertools.product(*(vals for _, vals in board.variants))]
    kept = [c for c in combos if not any(_matches(c, ex) for ex in board.exclude)]
    if board.variants and not kept:
        problems.append(board.doc.problem(("variants", "exclude"), "exclude removes every "
                                          "variant", hint="drop an entry of exclude", key=True))
    return kept, problems


def _matches(combo: Variant, exclude: Mapping[str, Any]) -> bool:
    values = dict(combo)
    return all(k in values and values[k] == v for k, v in exclude.items())


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; lists and scalars are replaced."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if _is_mapping(old) and _is_mapping(value):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # dict first: the abstract Mapping check is several times slower, per value of every shot
    return isinstance(value, dict) or isinstance(value, Mapping)


class Substitution:
    """A template that only inserts variables by name ('a {{ sea }} sea at {{ hour }}').

    Most prompts are like that, each one different, and compiling each with Jinja costs about
    a millisecond; this renders them as Jinja would (str() of each value between the literal
    parts; the value itself for a lone name), without compiling.
    """

    _NAME = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
    _NOT_NAMES = frozenset({"true", "false", "none", "True", "False", "None", "and", "or",
                            "not", "in", "is", "if", "else"})

    def __init__(self, literals: list[str], names: list[str]) -> None:
        self.literals = literals
        self.names = names
        self.native = len(names) == 1 and not literals[0].strip() and not literals[1].strip()

    @classmethod
    def parse(cls, text: str) -> Substitution | None:
        """The substitution for `text`, or None when it needs Jinja."""
        parts = cls._NAME.split(text)
        literals, names = parts[0::2], parts[1::2]
        if not names or "\r" in text or any(n in cls._NOT_NAMES for n in names):
            return None
        if any("{{" in t or "{%" in t or "{#" in t for t in literals):
            return None
        return cls(literals, names)

    def apply(self, context: Mapping[str, Any]) -> Any:
        """The rendered value, or `Substitution` itself when a name is not a variable (a
        Jinja global, or undefined): Jinja then renders it, or says what is wrong."""
        if any(n not in context for n in self.names):
            return Substitution
        if self.native:
            return context[self.names[0]]
        out = [self.literals[0]]
        size = len(out[0])
        for name, literal in zip(self.names, self.literals[1:]):
            value = context[name]
            text = value if isinstance(value, str) else str(value)
            size += len(text) + len(literal)
            if size > MAX_SIZE:
                raise TemplateLimit(f"the rendered text would be longer than {MAX_SIZE:,} "
                                    "characters")
            out.append(text)
            out.append(literal)
        return "".join(out)


class Skipped(Exception):
    """Not rendered: the templates of this storyboard have spent their steps already (that
    is reported once, where it happened)."""


class Renderer:
    """Sandboxed Jinja with strict undefined names; compiled templates are cached. One
    renderer serves one storyboard: its `budget` is that storyboard's steps."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self.env = GuardedEnvironment(self.budget, undefined=StrictUndefined,
                                      autoescape=False, keep_trailing_newline=True)
        self._cache: dict[str, Any] = {}
        self._plain: dict[str, Substitution | None] = {}

    def render(self, text: str, context: Mapping[str, Any]) -> Any:
        if "{" not in text:
            return text
        if self.budget.spent:
            raise Skipped()
        if text not in self._plain:
            self._plain[text] = Substitution.parse(text)
        plain = self._plain[text]
        if plain is not None:
            result = plain.apply(context)
            if result is not Substitution:
                return result
        self.budget.charge()
        compiled = self._cache.get(text)
        if compiled is None:
            compiled = self._cache[text] = self._compile(text)
        if not callable(compiled):
            return compiled.render(context)  # the output stream is capped as it is joined
        return self.budget.made(compiled(**context), "the value")

    def _compile(self, text: str) -> Any:
        single = _SINGLE.match(text)
        if single and "{%" not in text:
            return self.env.compile_expression(single.group("expr"), undefined_to_none=False)
        return self.env.from_string(text)


def render_value(renderer: Renderer, value: Any, context: Mapping[str, Any], path: Path_,
                 errors: list[Issue]) -> Any:
    """Render every string in `value`; errors are collected as (path, message, hint)."""
    if isinstance(value, str):
        if "{" not in value:
            return value
        try:
            result = renderer.render(value, context)
        except Skipped:
            return value
        except Exception as exc:  # noqa: BLE001 - a template is the user's code; so are its errors
            errors.append((path, _template_message(exc), _undefined_hint(exc, context)))
            return value
        if isinstance(result, StrictUndefined):
            try:  # a single expression hands back the undefined value; using it says why
                str(result)
            except Exception as exc:  # noqa: BLE001 - UndefinedError or SecurityError
                errors.append((path, _template_message(exc), _undefined_hint(exc, context)))
            return value
        return result
    if isinstance(value, (int, float)) or value is None:
        return value
    if _is_mapping(value):
        return {k: render_value(renderer, v, context, path + (k,), errors)
                for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(renderer, v, context, path + (i,), errors)
                for i, v in enumerate(value)]
    return value


def _undefined_hint(exc: Exception, context: Mapping[str, Any]) -> str | None:
    """'did you mean ...?' among the defined names, for an undefined name."""
    found = _UNDEFINED.match(exc.message or "") if isinstance(exc, UndefinedError) else None
    return _name_hint(found.group(1), context) if found else None


def _name_hint(name: str, context: Mapping[str, Any]) -> str:
    return closest_hint(name, list(context)) or f"define {name} under vars: (or as a variant)"


def _template_message(exc: Exception) -> str:
    if isinstance(exc, UndefinedError):
        return f"template error: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"template error: not allowed in the sandbox: {exc}"
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    if isinstance(exc, TemplateError):
        return f"template error: {exc}"
    return f"template error: {type(exc).__name__}: {exc}"


def expand_shots(board: Storyboard, variants: Sequence[Variant],
                 renderer: Renderer | None = None) -> tuple[list[ExpandedShot], list[Problem]]:
    """Every shot of every variant, merged and rendered."""
    renderer = renderer or Renderer()
    shots: list[ExpandedShot] = []
    problems: list[Problem] = []
    for variant in variants or [()]:
        model, problems_of_model = render_model(board, variant, renderer)
        problems.extend(problems_of_model)
        for sdef in board.shots:
            shot, found = _expand_one(board, sdef, variant, renderer, model)
            shots.append(shot)
            problems.extend(found)
    return shots, list(dict.fromkeys(problems))


_FAILED = object()  # a template that did not render (its problem is reported)


def render_model(board: Storyboard, variant: Variant, renderer: Renderer
                 ) -> tuple[Any, list[Problem]]:
    """The storyboard's `model` for one variant (templated like every string)."""
    if board.model is None:
        return None, []
    errors: list[Issue] = []
    context = {**board.vars, **dict(variant)}
    model = render_value(renderer, board.model, context, ("model",), errors)
    problems = [board.doc.problem(p, f"model: {m}", hint=h) for p, m, h in errors]
    return (_FAILED if problems else model), problems


def _expand_one(board: Storyboard, sdef: ShotDef, variant: Variant, renderer: Renderer,
                model: Any) -> tuple[ExpandedShot, list[Problem]]:
    merged: dict[str, Any] = {}
    for layer in (*sdef.defaults, sdef.layer):
        merged = deep_merge(merged, layer.fields)
    context = {**board.vars, **dict(variant), "shot": {"id": sdef.id}}
    errors: list[Issue] = []
    rendered = render_value(renderer, merged, context, (), errors)
    failed = {path[0] for path, _, _ in errors if path and path[0] in GLUE}
    glue = {k: rendered.pop(k) for k in GLUE if k in rendered and k not in failed}
    for key in failed:
        rendered.pop(key, None)
    if model is _FAILED and "model" not in merged and "model" not in dict(variant):
        failed.add("model")  # the storyboard's model is this shot's, and it did not render
    shot = ExpandedShot(sdef.id, shot_key(sdef.id, variant), variant, rendered, glue, sdef,
                        frozenset(failed), None if model is _FAILED else model)
    problems = [_located(shot, path, message, hint) for path, message, hint in errors]
    return shot, problems


def _located(shot: ExpandedShot, path: Path_, message: str, hint: str | None) -> Problem:
    layer = shot.locate(path)
    label = ".".join(str(p) for p in path)
    return layer.doc.problem(layer.path + path, f"shots.{shot.id}.{label}: {message}", hint=hint)


def render_film_strings(board: Storyboard, variant: Variant, renderer: Renderer
                        ) -> tuple[dict[str, Any], list[Problem]]:
    """The film block rendered for one variant."""
    raw = board.doc.data.get("film") or {}
    context = {**board.vars, **dict(variant)}
    errors: list[Issue] = []
    film = render_value(renderer, raw, context, ("film",), errors)
    return film, [board.doc.problem(p, f"{'.'.join(map(str, p))}: {m}", hint=h)
                  for p, m, h in errors]
