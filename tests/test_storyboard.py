"""The storyboard stages, one behaviour at a time: load, schema, templates, graph and plan."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jinja2 import StrictUndefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from pipeline.cli import main
from pipeline.errors import Location, Problem, StoryboardError
from pipeline.language.catalog import load_catalog, load_model_spec, schemas_dir
from pipeline.language.compile import Compiled, compile_storyboard
from pipeline.language.load import parse_document
from pipeline.language.plan import Plan, PlannedShot
from pipeline.language.templates import Renderer, deep_merge
from pipeline.store import Lock, LockEntry

WriteBoard = Callable[..., Path]
HEAD = "version: 1\nmodel: pixverse:1@3\n"


@dataclass(frozen=True)
class Locked:
    """A lock entry as the plan reads it."""

    identity: str = ""
    seed: int | None = None
    pick: int = 1
    spots: Mapping[str, Any] = field(default_factory=dict)


def compiled(path: Path, **kwargs: Any) -> Compiled:
    return compile_storyboard(path, display=path.name, **kwargs)


def planned(path: Path, **kwargs: Any) -> Plan:
    return compiled(path, **kwargs).plan


def by_id(plan: Plan) -> dict[str, PlannedShot]:
    return {s.key: s for s in plan.shots}


def problems_of(path: Path, **kwargs: Any) -> list[Problem]:
    with pytest.raises(StoryboardError) as caught:
        compiled(path, **kwargs)
    return caught.value.problems


def only_problem(path: Path, **kwargs: Any) -> Problem:
    found = problems_of(path, **kwargs)
    assert len(found) == 1, [p.render() for p in found]
    return found[0]


# Load: positions and YAML traps


def test_every_value_and_key_keeps_its_line_and_column() -> None:
    doc = parse_document(HEAD + "shots:\n  opening:\n    seed: 7\n", "b.yaml")
    assert doc.values[("shots", "opening", "seed")] == Location("b.yaml", 5, 11)
    assert doc.keys[("shots", "opening", "seed")] == Location("b.yaml", 5, 5)
    assert doc.keys[("shots", "opening")] == Location("b.yaml", 4, 3)


def test_yaml_traps_are_all_reported_at_once_in_line_order() -> None:
    text = HEAD + "vars:\n  a: no\n  b: 2024-01-02\n  c: 1:30\n  a: yes\n"
    with pytest.raises(StoryboardError) as caught:
        parse_document(text, "b.yaml")
    lines = [p.location.line for p in caught.value.problems if p.location]
    messages = " | ".join(p.message for p in caught.value.problems)
    assert lines == [4, 5, 6, 7]
    assert "boolean False" in messages and "date" in messages and "base-60" in messages
    assert "duplicate key 'a' (the first is on line 4)" in messages


def test_quoted_words_and_dates_stay_text() -> None:
    doc = parse_document(HEAD + "vars:\n  a: 'no'\n  b: '2024-01-02'\n  c: \"1:30\"\n", "b.yaml")
    assert doc.data["vars"] == {"a": "no", "b": "2024-01-02", "c": "1:30"}


def test_unclosed_quote_points_where_it_opens_not_at_the_end_of_the_file() -> None:
    text = HEAD + 'shots:\n  a:\n    positivePrompt: "dusk\n    seed: 1\n'
    with pytest.raises(StoryboardError) as caught:
        parse_document(text, "b.yaml")
    (problem,) = caught.value.problems
    assert problem.location == Location("b.yaml", 5, 21)
    assert problem.source_line == '    positivePrompt: "dusk'
    assert problem.hint is not None and "never closed" in problem.hint


def test_tab_indentation_gets_a_hint_from_either_yaml_parser() -> None:
    with pytest.raises(StoryboardError) as caught:
        parse_document(HEAD + "shots:\n  a:\n\tseed: 1\n", "b.yaml")
    (problem,) = caught.value.problems
    assert problem.location == Location("b.yaml", 5, 1)
    assert problem.hint is not None and "tabs" in problem.hint


# Schema


def test_a_bad_shot_id_is_reported_at_that_id_not_at_the_first_shot(
        write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  good:\n    positivePrompt: dusk sky\n"
                       "  bad id:\n    positivePrompt: dusk sky\n")
    problem = only_problem(path)
    assert problem.location == Location("board.yaml", 6, 3)
    assert "a shot id is letters, digits" in problem.message


def test_an_empty_file_is_one_clear_problem(write_board: WriteBoard) -> None:
    problem = only_problem(write_board(""))
    assert problem.message.startswith("the file is empty")
    assert problem.hint is not None and "version: 1" in problem.hint


def test_glue_in_defaults_is_reported_at_its_key(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "defaults:\n  duration: 5\n  pick: 2\n"
                       "shots:\n  a:\n    positivePrompt: dusk sky\n")
    problem = only_problem(path)
    assert problem.location == Location("board.yaml", 5, 3)
    assert problem.message == ("defaults.pick: defaults hold request fields only; from and pick "
                               "belong to a shot")


def test_a_wrong_version_says_what_it_must_be(write_board: WriteBoard) -> None:
    path = write_board('version: "1"\nmodel: pixverse:1@3\nshots:\n  a:\n    positivePrompt: ab\n')
    problem = only_problem(path)
    assert problem.message == "version: must be 1, not '1'"
    assert problem.hint == "write the number without quotes or units: 1"


def test_a_number_written_as_text_is_one_problem_with_a_hint(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: dusk sky\n    duration: '8'\n")
    problem = only_problem(path)
    assert problem.message == "shots.a.duration: '8' is not of type 'number'"
    assert problem.hint == "write the number without quotes or units: 8"


def test_a_missing_request_field_points_at_the_shot(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: dusk sky\n    width: 1280\n")
    problem = only_problem(path)
    assert problem.message == "shots.a.height: width and height go together: height is missing"
    assert problem.location == Location("board.yaml", 4, 3)


# Defaults: shot > scene defaults > storyboard defaults


def test_defaults_merge_deeply_with_the_shot_winning_over_scene_over_file(
        write_board: WriteBoard) -> None:
    path = write_board(HEAD + """\
