"""The run command: render a storyboard into films, with progress and a summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..errors import ExitCode, RunIncomplete, UsageError
from .common import reports_errors

SIM_FAULTS = ("rate_429", "rate_500", "rate_503", "rate_drop", "rate_task_error")


def _sim_options(latency: str | None, faults: tuple[str, ...], drift: float = 0.0
                 ) -> dict[str, Any]:
    options: dict[str, Any] = {"drift": drift} if drift else {}
    if latency:
        try:
            low, _, high = latency.partition(",")
            options["latency"] = (float(low), float(high or low))
        except ValueError:
            raise UsageError(f"--sim-latency {latency!r}: expected MIN,MAX seconds") from None
    for item in faults:
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in SIM_FAULTS:
            raise UsageError(f"--sim-fault {item!r}: unknown fault {name!r}",
                             hint=f"the faults are {', '.join(SIM_FAULTS)}")
        try:
            options[name] = float(value)
        except ValueError:
            raise UsageError(f"--sim-fault {item!r}: expected NAME=RATE, e.g. rate_503=0.1") from None
        if not 0 <= options[name] <= 1:
            raise UsageError(f"--sim-fault {item!r}: a rate is between 0 and 1")
    return options


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(["simulator", "runware"]), default="simulator",
              show_default=True, help="simulator: the embedded Runware-compatible simulator "
              "(no key, real video files, no cost). runware: the real API with RUNWARE_API_KEY "
              "(and RUNWARE_BASE_URL if set).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Tasks in flight at once (default: the storyboard's `concurrency`, else 8).")
@click.option("--max-cost", type=click.FloatRange(min=0), default=None, metavar="USD",
              help="Stop submitting before the estimated or actual spend would pass USD.")
@click.option("--allow-unpriced", is_flag=True,
              help="With --max-cost, run shots whose model has no published price anyway "
              "(their cost counts once Runware reports it).")
@click.option("--frozen", is_flag=True,
              help="Refuse to run anything that would change the lock file (for CI).")
@click.option("--select", "select", multiple=True, metavar="SELECTOR",
              help="Run part of the graph, dbt style: shot, +shot (with its ancestors), "
              "shot+ (with its descendants), @shot. Repeatable.")
@click.option("--json", "as_json", is_flag=True,
              help="Write a JSON summary to stdout (films, shots, requests, cost); progress "
              "goes to stderr.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before spending money on Runware.")
@click.option("--allow-outside", is_flag=True,
              help="Allow local image files outside the storyboard's folder.")
@click.option("--sim-latency", metavar="MIN,MAX", default=None,
              help="Simulator only: seconds from submission to a finished video.")
@click.option("--sim-fault", "sim_faults", multiple=True, metavar="NAME=RATE",
              help="Simulator only: inject faults, e.g. rate_503=0.1, rate_429=0.05, "
              "rate_drop=0.03, rate_task_error=0.03. Repeatable.")
@click.option("--sim-drift", type=click.FloatRange(0, 1), default=0.0, metavar="RATE",
              help="Simulator only: clips drift like a real model's, their colour RATE of the "
              "way to a warm cast by their last frame, their ends smeared.")
@reports_errors
def run(file: str, backend: str, concurrency: int | None, max_cost: float | None,
        allow_unpriced: bool, frozen: bool, select: tuple[str, ...], as_json: bool, yes: bool,
        allow_outside: bool, sim_latency: str | None, sim_faults: tuple[str, ...],
        sim_drift: float) -> None:
    """Render the storyboard into films: generate every shot that is not cached, chain
    frames, pick takes, stitch each variant's film, and update the lock file.

    \b
    storyreel run examples/lighthouse/lighthouse.yaml
    storyreel run story.yaml --select +arrival        # arrival and what it needs
    RUNWARE_API_KEY=... storyreel run story.yaml --backend runware --max-cost 2

    Re-running is free: shots whose identity is cached are not generated again. A run that
    was interrupted (Ctrl-C, a crash) resumes its tasks in flight without paying twice.
    Exit codes: 0 every film made, 1 the run is incomplete (the reasons are listed),
    2 a problem in the storyboard or the arguments, 130 interrupted.
    """
    from ..run.execute import RunRequest, execute, prepare_run
    from ..run.scheduler import RunOptions

    path = Path(file)
    prepared = prepare_run(RunRequest(path, file, frozen=frozen, allow_outside=allow_outside))
    compiled = prepared[0]
    plan = compiled.plan
    err = Console(stderr=True, highlight=False)
    if max_cost is not None and plan.unpriced and not allow_unpriced:
        more = f" and {len(plan.unpriced) - 5} more" if len(plan.unpriced) > 5 else ""
        raise UsageError(f"--max-cost {max_cost:g} cannot be kept: no published price for "
                         f"{', '.join(plan.unpriced[:5])}{more}",
                         hint="pass --allow-unpriced to run them anyway, or drop --max-cost")
    if backend == "runware":
        _confirm_spend(plan, err, yes)
    # The simulator answers in a fraction of a second; Runware takes tens of seconds a clip.
    tick = 0.25 if backend == "simulator" else 1.0
    options = RunOptions(concurrency=concurrency or compiled.board.concurrency or 8,
                         max_cost=max_cost, poll_interval=tick, first_poll=tick)
    req = RunRequest(path, file, backend, options, frozen, select, allow_outside,
                     _sim_options(sim_latency, sim_faults, sim_drift))
    if backend == "simulator":
        err.print("backend: the embedded Runware simulator (simulated video, no cost)")
    summary = _run_with_progress(req, err, len({s.identity for s in plan.shots}),
                                 lambda r, rep: execute(r, rep, prepared))
    if as_json:
        from ..run.execute import summary_json

        click.echo(summary_json(summary))
    else:
        _print_summary(summary, err)
    if not summary.complete:
        raise RunIncomplete("the run is incomplete: see the failed shots above",
                            hint="fix the cause and run the same command again: what "
                            "finished is kept")


def _confirm_spend(plan: Any, err: Console, yes: bool) -> None:
    cost = plan.estimated_cost
    to_make = len({s.identity for s in plan.shots if not s.cached})
    unpriced = f" plus {len(plan.unpriced)} at an unknown price" if plan.unpriced else ""
    err.print(f"Runware: {to_make} shots to generate, estimated ${cost:.3f}{unpriced}")
    if cost > 0 and not yes and sys.stdin.isatty():
        click.confirm("Go ahead?", abort=True, err=True)


def _run_with_progress(req: Any, err: Console, total: int, execute: Any) -> Any:
    import asyncio

    from ..report.progress import LiveReporter, PlainReporter

    try:
        if err.is_terminal:
            with LiveReporter(err, total) as live:
                return asyncio.run(execute(req, live))
        return asyncio.run(execute(req, PlainReporter()))
    except KeyboardInterrupt:
        click.echo("interrupted: tasks in flight are kept in the journal; run the same "
                   "command again to resume them without paying twice", err=True)
        sys.exit(ExitCode.INTERRUPTED)


def _print_summary(summary: Any, err: Console) -> None:
    for film in summary.films:
        variant = ", ".join(f"{k}={v}" for k, v in film.variant.items())
        label = f" [{variant}]" if variant else ""
        if film.path is not None:
            err.print(f"film{label}: {film.path} ({film.method})", markup=False)
        else:
            err.print(f"film{label}: {film.error}", markup=False)
    for job in summary.jobs.values():
        if str(job.status) in ("failed", "skipped"):
            err.print(f"{job.status}: {job.label}: {job.error}", markup=False)
    made = sum(str(j.status) == "done" for j in summary.jobs.values())
    cached = sum(str(j.status) == "cached" for j in summary.jobs.values())
    requests = sum(summary.requests.values())
    err.print(f"{made} generated, {cached} cached; {requests} API requests; cost "
              f"${summary.cost:.3f}; lock file {'updated' if summary.lock_changed else 'unchanged'}",
              markup=False)
