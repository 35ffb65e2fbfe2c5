"""Plan report: a `Plan` in; a table for people and JSON for tools, out."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from ..language.films import shot_sources
from ..language.plan import Plan, PlannedShot, Reason


def plan_table(plan: Plan) -> Table:
    """A row per shot; a model column when the shots use more than one model."""
    table = Table(title=f"plan: {plan.name}", title_justify="left")
    mixed = len({s.model for s in plan.shots}) > 1
    for column in ("shot", "variant", "model", "depends on", "size", "duration", "takes",
                   "cost", "status"):
        if column != "model" or mixed:
            table.add_column(column, justify="right" if column in ("takes", "cost") else "left")
    for shot in plan.shots:
        row = _plan_row(shot)
        table.add_row(*(row[:2] + [shot.model] + row[2:] if mixed else row))
    return table


def _plan_row(shot: PlannedShot) -> list[str]:
    variant = ", ".join(f"{k}={v}" for k, v in shot.variant.items()) or "-"
    needs = ", ".join(n.split("[")[0] for n in shot.needs) or "-"
    cost = f"${shot.estimated_cost:.3f}" + ("~" if shot.cost_is_estimate else "")
    cost = cost if shot.price_known else "unknown"
    takes = str(shot.takes) if shot.takes == 1 else f"{shot.takes} (pick {shot.pick})"
    return [shot.id, variant, needs, f"{shot.size[0]}x{shot.size[1]}", f"{shot.duration:g}s",
            takes, cost, str(shot.reason)]


def print_plan(plan: Plan, console: Console) -> None:
    for warning in plan.warnings:
        console.print(warning.render(), markup=False, highlight=False)
    console.print(plan_table(plan))
    console.print(_totals(plan), markup=False, highlight=False)
    if plan.critical_path:
        path = " -> ".join(k.split("[")[0] for k in plan.critical_path)
        console.print(f"critical path: {path}", markup=False, highlight=False)
    for line in best_frame_lines(plan):
        console.print(line, markup=False, highlight=False)
    for film in plan.films:
        if film.finish is not None:
            console.print(f"{film.file}: {film.finish.summary()}", markup=False,
                          highlight=False)


def best_frame_lines(plan: Plan) -> list[str]:
    """A line per `frame: best`: the frame chosen, or that it is chosen at run time."""
    lines = []
    for shot in plan.shots:
        for image in shot_sources(shot.request):
            if image.get("frame") != "best":
                continue
            chosen = image.get("chosen")
            which = "best (chosen at run time)" if chosen is None else f"{chosen} (best)"
            lines.append(f"{shot.key} takes frame {which} of {image['key']}")
    return lines



def _totals(plan: Plan) -> str:
    unique = len({s.identity for s in plan.shots})
    again = {s.identity for s in plan.shots if s.reason is Reason.DOWNLOAD_AGAIN}
    to_make = {s.identity: s.estimated_cost for s in plan.shots
               if not s.cached and s.identity not in again}
    fetch = f", {len(again)} to download again" if again else ""
    cost = f"${sum(to_make.values()):.3f}"
    if again:  # downloading costs nothing; a failed download is generated again
        cost += f" (${plan.estimated_cost:.3f} if the downloads fail)"
    estimate = " (partly estimated: ~)" if any(s.cost_is_estimate for s in plan.shots) else ""
    films = f"{len(plan.films)} film{'s' if len(plan.films) != 1 else ''}"
    unpriced = len(plan.unpriced)
    unknown = (f" plus {unpriced} shot{'s' if unpriced != 1 else ''} at an unknown price"
               if unpriced else "")
    return (f"{len(plan.shots)} shots ({unique} distinct requests, {len(to_make)} to generate"
            f"{fetch}), {films}; estimated cost {cost}{estimate}{unknown}")


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2, ensure_ascii=False)