defaults:
  duration: 8
  negativePrompt: blurry, text
  providerSettings: {pixverse: {style: anime, motionMode: normal}}
scenes:
  - name: coast
    defaults:
      duration: 5
      providerSettings: {pixverse: {style: clay}}
    shots:
      a:
        positivePrompt: a lighthouse at dusk
        providerSettings: {pixverse: {cameraMovement: zoom_in}}
      b:
        positivePrompt: a lighthouse at dawn
        duration: 8
""")
    shots = by_id(planned(path))
    assert shots["a"].request["duration"] == 5
    assert shots["b"].request["duration"] == 8
    assert shots["a"].request["negativePrompt"] == "blurry, text"
    assert shots["a"].request["providerSettings"] == {
        "pixverse": {"style": "clay", "motionMode": "normal", "cameraMovement": "zoom_in"}}
    assert shots["b"].request["providerSettings"] == {
        "pixverse": {"style": "clay", "motionMode": "normal"}}


def test_deep_merge_replaces_lists_and_scalars_and_merges_mappings() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    over = {"a": {"y": [3]}, "b": {"z": 2}}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": [3]}, "b": {"z": 2}}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}


def test_a_template_error_in_defaults_is_reported_at_the_defaults_line(
        write_board: WriteBoard) -> None:
    path = write_board(HEAD + "defaults:\n  negativePrompt: '{{ nope }}'\n"
                       "shots:\n  a:\n    positivePrompt: dusk sky\n")
    problem = only_problem(path)
    assert problem.location == Location("board.yaml", 4, 19)
    assert problem.message == "shots.a.negativePrompt: template error: 'nope' is undefined"


# Variants


VARIANTS = HEAD + """\
variants:
  sea: [stormy, calm]
  time: [dawn, dusk]
  exclude:
    - {sea: calm, time: dawn}
shots:
  trail:
    positivePrompt: "a {{ sea }} sea at {{ time }}"
    seed: 1
  door:
    positivePrompt: a weathered lighthouse door
    seed: 2
