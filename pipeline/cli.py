"""The command line: argv -> one stage or another; the only place that exits.

Every `StoryreelError` is caught once here, printed with `render()` and turned into its exit
code (2 for anything wrong in the user's files or arguments).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from .errors import ExitCode, StoryreelError
from .report import graph_dot, graph_mermaid, plan_json, print_plan

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="storyreel")
def main() -> None:
    """storyreel: declarative storyboards for AI video.

    A storyboard (YAML) lists shots: PixVerse V4.5 videoInference requests on Runware, plus
    `from` to chain the last frame of one shot into the next and `pick` to choose a take.

    \b
    storyreel validate story.yaml     check everything before a cent is spent
    storyreel plan story.yaml         what would be sent, why, and what it costs
    storyreel graph story.yaml        the shot graph as Mermaid or Graphviz
    storyreel run story.yaml          render the film (embedded simulator by default)
    storyreel simulate                serve the Runware-compatible simulator on 127.0.0.1

    Exit codes: 0 ok, 1 a run or request failed, 2 something is wrong in your files or
    arguments (every problem is listed as file:line:col).
    """


def _compile(file: str, allow_outside: bool = False, with_state: bool = True) -> Any:
    from .compile import compile_storyboard

    path = Path(file)
    lock, is_cached = _state(path) if with_state else (None, None)
    return compile_storyboard(path, display=file, lock=lock, is_cached=is_cached,
                              allow_outside=allow_outside)


def _state(path: Path) -> tuple[Any, Any]:
    """The lock file and the cache next to a storyboard, when the store is available."""
    try:
        from .run import plan_state
    except ImportError:
        return None, None
    return plan_state(path)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--allow-outside", is_flag=True,
              help="Allow local image files outside the storyboard's folder.")
@reports_errors
def validate(files: tuple[str, ...], allow_outside: bool) -> None:
    """Check storyboards: YAML, schema, templates, graph and every request.

    Prints one line per valid file; otherwise every problem, sorted by line, as
    file:line:col, and exits 2.
    """
    from .errors import StoryboardError

    failed: list[StoryreelError] = []
    for file in files:
        try:
            compiled = _compile(file, allow_outside, with_state=False)
        except StoryboardError as exc:
            failed.append(exc)
            continue
        plan = compiled.plan
        for warning in plan.warnings:
            click.echo(warning.render(), err=True)
        click.echo(f"{file}: ok: {len(compiled.board.shots)} shots, {len(plan.shots)} "
                   f"expanded, {len(plan.films)} film(s), {len(plan.layers)} layers, "
                   f"estimated ${plan.estimated_cost_all:.3f}")
    if failed:
        raise StoryboardError([p for exc in failed for p in exc.problems])


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print the plan as JSON: shots[{id, key, variant, needs, request, identity, "
                   "cached, estimated_cost, ...}] and estimated_cost.")
@click.option("--allow-outside", is_flag=True,
              help="Allow local image files outside the storyboard's folder.")
@reports_errors
def plan(file: str, as_json: bool, allow_outside: bool) -> None:
    """Show exactly what a run would send, why each shot runs, and the cost.

    `request` is the exact videoInference task (taskUUID aside); an image known only at run
    time (a frame of another shot, a local file to upload) appears as an object naming its
    source. Status says why a shot runs (new, request changed, input frame changed, pick
    changed, missing file) or that it is cached.
    """
    compiled = _compile(file, allow_outside)
    if as_json:
        click.echo(plan_json(compiled.plan))
        return
    print_plan(compiled.plan, Console(highlight=False, width=None if sys.stdout.isatty() else 160))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="Mermaid (paste into Markdown) or Graphviz dot.")
@reports_errors
def graph(file: str, fmt: str) -> None:
    """Print the shot graph: an edge for every frame one shot takes from another."""
    compiled = _compile(file, with_state=False)
    click.echo(graph_mermaid(compiled.graph) if fmt == "mermaid" else graph_dot(compiled.graph),
               nl=False)


def _add_optional_commands() -> None:
    try:
        from .simulator.serve import simulate_command
    except ImportError:
        pass
    else:
        main.add_command(simulate_command(), "simulate")
    try:
        from .run import run_command
    except ImportError:
        pass
    else:
        main.add_command(run_command(), "run")


_add_optional_commands()


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["main", "ExitCode"]
