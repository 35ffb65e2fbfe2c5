"""Every model as data: each file's facts carry their sources, capabilities drive the
language (frames, fields, sound, prices, model per shot, scene, defaults or variant), the
editor hints follow the catalog, and `storyreel models` shows it all.

Each model's valid requests plan exactly (tests/data/valid/model-*.yaml, golden JSON) and its
invalid ones fail at their line in its own words (tests/data/invalid/<model>-*.yaml); those
run in test_examples.py and test_invalid_corpus.py. This module checks the rest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from pipeline.cli import main
from pipeline.errors import ExitCode, StoryboardError
from pipeline.language.catalog import load_catalog, schemas_dir
from pipeline.language.compile import compile_storyboard
from pipeline.language.editor import PREFIX, editor_defs

ROOT = Path(__file__).parent.parent
CATALOG = load_catalog()
NEW = ["pixverse:1@5", "klingai:5@1", "klingai:5@2", "klingai:5@3", "bytedance:2@1",
       "bytedance:2@2", "google:3@1", "google:3@3", "minimax:4@1", "vidu:1@1",
       "alibaba:wan@2.6"]
VALID = ROOT / "tests" / "data" / "valid"
INVALID = ROOT / "tests" / "data" / "invalid"
WriteBoard = Callable[[str], Path]


@pytest.fixture
def board(tmp_path: Path) -> WriteBoard:
    def write(text: str) -> Path:
        path = tmp_path / "story.yaml"
        path.write_text(text, encoding="utf-8")
        return path
    return write


def slug(air: str) -> str:
    return air.replace(":", "-").replace("@", "-").replace(".", "-")


# -- the files ------------------------------------------------------------------------------

def test_the_catalog_holds_every_model_the_issue_names() -> None:
    assert set(NEW) | {"pixverse:1@3"} == set(CATALOG.ids)


@pytest.mark.parametrize("air", NEW)
def test_every_rule_and_decision_names_sources_the_file_lists(air: str) -> None:
    ext = CATALOG.get(air).schema["x-storyreel"]
    listed = {s["key"] for s in ext["sources"]}
    assert all(s.get("what") for s in ext["sources"])
    named = [k for r in ext["rules"] for k in r.get("sources", [])]
    named += [k for n in ext["notes"] for k in n["sources"]]
    assert named and set(named) <= listed
    assert all(r.get("sources") for r in ext["rules"]), "a rule without a source"


@pytest.mark.parametrize("air", NEW)
def test_every_model_file_says_what_it_takes_and_makes(air: str) -> None:
    spec = CATALOG.get(air)
    ext = spec.schema["x-storyreel"]
    assert set(spec.frames) <= {"first", "last"} and "first" in spec.frames
    assert spec.sizes["default"] in spec.sizes["table"]
    assert all(w % 2 == 0 and h % 2 == 0 for row in spec.sizes["table"].values()
               for w, h in row), "the simulator and the film need even sizes"
    assert spec.fps in (16, 24, 25)
    images = ext.get("images")
    if images is not None:  # the shape the plan-time image check reads
        assert set(images) == {"minSide", "maxSide", "maxBytes", "formats"}
        assert images["minSide"] < images["maxSide"] and images["maxBytes"] > 0


@pytest.mark.parametrize(("air", "fields", "cost", "estimated"), [
    ("google:3@1", {"width": 1920, "height": 1080, "duration": 8}, 0.8, False),
    ("google:3@1", {"width": 1920, "height": 1080, "duration": 8,
                    "providerSettings": {"google": {"generateAudio": True}}}, 1.2, False),
    ("google:3@3", {"width": 3840, "height": 2160, "duration": 8,
                    "providerSettings": {"google": {"generateAudio": True}}}, 2.8, False),
    ("google:3@3", {"width": 1280, "height": 720, "duration": 4}, 0.4, True),
    ("klingai:5@3", {"duration": 5}, 0.924, False),
    ("klingai:5@1", {"duration": 10}, 0.37, False),
    ("bytedance:2@1", {"resolution": "1080p", "duration": 5}, 0.484, False),
    ("bytedance:2@2", {"resolution": "720p", "duration": 10}, 0.1336, False),
    ("bytedance:2@2", {"resolution": "480p", "duration": 2.5}, 0.0155, False),
    ("minimax:4@1", {"width": 1366, "height": 768, "duration": 10}, 0.56, False),
    ("minimax:4@1", {"width": 1920, "height": 1080}, 0.49, False),
    ("vidu:1@1", {"duration": 4}, 0.176, False),
    ("alibaba:wan@2.6", {"resolution": "1080p", "duration": 15}, 2.25, False),
    ("pixverse:1@5", {"resolution": "1080p", "duration": 5, "numberResults": 2}, 0.598, False),
    ("pixverse:1@5", {"resolution": "720p", "duration": 5}, 0.299, True),
])
def test_cost_follows_each_models_published_prices(
        air: str, fields: dict[str, Any], cost: float, estimated: bool) -> None:
    found = CATALOG.get(air).estimate_cost(fields)
    assert (found.amount, found.estimated, found.known) == (pytest.approx(cost), estimated, True)


def test_a_model_without_a_published_price_costs_an_unknown_amount() -> None:
    found = CATALOG.get("klingai:5@2").estimate_cost({"duration": 5})
    assert (found.known, found.amount) == (False, 0.0)


@pytest.mark.parametrize(("air", "fields", "sound"), [
    ("google:3@3", {}, False),
    ("google:3@3", {"providerSettings": {"google": {"generateAudio": True}}}, True),
    ("alibaba:wan@2.6", {"inputs": {"audio": "https://example.com/a.mp3"}}, True),
    ("alibaba:wan@2.6", {"providerSettings": {"alibaba": {"audio": True}}}, True),
    ("vidu:1@1", {"providerSettings": {"vidu": {"bgm": True}}}, True),
    ("klingai:5@3", {"providerSettings": {"google": {"generateAudio": True}}}, False),
    ("pixverse:1@3", {}, False),
])
def test_what_turns_a_models_sound_on(air: str, fields: dict[str, Any], sound: bool) -> None:
    assert CATALOG.get(air).sound.is_on(fields) is sound


# -- the language -----------------------------------------------------------------------------

def test_model_is_read_from_the_shot_then_defaults_then_the_variant_then_the_file(
        board: WriteBoard) -> None:
    plan = compile_storyboard(board("""\