"""


def test_variants_form_a_matrix_minus_exclude_with_readable_stable_keys(
        write_board: WriteBoard) -> None:
    plan = planned(write_board(VARIANTS))
    assert [s.key for s in plan.shots] == [
        "trail[sea=stormy,time=dawn]", "door[sea=stormy,time=dawn]",
        "trail[sea=stormy,time=dusk]", "door[sea=stormy,time=dusk]",
        "trail[sea=calm,time=dusk]", "door[sea=calm,time=dusk]"]
    assert by_id(plan)["trail[sea=calm,time=dusk]"].request["positivePrompt"] == \
        "a calm sea at dusk"
    assert [f.variant for f in plan.films] == [
        {"sea": "stormy", "time": "dawn"}, {"sea": "stormy", "time": "dusk"},
        {"sea": "calm", "time": "dusk"}]
    assert len({f.file for f in plan.films}) == 3


def test_a_single_variant_key_reads_like_trail_sea_stormy(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "variants:\n  sea: [stormy]\nshots:\n  trail:\n"
                       "    positivePrompt: 'a {{ sea }} sea'\n")
    assert [s.key for s in planned(path).shots] == ["trail[sea=stormy]"]


def test_identical_requests_across_variants_share_an_identity(write_board: WriteBoard) -> None:
    plan = planned(write_board(VARIANTS))
    doors = {s.identity for s in plan.shots if s.id == "door"}
    trails = {s.identity for s in plan.shots if s.id == "trail"}
    assert len(doors) == 1 and len(trails) == 3
    assert plan.estimated_cost == pytest.approx(4 * 0.15)


def test_an_exclude_that_removes_everything_is_the_only_problem(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "variants:\n  sea: [calm]\n  exclude:\n    - {sea: calm}\n"
                       "shots:\n  a:\n    positivePrompt: 'a {{ sea }} sea'\n")
    problem = only_problem(path)
    assert problem.message == "exclude removes every variant"
    assert problem.location == Location("board.yaml", 5, 3)


# Templates: sandbox, strict undefined, native types


def test_the_sandbox_refuses_attribute_access_with_a_clear_error(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: \"{{ ''.__class__ }}\"\n")
    problem = only_problem(path)
    assert problem.message.startswith("shots.a.positivePrompt: template error: not allowed in "
                                      "the sandbox: access to attribute '__class__'")
    assert problem.location == Location("board.yaml", 5, 21)


@pytest.mark.parametrize("template", [
    "{{ cycler.__init__.__globals__ }} dusk",
    "{{ joiner.__init__.__globals__ }}",
])
def test_the_sandbox_refuses_reaching_for_globals(write_board: WriteBoard, template: str) -> None:
    path = write_board(HEAD + f"shots:\n  a:\n    positivePrompt: \"{template}\"\n")
    assert "not allowed in the sandbox" in only_problem(path).message


@pytest.mark.parametrize("template", ["{{ keeper }}", "the {{ keeper }} climbs"])
def test_an_undefined_name_is_an_error_with_the_closest_name(
        write_board: WriteBoard, template: str) -> None:
    path = write_board(HEAD + "vars:\n  keepers: two old keepers\n"
                       f"shots:\n  a:\n    positivePrompt: '{template}'\n")
    problem = only_problem(path)
    assert problem.message == "shots.a.positivePrompt: template error: 'keeper' is undefined"
    assert problem.hint == "did you mean 'keepers'?"


def test_an_exception_inside_a_template_is_a_problem_not_a_crash(
        write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: '{{ 1 / 0 }} dusk'\n")
    problem = only_problem(path)
    assert problem.message == ("shots.a.positivePrompt: template error: ZeroDivisionError: "
                               "division by zero")


def test_a_single_expression_keeps_its_native_type(write_board: WriteBoard) -> None:
    path = write_board(HEAD + """\
vars: {base: 41, takes: 2, subject: a lighthouse, long: true}
shots:
  a:
    positivePrompt: "{{ subject }} at dusk, shot {{ shot.id }}"
    seed: "{{ base + 1 }}"
    numberResults: "{{ takes }}"
    duration: "{{ 8 if long else 5 }}"
""")
    request = planned(path).shots[0].request
    assert request["seed"] == 42 and isinstance(request["seed"], int)
    assert request["numberResults"] == 2 and isinstance(request["numberResults"], int)
    assert request["duration"] == 8
    assert request["positivePrompt"] == "a lighthouse at dusk, shot a"


# Seeds


UNSEEDED = HEAD + "shots:\n  a:\n    positivePrompt: a lighthouse at dusk\n"


def test_an_unseeded_shot_gets_a_seed_that_is_stable_across_plans(
        write_board: WriteBoard) -> None:
    path = write_board(UNSEEDED)
    first, second = planned(path).shots[0], planned(path).shots[0]
    assert first.seed_source == "new"
    assert 0 <= first.seed < 2**31
    assert first.seed == second.seed == first.request["seed"]
    assert first.identity == second.identity


def test_an_unseeded_shot_takes_its_seed_from_the_lock(write_board: WriteBoard) -> None:
    path = write_board(UNSEEDED)
    fresh = planned(path).shots[0]
    locked = planned(path, lock={"a": Locked(seed=1234)}).shots[0]
    assert (locked.seed, locked.seed_source, locked.request["seed"]) == (1234, "lock", 1234)
    assert locked.identity != fresh.identity


def test_a_written_seed_wins_over_the_lock(write_board: WriteBoard) -> None:
    path = write_board(UNSEEDED + "    seed: 9\n")
    shot = planned(path, lock={"a": Locked(seed=1234)}).shots[0]
    assert (shot.seed, shot.seed_source) == (9, "storyboard")


# Identity


CHAIN = HEAD + """\
shots:
  a:
    positivePrompt: a lighthouse at dusk
    seed: 1
    numberResults: 2
    pick: PICK
  b:
    from: a
    positivePrompt: PROMPT
    seed: 2
  c:
    from: b
    positivePrompt: the keeper lights the lamp
    seed: 3
  sibling:
    from: a
    positivePrompt: gulls circle the tower
    seed: 4
  alone:
    positivePrompt: a fishing boat in the bay
    seed: 5
