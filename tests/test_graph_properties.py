"""Graph properties on random storyboards: the plan order respects every edge, and a back
edge is always reported as a cycle naming every shot on it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import StoryboardError
from pipeline.language.compile import compile_storyboard

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
FRAMES = st.sampled_from(["first", "last", 0, -1, 12])


@dataclass
class Board:
    """A random DAG of shots, written as a storyboard."""

    refs: dict[str, dict[str, Any]]  # shot id -> its from / inputs
    file_order: list[str]
    edges: set[tuple[str, str]] = field(default_factory=set)

    def text(self) -> str:
        shots = {sid: {"positivePrompt": f"shot {sid} of the lighthouse", "seed": n,
                       **self.refs[sid]}
                 for n, sid in enumerate(self.file_order)}
        return json.dumps({"version": 1, "model": "pixverse:1@3", "shots": shots}, indent=2)

    def write(self, folder: Path) -> Path:
        path = folder / "board.yaml"
        path.write_text(self.text(), encoding="utf-8")
        return path

    def descendants(self, start: str) -> set[str]:
        found, todo = {start}, [start]
        while todo:
            node = todo.pop()
            for parent, child in self.edges:
                if parent == node and child not in found:
                    found.add(child)
                    todo.append(child)
        return found


def shot_ref(draw: st.DrawFn, parents: list[str]) -> tuple[dict[str, Any], set[str]]:
    """One way of taking frames from earlier shots: the written refs and the parents used."""
    p, q = draw(st.sampled_from(parents)), draw(st.sampled_from(parents))
    kind = draw(st.sampled_from(["from", "from-frame", "image", "bridge", "from-and-last"]))
    if kind == "from":
        return {"from": p}, {p}
    if kind == "from-frame":
        return {"from": {"shot": p, "frame": draw(FRAMES)}}, {p}
    if kind == "image":
        return {"inputs": {"frameImages": [{"shot": p, "frame": draw(FRAMES)}]}}, {p}
    last = {"image": {"shot": q, "frame": "first"}, "frame": "last"}
    if kind == "bridge":
        first = {"image": {"shot": p, "frame": "last"}, "frame": "first"}
        return {"inputs": {"frameImages": [first, last]}}, {p, q}
    return {"from": p, "inputs": {"frameImages": [last]}}, {p, q}


@st.composite
def boards(draw: st.DrawFn) -> Board:
    count = draw(st.integers(min_value=1, max_value=9))
    ids = [f"s{i}" for i in range(count)]
    refs: dict[str, dict[str, Any]] = {}
    edges: set[tuple[str, str]] = set()
    for i, sid in enumerate(ids):
        if i == 0 or draw(st.integers(0, 3)) == 0:
            refs[sid] = {}
            continue
        refs[sid], parents = shot_ref(draw, ids[:i])
        edges |= {(p, sid) for p in parents}
    return Board(refs, draw(st.permutations(ids)), edges)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dags")


@SETTINGS
@given(board=boards())
def test_every_parent_is_planned_before_its_child(board: Board, folder: Path) -> None:
    compiled = compile_storyboard(board.write(folder))
    order = compiled.graph.order
    assert sorted(order) == sorted(board.file_order)
    position = {key: i for i, key in enumerate(order)}
    assert set(compiled.graph.graph.edges) == board.edges
    for parent, child in board.edges:
        assert position[parent] < position[child]
    layers = compiled.plan.layers
    assert [k for layer in layers for k in layer] == order
    layer_of = {k: n for n, layer in enumerate(layers) for k in layer}
    for parent, child in board.edges:
        assert layer_of[parent] < layer_of[child]
    for shot in compiled.plan.shots:
        assert set(shot.needs) == {p for p, c in board.edges if c == shot.key}


@SETTINGS
@given(board=boards(), data=st.data())
def test_any_back_edge_is_reported_as_a_cycle_naming_every_shot_on_it(
        board: Board, data: st.DataObject, folder: Path) -> None:
    head = data.draw(st.sampled_from(sorted(board.file_order)), label="head")
    tail = data.draw(st.sampled_from(sorted(board.descendants(head))), label="tail")
    # `head` now takes its first frame from `tail`, one of its descendants (or itself).
    board.refs[head] = {"from": tail}
    edges = {(p, c) for p, c in board.edges if c != head} | {(tail, head)}
    with pytest.raises(StoryboardError) as caught:
        compile_storyboard(board.write(folder))
    (problem,) = caught.value.problems
    found = re.fullmatch(r"cycle between shots: (.+)", problem.message)
    assert found is not None, problem.message
    names = found.group(1).split(" -> ")
    assert names[0] == names[-1]
    assert {head, tail} <= set(names)
    for parent, child in zip(names, names[1:]):
        assert (parent, child) in edges
    assert len(set(names)) == len(names) - 1  # a simple cycle: each shot once
    assert problem.hint is not None
    listed = problem.hint.split(";")[0].removeprefix("shots on the cycle: ").split(", ")
    assert sorted(listed) == sorted(set(names))
