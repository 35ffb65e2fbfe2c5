"""Selection: dbt's grammar over the shot graph -> the shot keys a run should make.

`shot` selects that shot, `+shot` it and everything it depends on, `shot+` it and everything
that depends on it, `@shot` it, its descendants and all their ancestors. Several selectors
are a union. A selected shot whose parent is not selected needs that parent's take in the
cache, or the run stops before it starts with a clear message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx

from ..errors import UsageError
from .compile import Compiled
from .violations import closest_hint


def select_keys(compiled: Compiled, selectors: Sequence[str],
                is_cached: Callable[[str], bool]) -> set[str] | None:
    """The selected shot keys, or None for the whole storyboard."""
    if not selectors:
        return None
    graph = compiled.graph.graph
    ids = list(dict.fromkeys(s.id for s in compiled.plan.shots))
    keys: set[str] = set()
    for selector in selectors:
        keys |= _one(selector.strip(), compiled, graph, ids)
    _check_parents(compiled, keys, is_cached)
    return keys


def _one(selector: str, compiled: Compiled, graph: nx.DiGraph[str], ids: list[str]) -> set[str]:
    at = selector.startswith("@")
    up = selector.startswith("+") or at
    down = selector.endswith("+") or at
    name = selector.strip("@+")
    if name not in ids:
        raise UsageError(f"--select {selector!r}: no shot {name!r}",
                         hint=closest_hint(name, ids) or f"shots: {', '.join(ids)}")
    roots = {s.key for s in compiled.plan.shots if s.id == name}
    chosen = set(roots)
    for key in roots:
        if down:
            chosen |= nx.descendants(graph, key)
        if up:
            chosen |= nx.ancestors(graph, key)
    if at:
        for key in list(chosen):
            chosen |= nx.ancestors(graph, key)
    return chosen


def _check_parents(compiled: Compiled, keys: set[str], is_cached: Callable[[str], bool]) -> None:
    missing = []
    for shot in compiled.plan.shots:
        if shot.key not in keys:
            continue
        for parent in shot.needs:
            if parent not in keys and not is_cached(compiled.plan.shot(parent).identity):
                missing.append(f"{shot.key} needs {parent}")
    if missing:
        raise UsageError("--select leaves out shots whose takes are not made yet: "
                         + "; ".join(sorted(set(missing))),
                         hint="select them too, e.g. with +shot for a shot and its ancestors")