"""


def identities(write_board: WriteBoard, prompt: str = "the door opens", pick: int = 1
               ) -> dict[str, str]:
    path = write_board(CHAIN.replace("PROMPT", prompt).replace("PICK", str(pick)))
    return {s.key: s.identity for s in planned(path).shots}


def test_a_prompt_change_changes_the_shot_and_its_descendants_only(
        write_board: WriteBoard) -> None:
    before = identities(write_board)
    after = identities(write_board, prompt="the door creaks open")
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"b", "c"}


def test_changing_pick_changes_only_the_dependents(write_board: WriteBoard) -> None:
    before = identities(write_board, pick=1)
    after = identities(write_board, pick=2)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"b", "c", "sibling"}


def test_identity_does_not_depend_on_the_shot_id_or_file_order(write_board: WriteBoard) -> None:
    one = write_board(HEAD + "shots:\n  x:\n    positivePrompt: dusk sky\n    seed: 3\n"
                      "  y:\n    positivePrompt: dawn sky\n    seed: 3\n", "one.yaml")
    two = write_board(HEAD + "shots:\n  later:\n    positivePrompt: dawn sky\n    seed: 3\n"
                      "  renamed:\n    positivePrompt: dusk sky\n    seed: 3\n", "two.yaml")
    first, second = by_id(planned(one)), by_id(planned(two))
    assert first["x"].identity == second["renamed"].identity
    assert first["y"].identity == second["later"].identity


def test_a_child_names_its_parents_and_the_frame_it_takes(write_board: WriteBoard) -> None:
    shots = by_id(planned(write_board(CHAIN.replace("PROMPT", "door").replace("PICK", "2"))))
    assert shots["b"].needs == ("a",)
    assert shots["alone"].needs == ()
    assert shots["b"].request["inputs"] == {"frameImages": [
        {"image": {"source": "shot", "shot": "a", "key": "a", "frame": "last", "take": 2},
         "frame": "first"}]}


# Files: includes and local images


def test_an_include_outside_the_folder_is_refused(write_board: WriteBoard) -> None:
    write_board("shots:\n  b:\n    positivePrompt: a harbour at dawn\n", "scene.yaml")
    path = write_board(HEAD + "scenes:\n  - include: ../scene.yaml\n", "story/board.yaml")
    problem = only_problem(path)
    assert problem.message == "include '../scene.yaml' is outside the storyboard's folder"
    assert problem.location == Location("board.yaml", 4, 14)


def test_an_include_inside_the_folder_is_read(write_board: WriteBoard) -> None:
    write_board("shots:\n  b:\n    positivePrompt: a harbour at dawn\n", "story/scenes/s.yaml")
    path = write_board(HEAD + "scenes:\n  - include: scenes/s.yaml\n", "story/board.yaml")
    assert [s.key for s in planned(path).shots] == ["b"]


def png(width: int = 320, height: int = 320, colour: int = 90) -> bytes:
    """A real PNG, of a size the model takes."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (width, height), (colour, 60, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_local_image_outside_the_folder_is_refused_unless_allowed(
        write_board: WriteBoard, tmp_path: Path) -> None:
    (tmp_path / "keeper.png").write_bytes(png())
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: dusk sky\n    inputs:\n"
                       "      frameImages: [../keeper.png]\n", "story/board.yaml")
    problem = only_problem(path)
    assert problem.message == ("shots.a: image file '../keeper.png' is outside the "
                               "storyboard's folder")
    assert problem.hint is not None and "--allow-outside" in problem.hint
    request = planned(path, allow_outside=True).shots[0].request
    assert request["inputs"]["frameImages"] == [{
        "source": "file", "path": "../keeper.png",
        "sha256": hashlib.sha256(png()).hexdigest()}]


def test_a_local_image_change_changes_the_identity(write_board: WriteBoard,
                                                   tmp_path: Path) -> None:
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: dusk sky\n    seed: 1\n"
                       "    inputs:\n      frameImages: [keeper.png]\n")
    (tmp_path / "keeper.png").write_bytes(png(colour=1))
    before = planned(path).shots[0].identity
    (tmp_path / "keeper.png").write_bytes(png(colour=2))
    assert planned(path).shots[0].identity != before


# Plan JSON and cost


