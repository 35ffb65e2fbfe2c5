"""Budget: how much the templates of one storyboard may make, and the checks that keep to it.

In: an operation a template is about to do (an operator, a method, a filter) and its
arguments. Out: nothing, or a `TemplateLimit` raised before anything too large is made. The
sizes are estimated from the arguments (a repeat count, a width, a format's fields, a
separator times the items joined...) as upper bounds, so the check never lets through what
the operation would then make; `Budget.made` measures what was made and charges its steps.
`sandbox` wires these into Jinja.
"""

from __future__ import annotations

import functools
import re
import string
import types
from collections.abc import Callable, Mapping
from typing import Any

from jinja2.exceptions import TemplateRuntimeError

MAX_SIZE = 1_000_000  # characters of one text, or items of one list
MAX_STEPS = 500_000  # per storyboard
MAX_INT_BITS = 1 << 16
CHARS_PER_STEP = 64
_PERCENT = re.compile(r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?"
                      r"(?:\.(?P<precision>\*|\d+))?[hlL]?(?P<kind>[a-zA-Z%])")
_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?")
_FORMATTER = string.Formatter()


class TemplateLimit(TemplateRuntimeError):
    """A template asked for more than a storyboard may: a value too large, or too many steps."""


class Budget:
    """The steps the templates of one storyboard may still take, and the size cap."""

    def __init__(self, steps: int = MAX_STEPS, size: int = MAX_SIZE) -> None:
        self.left = steps
        self.steps = steps
        self.size = size

    @property
    def spent(self) -> bool:
        return self.left < 0

    def charge(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise TemplateLimit(f"the templates of this storyboard take more than "
                                f"{self.steps:,} steps; simplify the loops")

    def allow(self, size: int, what: str) -> None:
        """Refuse to make something of `size` (characters or items) beyond the cap."""
        if size > self.size:
            raise TemplateLimit(f"{what} would be {_count(size)} long; a template may make "
                                f"at most {self.size:,} characters or items")

    def made(self, value: Any, what: str = "a value") -> Any:
        """Measure something already made: charge its size and refuse it beyond the cap."""
        size = measure(value, self.size)
        self.charge(1 + size // CHARS_PER_STEP)
        self.allow(size, what)
        return value


def _count(size: int) -> str:
    return f"{size:,}" if size < 10**15 else f"about 10^{len(str(size)) - 1}"


def measure(value: Any, limit: int) -> int:
    """Characters of text, plus items of lists and mappings counted through their nesting
    (a list holding one list a million times holds a million times its items); counting
    stops past `limit`. Anything else counts one."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.values())
        else:
            total += 1
    return total


def _text_bound(value: Any, limit: int) -> int:
    """At most how many characters `str(value)` (or `repr`) is, cheaply."""
    if isinstance(value, str):
        return len(value) * 4 + 2  # repr may escape each character
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 32
    return measure(value, limit) * 8 + 8


# Checks made before an operation, from its arguments


def check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        if left.bit_length() * right > MAX_INT_BITS:
            raise TemplateLimit(f"{left} ** {right} is a number too large to make")
    elif operator == "*" and ints:
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit("the product is a number too large to make")
    elif operator == "*" and (isinstance(left, int) or isinstance(right, int)):
        times, seq = (left, right) if isinstance(left, int) else (right, left)
        if isinstance(seq, str | bytes | list | tuple) and times > 0:
            budget.allow(measure(seq, budget.size) * times, "the repeated value")
    elif operator == "+" and isinstance(left, str | bytes | list | tuple):
        budget.allow(measure(left, budget.size) + measure(right, budget.size), "the sum")
    elif operator == "%" and isinstance(left, str):
        budget.allow(_percent_bound(left, right, budget.size), "the formatted text")


_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


def check_method(budget: Budget, func: Any, args: tuple[Any, ...],
                  kwargs: Mapping[str, Any]) -> None:
    """Methods of text and numbers that can make something much larger than their inputs."""
    if not isinstance(func, types.BuiltinMethodType):
        return
    owner, name = func.__self__, func.__name__
    if isinstance(owner, int) and name == "to_bytes":
        budget.allow(_int_arg(args, kwargs, "length", 0, 1), "the bytes")
    if not isinstance(owner, str | bytes):
        return
    if name in _WIDTH_METHODS:
        budget.allow(max(len(owner), _int_arg(args, kwargs, "width", 0, 0)), "the padded text")
    elif name == "expandtabs":
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        budget.allow(len(owner) + tabs * _int_arg(args, kwargs, "tabsize", 0, 8),
                     "the expanded text")
    elif name == "join" and args:
        _check_join(budget, owner, args[0])
    elif name == "replace" and len(args) >= 2:
        budget.allow(_replace_bound(owner, args[0], args[1], args[2] if len(args) > 2 else -1),
                     "the replaced text")
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((_text_bound(v, budget.size) for v in args[0].values()), default=1)
        budget.allow(len(owner) * longest, "the translated text")


def _int_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], name: str, index: int,
             default: int) -> int:
    value = kwargs.get(name, args[index] if len(args) > index else default)
    return value if isinstance(value, int) else default


def _check_join(budget: Budget, separator: Any, items: Any) -> None:
    if not isinstance(items, list | tuple | str | dict | range):
        return  # one pass only: measured when made
    size = max(len(items) - 1, 0) * len(separator)
    budget.allow(size, "the joined text")
    for item in items:
        size += _text_bound(item, budget.size) if not isinstance(item, str) else len(item)
        budget.allow(size, "the joined text")


def _replace_bound(text: Any, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return len(text)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _percent_bound(fmt: str, values: Any, limit: int) -> int:
    """At most how long `fmt % values` is: each field's width, precision and value."""
    args = list(values) if isinstance(values, tuple) else [values]
    named = values if isinstance(values, Mapping) else {}
    total = len(fmt)
    for spec in _PERCENT.finditer(fmt):
        if spec["kind"] == "%":
            continue
        width = args.pop(0) if spec["width"] == "*" and args else spec["width"]
        precision = args.pop(0) if spec["precision"] == "*" and args else spec["precision"]
        value = named.get(spec["key"]) if spec["key"] is not None else (
            args.pop(0) if args else None)
        total += _number(width) + _number(precision) + _text_bound(value, limit)
    return total


def format_bound(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                  limit: int) -> int:
    """At most how long `fmt.format(*args, **kwargs)` is."""
    total = 0
    auto = iter(range(len(args) + 1))
    try:
        fields = list(_FORMATTER.parse(fmt))
    except ValueError:
        return len(fmt)  # format() will say what is wrong
    for literal, name, spec, _ in fields:
        total += len(literal)
        if name is None:
            continue
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        key: int | str = int(root) if root.isdigit() else root
        if key == "":
            key = next(auto, 0)
        value = args[key] if isinstance(key, int) and key < len(args) else kwargs.get(str(key))
        total += _text_bound(value, limit) + _spec_bound(spec or "", args, kwargs)
    return total


def _spec_bound(spec: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    if "{" in spec:  # a width or precision given as an argument: the largest one
        numbers = [v for v in (*args, *kwargs.values()) if isinstance(v, int)]
        return 2 * max(numbers, default=0) + len(spec)
    found = _SPEC.match(spec)
    return _number(found["width"]) + _number(found["precision"]) if found else len(spec)


def _number(value: Any) -> int:
    if isinstance(value, int):
        return max(value, 0)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


# Filters


def guarded_filter(budget: Budget, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func`, charged a step, checked before (for the filters that can make much more than
    they are given) and measured after."""
    check = _FILTER_CHECKS.get(name)
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget.charge()
        if check is not None and len(args) > skip:
            args = args[:skip] + check(budget, *args[skip:], **kwargs)
        return budget.made(func(*args, **kwargs), f"the result of |{name}")

    return guarded


Check = Callable[..., tuple[Any, ...]]


def _width_check(keyword: str, default: int) -> Check:
    """For a filter whose first argument is a count of characters or items to make."""
    def check(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        budget.allow(_number(kwargs.get(keyword, args[0] if args else default)),
                     f"the {keyword}")
        return (value, *args)
    return check


def _check_tojson(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    indent = _number(kwargs.get("indent", args[0] if args else 0))
    budget.allow(measure(value, budget.size) * (indent + 8), "the JSON text")
    return (value, *args)


def _check_indent(budget: Budget, text: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    width = kwargs.get("width", args[0] if args else 4)
    step = len(width) if isinstance(width, str) else _number(width)
    budget.allow(len(str(text)) + (str(text).count("\n") + 1) * step, "the indented text")
    return (text, *args)


def _check_wordwrap(budget: Budget, text: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    wrap = kwargs.get("wrapstring", args[2] if len(args) > 2 else None)
    body = str(text)
    lines = len(body) + 1
    budget.allow(len(body) + lines * len(str(wrap or "\n")), "the wrapped text")
    return (text, *args)


def _check_format(budget: Budget, text: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    values = kwargs if kwargs else args
    budget.allow(_percent_bound(str(text), values, budget.size), "the formatted text")
    return (text, *args)


def _check_join_filter(budget: Budget, items: Any, *args: Any, **kwargs: Any
                       ) -> tuple[Any, ...]:
    items = list(items) if not isinstance(items, str | list | tuple | dict) else items
    separator = kwargs.get("d", args[0] if args else "")
    _check_join(budget, str(separator), items)
    return (items, *args)


def _check_replace(budget: Budget, text: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    if len(args) >= 2:
        count = kwargs.get("count", args[2] if len(args) > 2 else -1)
        budget.allow(_replace_bound(str(text), args[0], args[1],
                                    -1 if count is None else count), "the replaced text")
    return (text, *args)


def _check_sum(budget: Budget, items: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    items = list(items)
    start = kwargs.get("start", args[1] if len(args) > 1 else 0)
    if not isinstance(start, int | float):
        budget.allow(measure(start, budget.size) + measure(items, budget.size), "the sum")
    return (items, *args)


_FILTER_CHECKS: dict[str, Check] = {
    "center": _width_check("width", 80),
    "batch": _width_check("linecount", 0),
    "slice": _width_check("slices", 0),
    "tojson": _check_tojson,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "format": _check_format,
    "join": _check_join_filter,
    "replace": _check_replace,
    "sum": _check_sum,
}
