"""The language commands: validate, plan and graph a storyboard; nothing is spent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..report.graph import graph_dot, graph_mermaid
from ..report.plan import plan_json, print_plan
from .common import compile_file, reports_errors


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--allow-outside", is_flag=True,
              help="Allow local image files outside the storyboard's folder.")
@reports_errors
def validate(files: tuple[str, ...], allow_outside: bool) -> None:
    """Check storyboards: YAML, schema, templates, graph, every request, and the lock file
    next to each (its seeds must suit the shots' models).

    Prints one line per valid file; otherwise every problem, sorted by line, as
    file:line:col, and exits 2.
    """
    from ..errors import StoryboardError

    failed: list[StoryboardError] = []
    for file in files:
        try:
            compiled = _validate_one(file, allow_outside)
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


def _validate_one(file: str, allow_outside: bool) -> Any:
    """Compile against the lock file (read, never written), not the cache: a lock that
    cannot be read is reported with the storyboard's own problems."""
    from ..errors import StoryboardError
    from ..language.compile import compile_storyboard
    from ..store import lock_path_for, read_lock

    path = Path(file)
    lock_problems = []
    try:
        lock = read_lock(lock_path_for(path)).shots
    except StoryboardError as exc:
        lock, lock_problems = {}, exc.problems
    try:
        compiled = compile_storyboard(path, display=file, lock=lock,
                                      allow_outside=allow_outside)
    except StoryboardError as exc:
        raise StoryboardError(lock_problems + exc.problems) from None
    if lock_problems:
        raise StoryboardError(lock_problems)
    return compiled


@click.command()
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
    changed, missing file: download again, missing file: generate again) or that it is
    cached (lock mismatch: cached, but the lock file says otherwise).
    """
    compiled = compile_file(file, allow_outside)
    if as_json:
        for warning in compiled.plan.warnings:  # stdout stays pure JSON
            click.echo(warning.render(), err=True)
        click.echo(plan_json(compiled.plan))
        return
    print_plan(compiled.plan, Console(highlight=False, width=None if sys.stdout.isatty() else 160))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="Mermaid (paste into Markdown) or Graphviz dot.")
@reports_errors
def graph(file: str, fmt: str) -> None:
    """Print the shot graph: an edge for every frame one shot takes from another."""
    compiled = compile_file(file, with_state=False)
    click.echo(graph_mermaid(compiled.graph) if fmt == "mermaid" else graph_dot(compiled.graph),
               nl=False)
