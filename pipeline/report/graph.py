"""Graph report: a `ShotGraph` in; Mermaid or Graphviz text, out."""

from __future__ import annotations

import json

from ..language.graph import ShotGraph


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