version: 1
model: pixverse:1@3
variants:
  model: [pixverse:1@5]
scenes:
  - name: one
    defaults: {model: klingai:5@3}
    shots:
      a: {positivePrompt: scene defaults win over the variant}
      b: {positivePrompt: the shot wins, model: vidu:1@1}
  - name: two
    shots:
      c: {positivePrompt: the variant wins over the file}
""")).plan
    assert {s.id: s.model for s in plan.shots} == {
        "a": "klingai:5@3", "b": "vidu:1@1", "c": "pixverse:1@5"}


def test_model_as_a_variant_compares_models_with_a_film_each() -> None:
    plan = compile_storyboard(ROOT / "examples" / "compare-models.yaml").plan
    assert {(s.id, s.model) for s in plan.shots} == {
        (shot, air) for shot in ("dawn", "market", "dusk")
        for air in ("pixverse:1@5", "klingai:5@3")}
    assert sorted(f.file for f in plan.films) == [
        "compare-models-klingai-5-3.mp4", "compare-models-pixverse-1-5.mp4"]
    market = plan.shot("market[model=klingai:5@3]")
    assert market.needs == ("dawn[model=klingai:5@3]",)
    assert "seed" not in market.request and market.seed_source == "none"
    assert "seed" in plan.shot("market[model=pixverse:1@5]").request


def test_a_chain_across_models_plans_each_shot_against_its_own_model() -> None:
    plan = compile_storyboard(ROOT / "examples" / "mixed" / "mixed.yaml").plan
    shots = {s.id: s for s in plan.shots}
    assert [shots[k].model for k in ("harbour", "greeting", "face")] == [
        "klingai:5@3", "google:3@3", "minimax:4@1"]
    assert shots["greeting"].request["inputs"]["frameImages"][0]["image"]["shot"] == "harbour"
    assert shots["greeting"].request["providerSettings"] == {"google": {"generateAudio": True}}
    assert shots["greeting"].estimated_cost == pytest.approx(1.2)  # 8 s with sound
    assert plan.estimated_cost == pytest.approx(0.924 + 1.2 + 0.28)


def test_a_from_into_a_model_that_takes_no_first_frame_is_an_error_at_from(
        board: WriteBoard, tmp_path: Path) -> None:
    """No catalog model refuses a first frame today; one that did would be refused at `from`."""
    models = tmp_path / "schemas" / "models"
    models.mkdir(parents=True)
    for air in ("pixverse:1@3", "klingai:5@3"):
        raw = json.loads(json.dumps(CATALOG.get(air).schema))
        if air == "klingai:5@3":
            raw["x-storyreel"]["frames"] = []
        (models / f"{slug(air)}.json").write_text(json.dumps(raw), encoding="utf-8")
    catalog = load_catalog.__wrapped__(tmp_path / "schemas")
    path = board("""\
