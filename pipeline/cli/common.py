"""What every command shares: turning a `StoryreelError` into its text and exit code, and
compiling a storyboard against its lock and cache."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import StoryreelError

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn a StoryreelError into its rendered text on stderr and its exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StoryreelError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def compile_file(file: str, allow_outside: bool = False, with_state: bool = True) -> Any:
    from ..language.compile import compile_storyboard

    path = Path(file)
    lock, is_cached = plan_state_for(path) if with_state else (None, None)
    return compile_storyboard(path, display=file, lock=lock, is_cached=is_cached,
                              allow_outside=allow_outside,
                              best_frame=best_frame_for(path) if with_state else None)


def best_frame_for(path: Path) -> Any:
    """Which frame `frame: best` chose in a shot already made, from the cache."""
    from ..run.continuity import best_frame_lookup
    from ..store import ObjectStore, store_root_for

    return best_frame_lookup(ObjectStore(store_root_for(path)))


def plan_state_for(path: Path) -> tuple[Any, Any]:
    """The lock file and the cache next to a storyboard."""
    from ..run.execute import plan_state

    return plan_state(path)
