"""The run command: render a storyboard into films, with progress and a summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..api.polling import PATIENCE
from ..errors import ExitCode, UsageError
from ..simulator.options import FAULTS_HELP, SimOptions, latency_option, rates_option
from .common import reports_errors

if TYPE_CHECKING:  # the run's modules load when a run starts, not for `--help` or `validate`
    from rich.console import Console

    from ..language.plan import Plan
    from ..run.execute import Prepared, RunRequest
    from ..run.summary import RunSummary

BACKENDS = ("simulator", "runware")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(BACKENDS), default=BACKENDS[0], show_default=True,
              help="simulator: the embedded Runware-compatible simulator (no key, real video "
              "files, nothing paid: the costs shown are what Runware would charge). runware: "
              "the real API with RUNWARE_API_KEY (and RUNWARE_BASE_URL if set).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Tasks in flight at once (default: the storyboard's `concurrency`, else 8).")
@click.option("--max-cost", type=click.FloatRange(min=0), default=None, metavar="USD",
              help="Stop submitting before the estimated or actual spend would pass USD.")
@click.option("--allow-unpriced", is_flag=True,
              help="With --max-cost, run shots whose model has no published price anyway "
              "(their cost counts once Runware reports it).")
@click.option("--frozen", is_flag=True,
              help="Change nothing: refuse (exit 1, naming each difference) a run that would "
              "generate anything or change the lock file, or whose lock and cache disagree. "
              "For CI.")
@click.option("--select", "select", multiple=True, metavar="SELECTOR",
              help="Run part of the graph, dbt style: shot, +shot (with its ancestors), "
              "shot+ (with its descendants), @shot. Repeatable.")
@click.option("--json", "as_json", is_flag=True,
              help="Write a JSON summary to stdout (films, shots, requests, cost); progress "
              "goes to stderr.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask before spending money on Runware. Without a terminal to ask "
              "on, a run that would spend refuses unless given -y.")
@click.option("--patience", type=click.FloatRange(min=0), default=PATIENCE,
              show_default=True, metavar="SECONDS",
              help="How long the service may fail every request before the run stops; what "
              "was sent stays open in the journal, and running the same command again "
              "resumes it without paying twice.")
@click.option("--allow-outside", is_flag=True,
              help="Allow local image files outside the storyboard's folder.")
@click.option("--sim-latency", metavar="A[,B]", default=None, callback=latency_option,
              help="Simulator only: seconds from submission to each result, uniform between "
              "A and B (A alone: always A); as `simulate --latency`.")
@click.option("--sim-fail-rate", "--sim-fault", "sim_faults", multiple=True,
              metavar="KIND=RATE", callback=rates_option,
              help=f"Simulator only: inject faults, as `simulate --fail-rate` (repeatable; "
              f"--sim-fault is the older name). {FAULTS_HELP}")
@click.option("--sim-drift", type=click.FloatRange(0, 1), default=0.0, metavar="RATE",
              help="Simulator only: clips drift like a real model's, their colour RATE of the "
              "way to a warm cast by their last frame, their ends smeared; as `simulate "
              "--sim-drift`.")
@reports_errors
def run(file: str, backend: str, concurrency: int | None, max_cost: float | None,
        allow_unpriced: bool, frozen: bool, select: tuple[str, ...], as_json: bool, yes: bool,
        patience: float,
        allow_outside: bool, sim_latency: tuple[float, float] | None,
        sim_faults: dict[str, float], sim_drift: float) -> None:
    """Render the storyboard into films: generate every shot that is not cached, chain
    frames, pick takes, stitch each variant's film, and update the lock file.

    \b
    storyreel run examples/lighthouse/lighthouse.yaml
    storyreel run story.yaml --select +arrival        # arrival and what it needs
    RUNWARE_API_KEY=... storyreel run story.yaml --backend runware --max-cost 2

    Re-running is free: shots whose identity is cached are not generated again, and a take
    lost from the cache is downloaded again while the service keeps it. A run that was
    interrupted (Ctrl-C, a crash, the service gone for longer than --patience) resumes its
    tasks in flight without paying twice.
    Exit codes: 0 every film made, 1 the run is incomplete (the reasons are listed),
    2 a problem in the storyboard, the arguments or the files in the way, 130 interrupted.
    """
    from rich.console import Console

    from ..report.summary import incomplete_error, summary_json, summary_lines
    from ..run.execute import (
        BackendName,
        RunRequest,
        check_budget,
        options_for,
        prepare_run,
    )

    name = BackendName(backend)
    path = Path(file)
    prepared = prepare_run(RunRequest(path, file, frozen=frozen, allow_outside=allow_outside))
    compiled = prepared.compiled
    err = Console(stderr=True, highlight=False)
    err.soft_wrap = not err.is_terminal  # a log or a pipe gets whole lines, paths unbroken
    plan = compiled.plan
    check_budget(plan, max_cost, allow_unpriced)
    if name is BackendName.RUNWARE:
        _confirm_spend(compiled.plan, err, yes)
    options = options_for(name, concurrency or compiled.board.concurrency, max_cost,
                          patience=patience)
    req = RunRequest(path, file, name, options, frozen, select, allow_outside,
                     SimOptions(sim_latency, sim_faults, sim_drift))
    if name is BackendName.SIMULATOR:
        err.print("backend: the embedded Runware simulator (simulated video; costs are what "
                  "Runware would charge, nothing is paid)")
    summary = _run_with_progress(req, prepared, err, len({s.identity for s in compiled.plan.shots}))
    if as_json:
        click.echo(summary_json(summary))
    else:
        for line in summary_lines(summary):
            err.print(line, markup=False)
    incomplete = incomplete_error(summary)
    if incomplete is not None:
        raise incomplete


def _confirm_spend(plan: Plan, err: Console, yes: bool) -> None:
    cost = plan.estimated_cost
    to_make = len({s.identity for s in plan.shots if not s.cached})
    unpriced = f" plus {len(plan.unpriced)} at an unknown price" if plan.unpriced else ""
    err.print(f"Runware: {to_make} shots to generate, estimated ${cost:.3f}{unpriced}")
    if to_make == 0 or yes:  # an unknown price is still money
        return
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to spend an estimated ${cost:.3f} without asking, and "
                         "standard input is not a terminal to ask on",
                         hint="pass -y (--yes) to go ahead, with --max-cost USD as a bound")
    click.confirm("Go ahead?", abort=True, err=True)


def _run_with_progress(req: RunRequest, prepared: Prepared, err: Console,
                       total: int) -> RunSummary:
    import asyncio

    from ..report.progress import LiveReporter, PlainReporter
    from ..run.execute import execute

    try:
        if err.is_terminal:
            with LiveReporter(err, total) as live:
                return asyncio.run(execute(req, live, prepared))
        return asyncio.run(execute(req, PlainReporter(), prepared))
    except KeyboardInterrupt:
        click.echo("interrupted: tasks in flight are kept in the journal; run the same "
                   "command again to resume them without paying twice", err=True)
        sys.exit(ExitCode.INTERRUPTED)
