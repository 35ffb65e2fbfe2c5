"""The examples and golden storyboards: the model page's five requests round-trip exactly,
every example validates, and each golden storyboard plans exactly its expected JSON."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support_goldens import Golden

from pipeline.cli import main
from pipeline.language.compile import compile_storyboard

ROOT = Path(__file__).parent.parent
VALID = Path(__file__).parent / "data" / "valid"
GOLDEN = sorted(p.name for p in VALID.glob("*.yaml"))
EXAMPLES = ROOT / "examples"
SEEDS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "seed_requests.json").read_text(encoding="utf-8"))
SEED_FILES = {
    "Clay Carousel Orchard Reverie": "clay-carousel.yaml",
    "Stormbound Lighthouse Cliff Passage": "stormbound-lighthouse.yaml",
    "Skybridge Violinist Above Clouds": "skybridge-violinist.yaml",
    "Glacial Monastery Sky Passage": "glacial-monastery.yaml",
    "Windmill Plateau Falcon Chase": "windmill-falcon.yaml",
}
# What storyreel adds to every request; nothing else may differ from the model page.
ADDED = {"deliveryMethod": "async", "includeCost": True}
EVERY_EXAMPLE = sorted(str(p.relative_to(ROOT)) for p in EXAMPLES.rglob("*.yaml")
                       if "scenes" not in p.relative_to(EXAMPLES).parts)


def typed(value: Any) -> Any:
    """JSON equality that tells 5 from 5.0 and True from 1."""
    return json.loads(json.dumps(value), parse_float=lambda s: ("float", s),
                      parse_int=lambda s: ("int", s))


def test_every_seed_request_has_an_example() -> None:
    assert sorted(s["title"] for s in SEEDS) == sorted(SEED_FILES)


@pytest.mark.parametrize("seed", SEEDS, ids=[s["title"] for s in SEEDS])
def test_seed_example_plans_exactly_the_model_page_request(seed: dict[str, Any]) -> None:
    path = EXAMPLES / SEED_FILES[seed["title"]]
    plan = compile_storyboard(path, display=path.name).plan
    (shot,) = plan.shots
    expected = {k: v for k, v in seed["request"].items() if k != "taskUUID"}
    sent = dict(shot.request)
    extra = {k: sent.pop(k) for k in list(sent) if k not in expected}
    assert extra == ADDED
    assert typed(sent) == typed(expected)
    assert list(sent) == list(expected)  # the same fields in the page's order, too
    assert shot.seed_source == "storyboard"


@pytest.mark.parametrize("seed", SEEDS, ids=[s["title"] for s in SEEDS])
def test_seed_example_plan_json_carries_the_request_and_the_published_cost(
        seed: dict[str, Any]) -> None:
    path = EXAMPLES / SEED_FILES[seed["title"]]
    result = CliRunner().invoke(main, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (shot,) = document["shots"]
    expected = {k: v for k, v in seed["request"].items() if k != "taskUUID"}
    assert typed(shot["request"]) == typed({**expected, **ADDED})
    assert shot["estimated_cost"] == pytest.approx(seed["response"]["cost"])
    assert document["estimated_cost"] == pytest.approx(seed["response"]["cost"])


@pytest.mark.parametrize("name", EVERY_EXAMPLE)
def test_every_example_validates(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["validate", name])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{name}: ok: ")
    assert result.stderr == ""


def test_lighthouse_graph_has_the_chain_and_the_bridge_in_each_variant() -> None:
    path = str(EXAMPLES / "lighthouse" / "lighthouse.yaml")
    result = CliRunner().invoke(main, ["graph", path, "--format", "dot"])
    assert result.exit_code == 0, result.output
    edges = set(re.findall(r'^  "([^"]+)" -> "([^"]+)" \[label="([^"]+)"\];$', result.stdout,
                           re.M))
    expected = {(f"{a}[sea={sea}]", f"{b}[sea={sea}]", frame)
                for sea in ("stormy", "calm")
                for a, b, frame in [("trail", "approach", "last"),
                                    ("approach", "arrival", "last"),
                                    ("door", "arrival", "first")]}
    assert edges == expected
    nodes = set(re.findall(r'^  "([^"]+)";$', result.stdout, re.M))
    assert nodes == {f"{s}[sea={sea}]" for s in ("trail", "approach", "door", "arrival")
                     for sea in ("stormy", "calm")}


def test_lighthouse_mermaid_graph_has_the_same_edges() -> None:
    path = str(EXAMPLES / "lighthouse" / "lighthouse.yaml")
    result = CliRunner().invoke(main, ["graph", path])
    assert result.exit_code == 0, result.output
    names = dict(re.findall(r'^  (n\d+)\["([^"]+)"\]$', result.stdout, re.M))
    edges = {(names[a], names[b], label) for a, label, b in
             re.findall(r"^  (n\d+) -->\|([^|]+)\| (n\d+)$", result.stdout, re.M)}
    assert result.stdout.startswith("flowchart LR\n")
    assert ("trail[sea=calm]", "approach[sea=calm]", "last") in edges
    assert ("door[sea=stormy]", "arrival[sea=stormy]", "first") in edges
    assert len(edges) == 6


def test_lighthouse_plan_reuses_the_door_shot_across_variants() -> None:
    path = EXAMPLES / "lighthouse" / "lighthouse.yaml"
    plan = compile_storyboard(path).plan
    doors = {s.identity for s in plan.shots if s.id == "door"}
    approach = plan.shot("approach[sea=calm]")
    assert len(doors) == 1
    assert (approach.takes, approach.pick, approach.needs) == (3, 2, ("trail[sea=calm]",))
    assert approach.estimated_cost == pytest.approx(0.45)
    assert plan.estimated_cost == pytest.approx(1.65)


def test_relay_example_renders_five_films_with_crossfades() -> None:
    path = EXAMPLES / "relay" / "relay.yaml"
    plan = compile_storyboard(path).plan
    assert len(plan.films) == 5
    assert {f.transition for f in plan.films} == {"crossfade"}
    assert {f.seconds for f in plan.films} == {0.5}
    assert "relay-comic-misty.mp4" not in {f.file for f in plan.films}
    bridge = plan.shot("bridge[style=clay,weather=misty]")
    assert set(bridge.needs) == {"alley[style=clay,weather=misty]",
                                 "harbour[style=clay,weather=misty]"}


def test_every_golden_storyboard_has_its_expected_plan() -> None:
    assert len(GOLDEN) >= 3
    assert sorted(p.name for p in VALID.glob("*.plan.json")) == sorted(
        n.replace(".yaml", ".plan.json") for n in GOLDEN)


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_storyboard_plans_exactly_its_expected_json(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, golden: Golden) -> None:
    """Planned from a copy, so no lock or cache ever lands in the test data."""
    folder = tmp_path / "valid"
    shutil.copytree(VALID, folder)
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(main, ["plan", name, "--json"])
    assert result.exit_code == 0, result.output
    golden.check(VALID / name.replace(".yaml", ".plan.json"), result.stdout)
    assert CliRunner().invoke(main, ["validate", name]).exit_code == 0