def test_plan_json_has_every_documented_field(write_board: WriteBoard) -> None:
    path = write_board(CHAIN.replace("PROMPT", "door").replace("PICK", "1"))
    result = CliRunner().invoke(main, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {"id", "key", "variant", "needs", "request", "identity", "cached",
            "estimated_cost"} <= set(document["shots"][0])
    shots = {s["key"]: s for s in document["shots"]}
    assert shots["c"]["needs"] == ["b"]
    assert shots["c"]["request"]["taskType"] == "videoInference"
    assert "taskUUID" not in shots["c"]["request"]
    assert shots["a"]["cached"] is False
    assert document["estimated_cost"] == pytest.approx(2 * 0.15 + 4 * 0.15)


def test_a_cached_identity_costs_nothing_to_run(write_board: WriteBoard) -> None:
    path = write_board(UNSEEDED + "    seed: 1\n")
    identity = planned(path).shots[0].identity
    plan = planned(path, is_cached=lambda i: i == identity)
    assert plan.shots[0].cached is True
    assert plan.estimated_cost == 0
    assert plan.estimated_cost_all == pytest.approx(0.15)


@pytest.mark.parametrize(("fields", "cost"), [
    ({"width": 1280, "height": 720, "duration": 5}, 0.15),
    ({"width": 1280, "height": 720, "duration": 8}, 0.299),
    ({"width": 720, "height": 1280, "duration": 8}, 0.299),
    ({"width": 1280, "height": 720, "duration": 5, "numberResults": 3}, 0.45),
    ({"width": 1280, "height": 720, "duration": 8, "numberResults": 4}, 1.196),
    ({"width": 1920, "height": 1080, "duration": 5}, 0.299),
    ({"resolution": "1080p", "duration": 8}, 0.4784),
])
def test_cost_follows_the_price_table(fields: dict[str, Any], cost: float) -> None:
    spec = load_catalog().get("pixverse:1@3")
    found = spec.estimate_cost({"positivePrompt": "dusk sky", **fields})
    assert found.amount == pytest.approx(cost)
    assert found.estimated is False


def test_unpublished_sizes_are_priced_as_estimates() -> None:
    found = load_catalog().get("pixverse:1@3").estimate_cost(
        {"width": 640, "height": 360, "duration": 5})
    assert (found.amount, found.estimated) == (pytest.approx(0.15), True)


def test_a_planned_shot_carries_the_table_price(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: dusk sky\n    width: 1280\n"
                       "    height: 720\n    duration: 8\n    numberResults: 2\n")
    shot = planned(path).shots[0]
    assert shot.estimated_cost == pytest.approx(0.598)
    assert (shot.takes, shot.size, shot.duration) == (2, (1280, 720), 8.0)


def test_plan_json_keeps_warnings_on_stderr_and_stdout_pure_json(
        write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: dusk sky\n"
                       "    resolution: 1080p\n    duration: 8\n")
    result = CliRunner().invoke(main, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["shots"][0]["estimated_cost"] == pytest.approx(0.4784)
    assert result.stderr.startswith(f"{path}:7:15: warning: shots.a.duration: PixVerse does "
                                    "not offer 1080p at 8 s")


# Fast paths must not change results


@pytest.mark.parametrize("text", [
    "a {{ sea }} sea at {{ hour }}\n", "{{ sea }}", "  {{ n }} ", "{{n}}{{ flag }}{{ nothing }}",
    "{{ things }} and {{ table }}", "{{ range }}", "{{ none }}", "{{ sea }} {{ sea | upper }}",
    "{{ sea }} }} {", "{{ sea }}\r\n",
])
def test_plain_name_templates_render_exactly_as_jinja_does(text: str) -> None:
    context = {"sea": "stormy", "hour": "dusk", "n": 7, "flag": True, "nothing": None,
               "things": [1, "x", {"k": 2.5}], "table": {"a": [None]}}
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                               keep_trailing_newline=True)
    single = re.fullmatch(r"\s*\{\{(.*)\}\}\s*", text)
    lone = single is not None and "{{" not in single.group(1)
    expected = (env.compile_expression(single.group(1))(**context) if single and lone
                else env.from_string(text).render(context))
    assert Renderer().render(text, context) == expected
    assert type(Renderer().render(text, context)) is type(expected)


def test_a_plain_name_that_is_not_a_variable_still_fails_as_undefined() -> None:
    with pytest.raises(UndefinedError, match="'sky' is undefined"):
        str(Renderer().render("{{ sky }}", {"sea": "calm"}))
    with pytest.raises(UndefinedError, match="'sky' is undefined"):
        Renderer().render("a {{ sky }}", {"sea": "calm"})


def test_request_checks_shared_by_shape_report_exactly_what_a_fresh_check_does() -> None:
    spec = load_catalog().get("pixverse:1@3")
    fresh = load_model_spec(schemas_dir() / "models" / "pixverse-1-3.json")
    base = {"taskType": "videoInference", "model": "pixverse:1@3", "width": 1280,
            "height": 720, "duration": 5}
    requests = [
        {**base, "positivePrompt": "a lighthouse at dusk", "seed": 1},
        {**base, "positivePrompt": "gulls over the sea", "seed": 99},
        {**base, "positivePrompt": "x", "seed": 5},
        {**base, "positivePrompt": "y" * 3000, "seed": -1},
        {**base, "positivePrompt": "a lighthouse at dusk", "seed": 2**40, "numberResults": 9},
        {**base, "positivePrompt": "a lighthouse", "seed": 3, "width": 1000, "height": 700},
        {**base, "positivePrompt": 42, "seed": "7", "taskUUID": "not-a-uuid"},
        {**base, "positivePrompt": "a lighthouse", "seed": 4.0},
    ]
    for request in requests:
        fresh.shapes.memo.clear()
        assert spec.check_request(request) == fresh.check_request(request), request
    fresh.shapes.memo.clear()
    for request in requests[:2]:
        fresh.check_request(request)
    assert len(fresh.shapes.memo) == 1  # the two valid requests differ only in free fields


@pytest.mark.parametrize("value", ["!!python/object:os.system ls", "!!set {a, b}", "!custom x"])
def test_a_yaml_tag_beyond_plain_values_is_refused(value: str) -> None:
    with pytest.raises(StoryboardError) as caught:
        parse_document(HEAD + f"vars:\n  keeper: {value}\n", "b.yaml")
    (problem,) = caught.value.problems
    assert problem.message.startswith("unsupported YAML tag ")
    assert problem.location == Location("b.yaml", 4, 11)


# Graph


def test_independent_shots_share_a_layer_and_the_critical_path_is_the_longest_chain(
        write_board: WriteBoard) -> None:
    path = write_board(HEAD + """\
shots:
  a: {positivePrompt: dawn sky}
  d: {positivePrompt: dusk sky}
  e: {from: d, positivePrompt: dusk sea}
  b: {from: a, positivePrompt: dawn sea}
  c: {from: b, positivePrompt: dawn shore}
""")
    result = compiled(path)
    assert result.plan.layers == (("a", "d"), ("e", "b"), ("c",))
    assert result.plan.critical_path == ("a", "b", "c")
    assert result.graph.remaining == {"a": 3, "b": 2, "c": 1, "d": 2, "e": 1}


# Load: no file can exhaust the machine


def test_an_alias_bomb_is_refused_at_the_alias_that_passes_the_budget() -> None:
    from pipeline.language.load import ALIAS_BUDGET

    rows = ['  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    rows += [f"  {c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    text = HEAD + "vars:\n" + "\n".join(rows) + "\n"
    with pytest.raises(StoryboardError) as caught:
        parse_document(text, "b.yaml")
    (problem,) = caught.value.problems
    assert problem.message == f"YAML aliases here expand to more than {ALIAS_BUDGET:,} values"
    # the aliases of b to d expand to 8,289 values, each of e's to 7,381 more: its sixth
    # alias passes 50,000
    assert problem.location == Location("b.yaml", 8, 30)
    assert problem.source_line == rows[4]


def test_aliases_and_merge_keys_within_the_budget_still_work() -> None:
    text = HEAD + "vars:\n  base: &b {a: 1, b: [1, 2]}\n  copy: *b\n  more: {<<: *b, c: 3}\n"
    data = parse_document(text, "b.yaml").data["vars"]
    assert data["copy"] == {"a": 1, "b": [1, 2]}
    assert data["more"] == {"a": 1, "b": [1, 2], "c": 3}


def test_a_value_that_contains_itself_is_one_problem() -> None:
    with pytest.raises(StoryboardError) as caught:
        parse_document(HEAD + "vars:\n  a: &x {b: [*x]}\n", "b.yaml")
    (problem,) = caught.value.problems
    assert problem.message == "this anchor contains an alias of itself"
    assert problem.location == Location("b.yaml", 4, 6)


def test_deep_nesting_is_a_problem_not_a_recursion_error() -> None:
    with pytest.raises(StoryboardError) as caught:
        parse_document(HEAD + "vars:\n  x: " + "[" * 900 + "]" * 900 + "\n", "b.yaml")
    (problem,) = caught.value.problems
    assert problem.message == "values nest more than 50 deep"
    assert problem.location == Location("b.yaml", 4, 54)


def test_a_file_that_is_not_utf8_is_refused_at_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_bytes(HEAD.encode() + b"shots:\n  a:\n    positivePrompt: caf\xe9 au lait\n")
    problem = only_problem(path)
    assert problem.message == "not UTF-8 text: byte 0xe9 cannot be read"
    assert problem.location == Location("b.yaml", 5, 24)
    assert problem.source_line == "    positivePrompt: caf\ufffd au lait"


def test_control_characters_are_refused_and_never_printed(write_board: WriteBoard) -> None:
    path = write_board(HEAD + 'shots:\n  a:\n    positivePrompt: "é\x1b]0;owned\x07"\n')
    problem = only_problem(path)
    assert problem.message == "character U+001B is not allowed in YAML"
    assert problem.location == Location("board.yaml", 5, 23)
    assert problem.render().splitlines()[1] == '        positivePrompt: "é␛]0;owned␇"'


# Say every problem at once, and say it right


def test_a_templated_model_is_rendered_for_each_variant(write_board: WriteBoard) -> None:
    path = write_board("""\
        version: 1
        model: "{{ engines[look] }}"
        vars: {engines: {plain: "pixverse:1@3", bold: "pixverse:1@3"}}
        variants: {look: [plain, bold]}
        shots:
          a: {positivePrompt: "a {{ look }} lighthouse"}
        """)
    assert {s.model for s in planned(path).shots} == {"pixverse:1@3"}


def test_a_templated_model_that_fails_is_one_problem_not_one_per_shot(
        write_board: WriteBoard) -> None:
    path = write_board('version: 1\nmodel: "{{ nope }}"\nshots:\n'
                       "  a: {positivePrompt: dusk sky}\n  b: {positivePrompt: dawn sky}\n")
    problem = only_problem(path)
    assert problem.message == "model: template error: 'nope' is undefined"
    assert problem.location == Location("board.yaml", 2, 8)


def test_a_from_whose_template_fails_is_reported_once(write_board: WriteBoard) -> None:
    path = write_board(HEAD + 'shots:\n  a: {positivePrompt: dusk sky}\n'
                       '  b: {from: "{{ nope }}", positivePrompt: dawn sky}\n')
    assert only_problem(path).message == "shots.b.from: template error: 'nope' is undefined"


@pytest.mark.parametrize("mistake, also", [
    ("    pick: 0\n", "shots.b.pick: 0 must be at least 1"),
    ("    from: {frame: 3}\n", "shots.b.from: from is a shot id or {shot: <id>"),
    ("    inputs: [a.png]\n", "shots.b.inputs: inputs is a mapping"),
])
def test_a_schema_problem_in_one_shot_does_not_hide_another_shots_problems(
        write_board: WriteBoard, mistake: str, also: str) -> None:
    path = write_board("version: 2\nmodel: pixverse:1@3\nshots:\n"
                       "  a: {positivePrompt: dusk sky, duration: 6}\n"
                       "  b:\n    positivePrompt: dawn sky\n" + mistake +
                       "film: {shots: [a, c], transition: {type: wipe}}\n")
    messages = [p.message for p in problems_of(path)]
    assert messages[0] == "version: must be 1, not 2"
    assert "shots.a.duration: 6 is not one of 5, 8" in messages
    assert any(m.startswith(also) for m in messages), messages
    assert "film.shots: unknown shot 'c'" in messages
    assert any(m.startswith("film.transition:") for m in messages)


def test_a_problem_seen_again_by_a_later_stage_is_said_once(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: dusk sky\n"
                       "    taskUUID: not-a-uuid\n")
    assert only_problem(path).message.startswith("shots.a.taskUUID: taskUUID is assigned")


def test_a_broken_structure_still_stops_at_the_schema(write_board: WriteBoard) -> None:
    path = write_board("version: 2\nmodel: pixverse:1@3\nshots: [a, b]\n")
    assert [p.message for p in problems_of(path)] == [
        "version: must be 1, not 2", "shots: ['a', 'b'] is not of type 'object'"]


def test_only_the_first_unknown_shots_get_a_hint() -> None:
    from pipeline.language.graph import HINTS

    shots = "".join(f"  shot-{i}:\n    positivePrompt: dusk number {i}\n    from: shot-{i}x\n"
                    for i in range(HINTS + 10))
    with pytest.raises(StoryboardError) as caught:
        parse_and_compile(HEAD + "shots:\n" + shots)
    assert [p.hint for p in caught.value.problems] == [
        f"did you mean 'shot-{i}'?" for i in range(HINTS)] + [None] * 10


def parse_and_compile(text: str) -> Compiled:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "board.yaml"
        path.write_text(text, encoding="utf-8")
        return compiled(path)


def test_a_variant_matrix_too_large_to_expand_is_refused_before_it_is_built(
        write_board: WriteBoard) -> None:
    values = ", ".join(str(i) for i in range(1000))
    path = write_board(HEAD + f"variants:\n  a: [{values}]\n  b: [{values}]\n"
                       "shots:\n  s: {positivePrompt: dusk sky}\n")
    problem = only_problem(path)
    assert problem.message == ("1,000,000 variant combinations of 1 shots make 1,000,000 "
                               "shots; a storyboard makes at most 100,000")


# Pay nothing for what could be known before the run


def test_a_frame_of_a_longer_clip_is_in_range(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: dusk sky, duration: 8}\n"
                       "  b: {from: {shot: a, frame: 191}, positivePrompt: dawn sky}\n"
                       "  c: {from: {shot: a, frame: -192}, positivePrompt: noon sky}\n")
    assert [s.needs for s in planned(path).shots] == [(), ("a",), ("a",)]
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: dusk sky, duration: 8}\n"
                       "  b: {from: {shot: a, frame: 192}, positivePrompt: dawn sky}\n")
    problem = only_problem(path)
    assert problem.message == ("shots.b: frame 192 is not in shot 'a': its clip has 192 frames "
                               "(8 s at 24 fps)")
    assert problem.location == Location("board.yaml", 5, 30)


