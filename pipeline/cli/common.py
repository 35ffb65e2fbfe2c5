"""What every command shares: turning a `StoryreelError` into its text and exit code, and
compiling a storyboard against its lock and cache."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click

from ..errors import StoryreelError

if TYPE_CHECKING:
    from ..language.compile import Compiled

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a StoryreelError into its rendered text on stderr and its exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StoryreelError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(exc.exit_code)

    return wrapper


def compile_file(file: str, allow_outside: bool = False, with_state: bool = True) -> Compiled:
    """A storyboard compiled (against its lock and cache, `with_state`)."""
    from ..language.compile import compile_storyboard
    from ..run.state import compile_with_state

    path = Path(file)
    if not with_state:
        return compile_storyboard(path, display=file, allow_outside=allow_outside)
    return compile_with_state(path, file, allow_outside=allow_outside)
