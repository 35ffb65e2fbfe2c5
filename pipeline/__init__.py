"""storyreel: declarative storyboards for AI video, scriptable from Python.

The command line is one way in; this module is the other, for scripts and notebooks::

    import pipeline as storyreel

    plan = storyreel.plan("examples/lighthouse/lighthouse.yaml")
    for shot in plan.shots:
        print(shot.key, shot.reason, shot.estimated_cost)

    summary = storyreel.render("examples/lighthouse/lighthouse.yaml")
    print(summary.complete, summary.cost, [film.path for film in summary.films])

    lock = storyreel.read_lock("examples/lighthouse/lighthouse.yaml")
    print({key: entry.seed for key, entry in lock.shots.items()})

The functions do what `storyreel validate`, `plan` and `run` do, with the same checks: a
storyboard with a problem raises `StoryboardError` listing every problem with its
file:line:col, a run never spends on Runware unless told `yes=True`, and every failure is a
`StoryreelError` whose `render()` is what the command line prints. Nothing else in the
package is public; its modules may change between versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import StoryboardError, StoryreelError
    from .language.compile import Compiled
    from .language.plan import Plan, PlannedShot, Reason
    from .run.films import FilmOutcome
    from .run.jobs import JobStatus, Reporter
    from .run.summary import RunSummary, ShotOutcome
    from .store.lock import Lock, LockEntry

__all__ = [
    "Compiled",
    "FilmOutcome",
    "JobStatus",
    "Lock",
    "LockEntry",
    "Plan",
    "PlannedShot",
    "Reason",
    "Reporter",
    "RunSummary",
    "ShotOutcome",
    "StoryboardError",
    "StoryreelError",
    "compile",
    "plan",
    "read_lock",
    "render",
    "render_async",
]

# The types a caller meets, imported when first asked for: `import pipeline` stays as cheap
# as the command line needs it to be (no video or HTTP libraries loaded for `--help`).
_TYPES = {
    "Compiled": "language.compile",
    "FilmOutcome": "run.films",
    "JobStatus": "run.jobs",
    "Lock": "store.lock",
    "LockEntry": "store.lock",
    "Plan": "language.plan",
    "PlannedShot": "language.plan",
    "Reason": "language.plan",
    "Reporter": "run.jobs",
    "RunSummary": "run.summary",
    "ShotOutcome": "run.summary",
    "StoryboardError": "errors",
    "StoryreelError": "errors",
}

StrPath = str | PathLike[str]


def __getattr__(name: str) -> Any:
    if name in _TYPES:
        return getattr(import_module(f".{_TYPES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def compile(storyboard: StrPath, *, allow_outside: bool = False) -> Compiled:
    """Load, validate and plan a storyboard against its lock file and cache.

    Returns a `Compiled`: `.board` (the storyboard as read), `.graph` (shots and the frame
    edges between them) and `.plan` (what `storyreel plan` shows). Raises `StoryboardError`
    with every problem found, each at its file:line:col. `allow_outside` lets the storyboard
    read local files outside its folder, as `--allow-outside` does.
    """
    from .run.state import compile_with_state

    return compile_with_state(Path(storyboard), str(storyboard), allow_outside=allow_outside)


def plan(storyboard: StrPath, *, allow_outside: bool = False) -> Plan:
    """What a run would do: every shot key with its request, seed, status (`cached`, or why
    it would run) and estimated cost, the films, and `.estimated_cost` in all."""
    return compile(storyboard, allow_outside=allow_outside).plan


def read_lock(path: StrPath) -> Lock:
    """The lock file of a storyboard (`story.yaml` -> `story.lock`), or a `.lock` file named
    directly: `.shots` maps each shot key to its `LockEntry` (seed, task, takes, cost, the
    picked take's sha256). An empty `Lock` when there is none yet; a damaged one raises
    `StoryboardError` at its file:line."""
    from .store.lock import lock_path_for
    from .store.lock_reader import read_lock as read

    target = Path(path)
    return read(target if target.suffix == ".lock" else lock_path_for(target))


async def render_async(storyboard: StrPath, *, backend: str = "simulator", yes: bool = False,
                    max_cost: float | None = None, allow_unpriced: bool = False,
                    concurrency: int | None = None, select: Sequence[str] = (),
                    frozen: bool = False, allow_outside: bool = False,
                    patience: float | None = None,
                    reporter: Reporter | None = None) -> RunSummary:
    """`render` for code that has an event loop running already (a notebook: `await` it)."""
    from .api.polling import PATIENCE
    from .errors import UsageError
    from .run.execute import (
        BackendName,
        RunRequest,
        check_budget,
        execute,
        options_for,
        prepare_run,
    )

    try:
        name = BackendName(backend)
    except ValueError:
        raise UsageError(f"unknown backend {backend!r}",
                         hint=f"one of {', '.join(b.value for b in BackendName)}") from None
    path = Path(storyboard)
    prepared = prepare_run(RunRequest(path, str(storyboard), frozen=frozen,
                                      allow_outside=allow_outside))
    planned = prepared.compiled.plan
    check_budget(planned, max_cost, allow_unpriced)
    if name is BackendName.RUNWARE and not yes and any(not s.cached for s in planned.shots):
        raise UsageError(f"refusing to spend an estimated ${planned.estimated_cost:.3f} on "
                         "Runware without being told to",
                         hint="pass yes=True to go ahead, with max_cost=USD as a bound")
    options = options_for(name, concurrency or prepared.compiled.board.concurrency, max_cost,
                          patience=PATIENCE if patience is None else patience)
    request = RunRequest(path, str(storyboard), name, options, frozen, tuple(select),
                         allow_outside)
    return await execute(request, reporter or _Quiet(), prepared)


def render(storyboard: StrPath, *, backend: str = "simulator", yes: bool = False,
           max_cost: float | None = None, allow_unpriced: bool = False,
           concurrency: int | None = None, select: Sequence[str] = (), frozen: bool = False,
           allow_outside: bool = False, patience: float | None = None,
           reporter: Reporter | None = None) -> RunSummary:
    """Render a storyboard into its films, as `storyreel run` does (the package `pipeline.run`
    holds the machinery, hence the name), and return the
    `RunSummary`: per shot key its status, task, seed, cost and picked take's file, per film
    its status and file, `.cost` and `.complete`.

    The options (keywords only): `backend` ("simulator", the default, or "runware" with
    RUNWARE_API_KEY in the environment), `yes` (required to spend on Runware), `max_cost`
    (USD; with `allow_unpriced` to run models without a published price), `concurrency`,
    `select` (selectors such as "+arrival"), `frozen`, `allow_outside`, `patience` (seconds
    an outage is waited out) and `reporter` (an object with `update(job)` and `note(text)`
    told of every change; silent by default).

    A run that does not complete returns a summary with `.complete` false and the reasons
    on its shots and films; running it again resumes without paying twice. Raises
    `StoryboardError` before anything is spent when the storyboard has a problem.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(render_async(
            storyboard, backend=backend, yes=yes, max_cost=max_cost,
            allow_unpriced=allow_unpriced, concurrency=concurrency, select=select,
            frozen=frozen, allow_outside=allow_outside, patience=patience, reporter=reporter))
    from .errors import UsageError

    raise UsageError("storyreel.render() cannot start an event loop inside a running one",
                     hint="await storyreel.render_async(...) instead (in a notebook, too)")


class _Quiet:
    """A reporter that keeps quiet: a script reads the summary at the end."""

    def update(self, job: object) -> None:
        pass

    def note(self, message: str) -> None:
        pass