def test_a_crossfade_that_fits_every_clip_is_planned(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: dusk sky}\n"
                       "  b: {positivePrompt: dawn sky}\n  c: {positivePrompt: noon sky}\n"
                       "film: {transition: {type: crossfade, seconds: 2.5}}\n")
    assert planned(path).films[0].seconds == 2.5
    path.write_text(path.read_text().replace("2.5", "2.6"))
    problem = only_problem(path)
    assert problem.message == ("film.transition: a crossfade of 2.6 s is 62 frames at 24 fps; "
                               "shot 'b' keeps 120 frames in the film and fades in and out "
                               "over 124")
    assert problem.hint == "use at most 2.5 s, or longer shots"


def test_a_film_may_go_into_a_subfolder_that_does_not_exist_yet(
        write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: dusk sky}\n"
                       "film: {file: renders/dusk/film.mp4}\n")
    assert planned(path).films[0].file == "renders/dusk/film.mp4"


def test_a_film_through_a_link_that_leaves_the_folder_is_refused(
        write_board: WriteBoard, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "story").mkdir()
    (tmp_path / "story" / "out").symlink_to(tmp_path / "elsewhere")
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: dusk sky}\n"
                       "film: {file: out/film.mp4}\n", "story/board.yaml")
    assert only_problem(path).message == ("film.file: 'out/film.mp4' is outside the "
                                          "storyboard's folder")


