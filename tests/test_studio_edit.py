"""Writing `pick` and `seed` into a storyboard: one value changes, every other byte stays."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from conftest import WriteBoard

from pipeline.language.compile import compile_storyboard
from pipeline.language.model import read_storyboard
from pipeline.studio.edit import EditError, edit_shot

HEAD = "version: 1\nmodel: pixverse:1@3\ndefaults: {width: 640, height: 360, duration: 5}\n"


def edit(path: Path, shot: str, key: str, value: int) -> tuple[str, str]:
    """Write the edit; the file's text before and after."""
    change = edit_shot(read_storyboard(path), shot, key, value)
    change.write()
    return change.before, path.read_bytes().decode()


def changed_lines(before: str, after: str) -> list[tuple[str, list[str], list[str]]]:
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    return [(tag, a[i1:i2], b[j1:j2]) for tag, i1, i2, j1, j2 in ops if tag != "equal"]


def test_a_written_pick_is_replaced_where_it_stands_comment_and_all(tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text(HEAD + "shots:\n  a:\n    positivePrompt: a hill   # the opening\n"
                     "    numberResults: 3\n    pick: 2     # the second take, for now\n"
                     "    seed: 5\n")
    before, after = edit(story, "a", "pick", 3)
    assert changed_lines(before, after) == [
        ("replace", ["    pick: 2     # the second take, for now\n"],
         ["    pick: 3     # the second take, for now\n"])]


def test_a_missing_pick_becomes_the_shots_last_line_before_the_comments_that_follow(
        tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text(HEAD + "shots:\n  a:\n    positivePrompt: a hill\n    numberResults: 2\n"
                     "    providerSettings:\n      pixverse:\n        cameraMovement: zoom_in"
                     "  # slow\n\n  # the next shot follows a\n  b:\n    from: a\n"
                     "    positivePrompt: a river\n")
    before, after = edit(story, "a", "pick", 2)
    assert changed_lines(before, after) == [("insert", [], ["    pick: 2\n"])]
    assert after.index("    pick: 2\n") == after.index("# slow\n") + len("# slow\n")
    assert compile_storyboard(story).plan.shot("a").pick == 2


def test_flow_mappings_are_edited_inside_their_braces(tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text(HEAD + "shots:\n  a: {positivePrompt: \"a hill\", numberResults: 2}\n"
                     "  b: {from: a, positivePrompt: 'a river', numberResults: 2, pick: 1}\n")
    before, after = edit(story, "a", "pick", 2)
    assert changed_lines(before, after) == [
        ("replace", ['  a: {positivePrompt: "a hill", numberResults: 2}\n'],
         ['  a: {positivePrompt: "a hill", numberResults: 2, pick: 2}\n'])]
    before, after = edit(story, "b", "pick", 2)
    assert changed_lines(before, after) == [
        ("replace", ["  b: {from: a, positivePrompt: 'a river', numberResults: 2, pick: 1}\n"],
         ["  b: {from: a, positivePrompt: 'a river', numberResults: 2, pick: 2}\n"])]


def test_a_flow_mapping_over_several_lines_gets_the_entry_after_its_last_value(
        tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text(HEAD + "shots:\n  a: {\n    positivePrompt: a hill,\n"
                     "    numberResults: 2   # two\n  }\n")
    before, after = edit(story, "a", "seed", 99)
    assert changed_lines(before, after) == [
        ("replace", ["    numberResults: 2   # two\n"], ["    numberResults: 2, seed: 99   # two\n"])]


def test_a_shot_in_a_scene_is_edited_in_place(tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text(HEAD + "scenes:\n  - name: one\n    shots:\n      a:\n"
                     "        positivePrompt: a hill\n  - name: two\n    shots:\n"
                     "      b:\n        from: a\n        positivePrompt: a river\n"
                     "        numberResults: 2\n")
    before, after = edit(story, "b", "pick", 2)
    assert changed_lines(before, after) == [("insert", [], ["        pick: 2\n"])]
    assert compile_storyboard(story).plan.shot("b").pick == 2


def test_a_shot_of_an_included_scene_is_edited_in_its_own_file(tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text(HEAD + "scenes:\n  - name: one\n    shots:\n      a: {positivePrompt: a hill}\n"
                     "  - include: scenes/two.yaml\n")
    scene = tmp_path / "scenes" / "two.yaml"
    scene.parent.mkdir()
    scene.write_text("# the second scene\nname: two\nshots:\n  b:\n    from: a\n"
                     "    positivePrompt: a river\n    numberResults: 3\n    pick: 1\n")
    main_before = story.read_bytes()
    change = edit_shot(read_storyboard(story), "b", "pick", 3)
    assert change.file == scene
    change.write()
    assert story.read_bytes() == main_before
    assert changed_lines(change.before, scene.read_text()) == [
        ("replace", ["    pick: 1\n"], ["    pick: 3\n"])]


def test_windows_line_endings_and_a_missing_final_newline_are_kept(tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    text = (HEAD + "shots:\n  a:\n    positivePrompt: a hill\n    numberResults: 2")
    story.write_bytes(text.replace("\n", "\r\n").encode())
    edit(story, "a", "pick", 2)
    assert story.read_bytes() == (text + "\n    pick: 2\n").replace("\n", "\r\n").encode()


def test_an_entry_follows_a_block_scalar_that_ends_the_shot(tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text(HEAD + "shots:\n  a:\n    numberResults: 2\n    positivePrompt: |\n"
                     "      a hill\n      at dawn\n  b:\n    positivePrompt: a river\n")
    before, after = edit(story, "a", "pick", 2)
    assert changed_lines(before, after) == [("insert", [], ["    pick: 2\n"])]
    assert compile_storyboard(story).plan.shot("a").request["positivePrompt"] == "a hill\nat dawn\n"


def test_a_seed_written_in_the_defaults_is_overridden_on_the_shot_alone(tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text("version: 1\nmodel: pixverse:1@3\ndefaults:\n  width: 640\n  height: 360\n"
                     "  seed: 7\nshots:\n  a:\n    positivePrompt: a hill\n"
                     "  b:\n    positivePrompt: a river\n")
    before, after = edit(story, "b", "seed", 123)
    assert changed_lines(before, after) == [("insert", [], ["    seed: 123\n"])]
    plan = compile_storyboard(story).plan
    assert (plan.shot("a").seed, plan.shot("b").seed) == (7, 123)


def test_a_templated_value_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    story = tmp_path / "s.yaml"
    story.write_text(HEAD + "vars: {s: 2}\nshots:\n  a:\n    positivePrompt: a hill\n"
                     "    seed: \"{{ s }}\"\n")
    before = story.read_bytes()
    with pytest.raises(EditError, match="not a plain number"):
        edit_shot(read_storyboard(story), "a", "seed", 1)
    assert story.read_bytes() == before


def test_the_lighthouse_example_keeps_every_other_byte(write_board: WriteBoard) -> None:
    source = Path(__file__).parent.parent / "examples" / "lighthouse" / "lighthouse.yaml"
    story = write_board(source.read_text())
    (story.parent / "images").mkdir()
    (story.parent / "images" / "door.png").write_bytes(
        (source.parent / "images" / "door.png").read_bytes())
    before, after = edit(story, "approach", "pick", 3)
    assert changed_lines(before, after) == [("replace", ["    pick: 2\n"], ["    pick: 3\n"])]
    before, after = edit(story, "door", "seed", 31337)
    assert changed_lines(before, after) == [("insert", [], ["    seed: 31337\n"])]
    assert "        - images/door.png\n    seed: 31337\n  arrival:" in after
