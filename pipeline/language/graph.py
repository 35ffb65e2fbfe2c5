"""Graph stage: expanded shots -> `ShotGraph` (networkx DiGraph of shot keys).

Every `from` and every `{shot: ...}` frame image is an edge from the shot whose frame is
used to the shot that uses it, within the same variant. Unknown references (with the closest
id as a hint) and cycles (naming every shot on them) are problems. The graph knows its
parallel layers and, for scheduling, each shot's longest remaining path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from ..errors import Problem
from .load import Path_
from .templates import ExpandedShot, shot_key
from .violations import closest_hint

HINTS = 50  # unknown shots that get a "did you mean"


@dataclass(frozen=True)
class FrameRef:
    """A frame of another shot's picked take, used as an image by this shot."""

    shot: str
    frame: str | int
    path: Path_  # where it is written, relative to the shot
    in_glue: bool  # written as `from`


def parse_ref(value: Any) -> tuple[str, str | int] | None:
    """(shot id, frame) for a `{shot, frame}` mapping, else None."""
    if isinstance(value, Mapping) and "shot" in value and isinstance(value["shot"], str):
        return value["shot"], value.get("frame", "last")
    return None


def shot_refs(shot: ExpandedShot) -> list[FrameRef]:
    refs: list[FrameRef] = []
    origin = shot.glue.get("from")
    if isinstance(origin, str):
        refs.append(FrameRef(origin, "last", ("from",), True))
    elif (parsed := parse_ref(origin)) is not None:
        refs.append(FrameRef(parsed[0], parsed[1], ("from",), True))
    images = (shot.fields.get("inputs") or {}).get("frameImages") or []
    for i, item in enumerate(images if isinstance(images, list) else []):
        inner = item.get("image") if isinstance(item, Mapping) and "image" in item else item
        sub: Path_ = ("inputs", "frameImages", i) + (("image",) if inner is not item else ())
        if (parsed := parse_ref(inner)) is not None:
            refs.append(FrameRef(parsed[0], parsed[1], sub, False))
    return refs


@dataclass
class ShotGraph:
    graph: nx.DiGraph[str]
    shots: dict[str, ExpandedShot]
    refs: dict[str, list[FrameRef]]
    layers: list[list[str]]
    remaining: dict[str, float]

    @property
    def order(self) -> list[str]:
        return [key for layer in self.layers for key in layer]

    def parents(self, key: str) -> list[str]:
        return list(self.graph.predecessors(key))

    def critical_path(self) -> list[str]:
        if not self.remaining:
            return []
        key = max(self.layers[0], key=lambda k: self.remaining[k])
        path = [key]
        while succ := list(self.graph.successors(key)):
            key = max(succ, key=lambda k: self.remaining[k])
            path.append(key)
        return path


def build_graph(shots: Sequence[ExpandedShot],
                weight: Mapping[str, float] | None = None) -> tuple[ShotGraph, list[Problem]]:
    graph: nx.DiGraph[str] = nx.DiGraph()
    by_key = {s.key: s for s in shots}
    ids = list(dict.fromkeys(s.id for s in shots))
    refs: dict[str, list[FrameRef]] = {}
    problems: list[Problem] = []
    for shot in shots:
        graph.add_node(shot.key)
        refs[shot.key] = shot_refs(shot)
        for ref in refs[shot.key]:
            target = shot_key(ref.shot, shot.variant)
            if target in by_key:
                graph.add_edge(target, shot.key)
            else:  # a hint costs a pass over every id: the first few are hint enough
                problems.append(_unknown(shot, ref, ids if len(problems) < HINTS else []))
    cycles = _cycles(graph, by_key)
    if cycles:
        return ShotGraph(graph, by_key, refs, [], {}), list(dict.fromkeys(problems + cycles))
    index = {key: i for i, key in enumerate(by_key)}
    layers = [sorted(layer, key=index.__getitem__) for layer in nx.topological_generations(graph)]
    shot_graph = ShotGraph(graph, by_key, refs, layers, _remaining(graph, layers, weight))
    return shot_graph, list(dict.fromkeys(problems))


def _unknown(shot: ExpandedShot, ref: FrameRef, ids: list[str]) -> Problem:
    layer = shot.locate(ref.path) if not ref.in_glue else shot.source.layer
    where = layer.path + ref.path
    if ref.in_glue and isinstance(shot.glue.get("from"), Mapping):
        where += ("shot",)
    elif not ref.in_glue:
        where += ("shot",)
    hint = closest_hint(ref.shot, ids)
    return layer.doc.problem(where, f"shots.{shot.id}: unknown shot {ref.shot!r}", hint=hint)


def _cycles(graph: nx.DiGraph[str], by_key: Mapping[str, ExpandedShot]) -> list[Problem]:
    problems = []
    seen: set[frozenset[str]] = set()
    index = {key: i for i, key in enumerate(by_key)}
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1 and not graph.has_edge(*(2 * tuple(component))):
            continue
        members = sorted(component, key=index.__getitem__)
        ids = frozenset(by_key[k].id for k in members)
        if ids in seen:
            continue
        seen.add(ids)
        problems.append(_cycle_problem(graph, members, by_key, index))
    return problems


def _cycle_problem(graph: nx.DiGraph[str], members: list[str], by_key: Mapping[str, ExpandedShot],
                   index: Mapping[str, int]) -> Problem:
    """One cycle of a strongly connected group, told from its first shot in the file; the
    group's other shots (on other cycles through the same shots) are named too."""
    on_cycle = [a for a, _ in nx.find_cycle(graph.subgraph(members), members[0])]
    start = min(range(len(on_cycle)), key=lambda i: index[on_cycle[i]])
    on_cycle = on_cycle[start:] + on_cycle[:start]
    names = [by_key[k].id for k in on_cycle]
    others = list(dict.fromkeys(by_key[k].id for k in members if by_key[k].id not in names))
    also = f"; also caught in cycles with them: {', '.join(others)}" if others else ""
    first = by_key[on_cycle[0]].source
    return first.doc.problem(
        first.path, f"cycle between shots: {' -> '.join(names + names[:1])}",
        hint=f"shots on the cycle: {', '.join(names)}{also}; "
             "a shot cannot use a frame of itself or of a shot that follows it",
        key=True)


def _remaining(graph: nx.DiGraph[str], layers: list[list[str]],
               weight: Mapping[str, float] | None) -> dict[str, float]:
    """Longest path from each shot to the end of the film, counting the shot itself."""
    rest: dict[str, float] = {}
    for layer in reversed(layers):
        for key in layer:
            own = weight.get(key, 1.0) if weight else 1.0
            rest[key] = own + max((rest[s] for s in graph.successors(key)), default=0.0)
    return rest