def test_an_image_larger_than_the_model_takes_in_bytes_is_refused(
        write_board: WriteBoard, tmp_path: Path) -> None:
    spec = json.loads((schemas_dir() / "models" / "pixverse-1-3.json").read_text())
    spec["x-storyreel"]["images"]["maxBytes"] = 500
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "pixverse-1-3.json").write_text(json.dumps(spec))
    catalog = load_catalog.__wrapped__(tmp_path)  # type: ignore[attr-defined]
    image = png(320, 320) + b"\0" * 600
    (tmp_path / "noise.png").write_bytes(image)
    path = write_board(HEAD + "shots:\n  a:\n    positivePrompt: dusk sky\n"
                       "    inputs: {frameImages: [noise.png]}\n")
    problem = only_problem(path, catalog=catalog)
    assert problem.message == (f"shots.a: image file 'noise.png' is {len(image):,} bytes; "
                               "pixverse:1@3 takes at most 500")
    assert problem.location == Location("board.yaml", 6, 28)


def test_the_models_image_limits_are_read_from_its_file() -> None:
    limits = load_catalog().get("pixverse:1@3").images
    assert limits is not None
    assert (limits.min_side, limits.max_side, limits.max_bytes, limits.formats) == (
        300, 4000, 20 * 2**20, ("JPEG", "PNG", "WEBP"))