version: 1
model: pixverse:1@3
shots:
  a: {positivePrompt: a lighthouse at dusk}
  b:
    model: klingai:5@3
    from: a
    positivePrompt: the lamp turns
""")
    with pytest.raises(StoryboardError) as caught:
        compile_storyboard(path, display="story.yaml", catalog=catalog)
    (problem,) = caught.value.problems
    assert problem.render().splitlines()[0] == (
        "story.yaml:7:5: shots.b.from: Kling 2.1 Master (klingai:5@3) takes no frame images "
        "(text to video only), not a first frame")
    assert problem.hint == "models that take a first frame: pixverse:1@3"


def test_defaults_that_only_some_models_take_are_refused_for_the_others(
        board: WriteBoard) -> None:
    with pytest.raises(StoryboardError) as caught:
        compile_storyboard(board("""\
version: 1
model: pixverse:1@5
defaults: {negativePrompt: blurry}
shots:
  a: {positivePrompt: a lighthouse}
  b: {positivePrompt: a gull, model: google:3@3, width: 1280, height: 720}
  c: {positivePrompt: a wave, model: minimax:4@1, width: 1366, height: 768}
"""))
    messages = sorted(p.message for p in caught.value.problems)
    assert messages == ["shots.b.negativePrompt: google:3@3 has no parameter 'negativePrompt'",
                        "shots.c.negativePrompt: minimax:4@1 has no parameter 'negativePrompt'"]
    assert {p.location.line for p in caught.value.problems if p.location} == {3}


UNPRICED = """\
version: 1
model: klingai:5@2
shots:
  a:
    positivePrompt: mist on a lake
    inputs: {frameImages: [https://example.com/lake.png]}
"""


def test_an_unpriced_model_plans_at_an_unknown_price(board: WriteBoard) -> None:
    path = board(UNPRICED + "  b: {positivePrompt: a heron lands, model: klingai:5@3}\n")
    plan = compile_storyboard(path).plan
    assert plan.unpriced == ["a"]
    document = plan.to_json()
    assert [s["estimated_cost"] for s in document["shots"]] == [None, 0.924]
    assert (document["estimated_cost"], document["unpriced"]) == (0.924, ["a"])
    result = CliRunner().invoke(main, ["plan", str(path)])
    assert "unknown" in result.stdout and "plus 1 shot at an unknown price" in result.stdout


def test_max_cost_refuses_an_unpriced_shot_unless_allowed(board: WriteBoard) -> None:
    path = board(UNPRICED)
    result = CliRunner().invoke(main, ["run", str(path), "--max-cost", "5"])
    assert result.exit_code == ExitCode.USAGE
    assert "--max-cost 5 cannot be kept: no published price for a" in result.stderr
    assert "--allow-unpriced" in result.stderr
    assert not (path.parent / ".storyreel" / "journal.sqlite").exists()  # nothing submitted


@pytest.mark.slow
def test_allow_unpriced_runs_an_unpriced_shot_within_max_cost(board: WriteBoard) -> None:
    path = board(UNPRICED.replace("    inputs:", "    duration: 5\n    inputs:"))
    result = CliRunner().invoke(main, ["run", str(path), "--max-cost", "5", "--allow-unpriced",
                                       "--sim-latency", "0,0.05", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [s["status"] for s in summary["shots"]] == ["done"]


def test_film_size_and_fps_reach_the_film_plan(board: WriteBoard) -> None:
    plan = compile_storyboard(board("""\
version: 1
model: pixverse:1@3
shots:
  a: {positivePrompt: a lighthouse at dusk}
film: {size: 1280x720, fps: 23.976}
""")).plan
    (film,) = plan.films
    assert (film.size, film.fps) == ((1280, 720), 23.976)


# -- the editor hints ---------------------------------------------------------------------

def full_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (schemas_dir() / "storyboard.schema.json").read_text(encoding="utf-8"))
    return schema


def test_the_editor_hints_are_written_from_the_catalog() -> None:
    written = {k: v for k, v in full_schema()["$defs"].items() if k.startswith(PREFIX)}
    assert written == editor_defs(CATALOG), "run: python -m pipeline.language.editor"


def editor_errors(data: Any) -> list[tuple[list[Any], str]]:
    validator = Draft202012Validator(full_schema())
    return [(list(e.absolute_path), e.message) for e in validator.iter_errors(data)]


@pytest.mark.parametrize("path", sorted(
    [p for p in (ROOT / "examples").rglob("*.yaml") if "scenes" not in p.parts]
    + list(VALID.glob("*.yaml"))), ids=lambda p: p.name)
def test_an_editor_finds_nothing_wrong_in_a_valid_storyboard(path: Path) -> None:
    assert editor_errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_an_editor_offers_the_model_ids_and_flags_a_models_wrong_values() -> None:
    assert full_schema()["$defs"]["editorModelIds"]["enum"] == CATALOG.ids
    found = editor_errors(yaml.safe_load("""\
version: 1
model: pixverse:1@5
shots:
  a: {positivePrompt: hi, duration: 7, seed: "{{ s }}"}
  b: {model: google:3@3, positivePrompt: hi, providerSettings: {google: {generateAudio: 1}}}
"""))
    assert sorted(path for path, _ in found) == [
        ["shots", "a", "duration"], ["shots", "b", "providerSettings", "google",
                                     "generateAudio"]]


# -- storyreel models -----------------------------------------------------------------------

def test_models_lists_every_model_with_its_lengths_frames_sound_and_price() -> None:
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert set(rows) == set(CATALOG.ids)
    assert "google.generateAudio" in rows["google:3@3"] and "4, 6, 7, 8" in rows["google:3@3"]
    assert "unknown" in rows["klingai:5@2"]
    assert "first + last" in rows["vidu:1@1"] and "$0.044/s 1080p" in rows["vidu:1@1"]


def test_models_shows_one_models_every_field_rule_and_source() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["models", "vidu:1@1"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for rule in CATALOG.get("vidu:1@1").rules:
        assert rule.id in text
    assert "providerSettings.vidu.movementAmplitude" in text
    assert "negativePrompt" in text and "not taken" in text
    assert "https://runware.ai/docs/models/vidu-q1.md" in text


def test_models_json_is_the_summary_or_the_model_file() -> None:
    summary = json.loads(CliRunner().invoke(main, ["models", "--json"]).stdout)
    assert [row["model"] for row in summary] == CATALOG.ids
    veo = next(row for row in summary if row["model"] == "google:3@1")
    assert veo["price_per_second_with_sound"] == {"1080p": 0.15}
    one = json.loads(CliRunner().invoke(main, ["models", "minimax:4@1", "--json"]).stdout)
    assert one == CATALOG.get("minimax:4@1").schema


def test_an_unknown_model_id_gets_the_closest_one() -> None:
    result = CliRunner().invoke(main, ["models", "google:3@2"])
    assert result.exit_code == ExitCode.USAGE
    assert "unknown model 'google:3@2'" in result.stderr and "did you mean" in result.stderr


# -- the per-model corpus -----------------------------------------------------------------

@pytest.mark.parametrize("air", NEW)
def test_each_model_has_a_golden_plan_and_three_refusals_of_its_own(air: str) -> None:
    assert (VALID / f"model-{slug(air)}.plan.json").is_file()
    cases = sorted(INVALID.glob(f"{slug(air)}-*.yaml"))
    assert len(cases) >= 3
    for case in cases:
        assert f"model: {air}" in case.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted((schemas_dir() / "models").glob("*.json")) + sorted(
    schemas_dir().glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_schema_is_valid_json_schema(path: Path) -> None:
    """The catalog does not check its files against the metaschema when it loads them (the
    command line would pay half a second at every start): this test does, once."""
    Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
