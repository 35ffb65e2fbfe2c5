"""Report stage: plans and graphs -> text for people (tables, diagrams) and JSON for tools."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .language.graph import ShotGraph
from .language.plan import Plan, PlannedShot


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"plan: {plan.name}", title_justify="left")
    for column in ("shot", "variant", "depends on", "size", "duration", "takes", "cost",
                   "status"):
        table.add_column(column, justify="right" if column in ("takes", "cost") else "left")
    for shot in plan.shots:
        table.add_row(*_plan_row(shot))
    return table


def _plan_row(shot: PlannedShot) -> list[str]:
    variant = ", ".join(f"{k}={v}" for k, v in shot.variant.items()) or "-"
    needs = ", ".join(n.split("[")[0] for n in shot.needs) or "-"
    cost = f"${shot.estimated_cost:.3f}" + ("~" if shot.cost_is_estimate else "")
    takes = str(shot.takes) if shot.takes == 1 else f"{shot.takes} (pick {shot.pick})"
    return [shot.id, variant, needs, f"{shot.size[0]}x{shot.size[1]}", f"{shot.duration:g}s",
            takes, cost, str(shot.reason)]


def print_plan(plan: Plan, console: Console) -> None:
    for warning in plan.warnings:
        console.print(warning.render(), markup=False, highlight=False)
    console.print(plan_table(plan))
    unique = len({s.identity for s in plan.shots})
    to_run = len({s.identity for s in plan.shots if not s.cached})
    estimate = any(s.cost_is_estimate for s in plan.shots)
    console.print(
        f"{len(plan.shots)} shots ({unique} distinct requests, {to_run} to generate), "
        f"{len(plan.films)} film{'s' if len(plan.films) != 1 else ''}; "
        f"estimated cost ${plan.estimated_cost:.3f}{' (partly estimated: ~)' if estimate else ''}",
        markup=False, highlight=False)
    if plan.critical_path:
        path = " -> ".join(k.split("[")[0] for k in plan.critical_path)
        console.print(f"critical path: {path}", markup=False, highlight=False)


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2, ensure_ascii=False)


def graph_mermaid(graph: ShotGraph) -> str:
    ids = {key: f"n{i}" for i, key in enumerate(graph.shots)}
    lines = ["flowchart LR"]
    for key, node in ids.items():
        lines.append(f'  {node}["{_escape(key)}"]')
    for parent, child in graph.graph.edges:
        lines.append(f"  {ids[parent]} -->|{_edge_label(graph, parent, child)}| {ids[child]}")
    return "\n".join(lines) + "\n"


def graph_dot(graph: ShotGraph) -> str:
    lines = ["digraph storyboard {", "  rankdir=LR;", "  node [shape=box];"]
    for key in graph.shots:
        lines.append(f"  {json.dumps(key)};")
    for parent, child in graph.graph.edges:
        label = json.dumps(_edge_label(graph, parent, child))
        lines.append(f"  {json.dumps(parent)} -> {json.dumps(child)} [label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _edge_label(graph: ShotGraph, parent: str, child: str) -> str:
    parent_id = graph.shots[parent].id
    frames = [str(r.frame) for r in graph.refs[child] if r.shot == parent_id]
    return ",".join(dict.fromkeys(frames)) or "frame"


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")


# -- run progress ------------------------------------------------------------------------


class PlainReporter:
    """One line per change of a shot's status, for logs and pipes (stderr)."""

    def __init__(self, stream: Any = None, clock: Any = None) -> None:
        import sys
        import time

        self.stream = stream or sys.stderr
        self.clock = clock or time.monotonic
        self.start = self.clock()

    def update(self, job: Any) -> None:
        detail = f": {job.error}" if job.error else ""
        self._line(f"{job.label}: {job.status}{detail}")

    def note(self, message: str) -> None:
        self._line(message)

    def _line(self, text: str) -> None:
        print(f"[{self.clock() - self.start:7.1f}s] {text}", file=self.stream, flush=True)


class LiveReporter:
    """A rich live view: a line per active shot and the totals (on a terminal)."""

    ACTIVE = ("waiting", "extracting", "uploading", "submitted", "rendering", "downloading")

    def __init__(self, console: Console, total: int) -> None:
        import time

        from rich.live import Live

        self.console = console
        self.total = total
        self.jobs: dict[str, Any] = {}
        self.start = time.monotonic()
        self._time = time.monotonic
        self.live = Live(console=console, refresh_per_second=4, transient=False,
                         get_renderable=self._render)

    def __enter__(self) -> LiveReporter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.refresh()
        self.live.__exit__(None, None, None)

    def update(self, job: Any) -> None:
        self.jobs[job.identity] = job
        if str(job.status) == "failed":
            self.console.print(Text.assemble(("failed ", "red"), f"{job.label}: {job.error}"))

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    def _render(self) -> Table:
        table = Table(show_header=False, box=None, padding=(0, 1))
        now = self._time()
        for job in self.jobs.values():
            if str(job.status) in self.ACTIVE:
                since = f"{now - job.started:5.1f}s" if job.started else ""
                table.add_row(job.label, str(job.status), since)
        finished = sum(str(j.status) in ("done", "cached") for j in self.jobs.values())
        failed = sum(str(j.status) in ("failed", "skipped") for j in self.jobs.values())
        cost = sum(j.cost or 0.0 for j in self.jobs.values())
        totals = Text.assemble((f"{finished}/{self.total} shots done", "bold"),
                               (f", {failed} failed or skipped", "red") if failed else "")
        table.add_row(totals, f"${cost:.3f}", f"{now - self.start:5.1f}s")
        return table