def test_a_lock_seed_outside_the_models_range_is_refused_at_the_locks_line(
        write_board: WriteBoard, tmp_path: Path) -> None:
    from pipeline.store import read_lock, render_lock

    path = write_board(HEAD + "shots:\n  a: {positivePrompt: dusk sky}\n")
    entry = LockEntry("0" * 64, 2**31, "t", ("v",), 0.1, 1, "0" * 64)
    lock_file = tmp_path / "board.lock"
    lock_file.write_text(render_lock(Lock().with_entry("a", entry)))
    problem = only_problem(path, lock=read_lock(lock_file).shots)
    assert problem.message == ("lock: a: seed 2147483648 is not one pixverse:1@3 takes "
                               "(0 to 2147483647)")
    assert problem.location is not None and problem.location.file == str(lock_file)
    assert problem.source_line == "    seed: 2147483648"
    assert planned(path, lock={"a": Locked(seed=2**31 - 1)}).shots[0].seed == 2**31 - 1


def test_validate_reads_the_lock_next_to_the_storyboard(write_board: WriteBoard,
                                                        tmp_path: Path) -> None:
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: dusk sky}\n")
    (tmp_path / "board.lock").write_text("version: 1\nshots:\n  a: {seed: -1}\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert "board.lock:3:6: shot 'a': missing field 'video_uuids'" in result.stderr


def test_a_crossfade_counts_the_frames_a_trimmed_clip_keeps(write_board: WriteBoard) -> None:
    path = write_board(HEAD + "shots:\n  a: {positivePrompt: dusk sky}\n"
                       "  b: {positivePrompt: dawn sky}\n  c: {positivePrompt: noon sky}\n"
                       "film:\n  shots: [a, {shot: b, in: 3}, c]\n"
                       "  transition: {type: crossfade, seconds: 1}\n")
    assert planned(path).films[0].seconds == 1
    path.write_text(path.read_text().replace("seconds: 1}", "seconds: 1.5}"))
    problem = only_problem(path)
    assert problem.message == ("film.transition: a crossfade of 1.5 s is 36 frames at 24 fps; "
                               "shot 'b' keeps 48 frames in the film and fades in and out "
                               "over 72")
    assert problem.hint == "use at most 1 s, or longer shots"
