"""Sandbox: Jinja's sandboxed environment, with a cap on what a template may make.

In: template text, from any string of a storyboard. Out: its compiled template, whose
rendering is bounded two ways, so that no storyboard can exhaust the machine:

- no value a template makes may be larger than `MAX_SIZE` (characters of text; items of a
  list, counted through nested lists): `"x" * 10**9`, `"%9999999999s" % x`,
  `x|center(10**9)`, `"-".join(range(10**5))` with a long separator, `2 ** 10**10` ... are
  refused before they are made, from their arguments; other results are measured;
- the templates of one storyboard together may take at most `MAX_STEPS` steps (a loop
  iteration, a call, an operator, a filter; making or printing text costs a step per 64
  characters), so nested loops, recursive macros and doubling a string in a loop stop.

`budget` holds the caps and the checks made from an operation's arguments. Here they are
wired in: the operators are intercepted with the sandbox's `intercepted_binops` and
`call_binop`, calls with `call`, filters by wrapping each, and the rest by rewriting the
template before it is compiled: every `for` loop iterates through a counter, every `~` and
every printed value is measured, and the output stream (`concat`) stops at `MAX_SIZE`. A
refusal is a `TemplateLimit`, reported at the template's line like any other template error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

from .budget import (
    MAX_SIZE,
    MAX_STEPS,
    Budget,
    TemplateLimit,
    check_binop,
    check_method,
    format_bound,
    guarded_filter,
)

__all__ = ["MAX_SIZE", "MAX_STEPS", "Budget", "GuardedEnvironment", "TemplateLimit"]
MACRO_STEPS = 20  # a call of a macro or of a recursive loop costs about twenty iterations
_NUMBERS = frozenset({int, float})


class GuardedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox plus the caps of this module's docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, budget: Budget, **options: Any) -> None:
        super().__init__(**options)
        self.budget = budget
        self.code_generator_class = _MeteredGenerator
        self.globals.pop("lipsum", None)  # paragraphs of filler text on demand
        self.filters = {name: guarded_filter(budget, name, func)
                        for name, func in self.filters.items()}
        self.filters.update(_counted=self._counted, _concat=self._concat_values,
                            _printed=self._printed)

    def concat(self, pieces: Iterable[str]) -> str:
        """The output stream: joined as it comes, and stopped past the cap."""
        out: list[str] = []
        size = 0
        for piece in pieces:
            size += len(piece)
            self.budget.allow(size, "the rendered text")
            out.append(piece)
        return "".join(out)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.charge()
        if operator == "+" and type(left) in _NUMBERS and type(right) in _NUMBERS:
            return left + right  # a seed plus an offset: nothing grows here
        check_binop(self.budget, operator, left, right)
        return self.budget.made(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any,  # noqa: N805 - Jinja's own
             **kwargs: Any) -> Any:
        __self.budget.charge(MACRO_STEPS if isinstance(__obj, Macro | LoopContext) else 1)
        check_method(__self.budget, __obj, args, kwargs)
        return __self.budget.made(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        inner = super().wrap_str_format(value)
        if inner is None:
            return None
        fmt, budget = value.__self__, self.budget
        is_map = value.__name__ == "format_map"

        @functools.wraps(inner)
        def checked(*args: Any, **kwargs: Any) -> str:
            named = args[0] if is_map and args and isinstance(args[0], Mapping) else kwargs
            budget.allow(format_bound(fmt, () if is_map else args, named, budget.size),
                         "the formatted text")
            return inner(*args, **kwargs)

        return checked

    def _counted(self, items: Any) -> Iterator[Any]:
        for item in items:
            self.budget.charge()
            yield item

    def _concat_values(self, values: list[Any]) -> str:
        texts = [str(v) for v in values]
        self.budget.allow(sum(len(t) for t in texts), "the joined text")
        joined = "".join(texts)
        self.budget.made(joined, "the joined text")
        return joined

    def _printed(self, value: Any) -> str:
        text = value if isinstance(value, str) else str(value)
        self.budget.made(text, "the printed text")
        return text


class _Metering(NodeTransformer):
    """Rewrites a template so that loops, `~` and printed values go through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _filter(node.iter, "_counted")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(nodes.List(node.nodes, lineno=node.lineno), "_concat")

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [child if isinstance(child, nodes.TemplateData)
                      else _filter(child, "_printed") for child in node.nodes]
        return node


def _filter(node: nodes.Node, name: str) -> nodes.Filter:
    return nodes.Filter(cast(nodes.Expr, node), name, [], [], None, None, lineno=node.lineno)


class _MeteredGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        _Metering().visit(node)
        super().visit_Template(node, frame)
