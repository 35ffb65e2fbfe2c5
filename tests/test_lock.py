"""The lock file: deterministic text, round trips, and errors that point at a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ExitCode, Location, StoryreelError
from pipeline.store import (
    HEADER,
    Lock,
    LockEntry,
    LockFileError,
    diff_locks,
    lock_path_for,
    read_lock,
    write_lock,
)

SHA_A = "a" * 64
SHA_B = "b" * 64


def entry(**changes: object) -> LockEntry:
    fields: dict[str, object] = {
        "identity": "3f2a9c1e0b7d4c5e",
        "seed": 1234,
        "task_uuid": "0b9f5e0e-0000-4000-8000-000000000001",
        "video_uuids": ("v-1", "v-2"),
        "cost": 0.35,
        "pick": 2,
        "sha256": SHA_A,
        "probe": {"width": 640, "height": 360, "fps": 24.0, "frames": 120, "codec": "h264"},
        "inputs": {"frames/start.png": SHA_B},
    }
    fields.update(changes)
    return LockEntry(**fields)  # type: ignore[arg-type]


def sample() -> Lock:
    return Lock().with_entry("trail", entry()).with_entry("trail[sea=stormy]", entry(seed=7))


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "lighthouse.lock"


def error_from(path: Path, text: str) -> StoryreelError:
    path.write_text(text)
    with pytest.raises(LockFileError) as caught:
        read_lock(path)
    assert caught.value.exit_code == ExitCode.USAGE
    return caught.value


def test_lock_sits_next_to_the_storyboard(tmp_path: Path) -> None:
    assert lock_path_for(tmp_path / "lighthouse.yaml") == tmp_path / "lighthouse.lock"


def test_missing_lock_is_empty(lock_path: Path) -> None:
    assert read_lock(lock_path) == Lock()


def test_lock_round_trips(lock_path: Path) -> None:
    assert write_lock(lock_path, sample())
    assert read_lock(lock_path) == sample()


def test_lock_text_is_readable_and_sorted(lock_path: Path) -> None:
    lock = Lock().with_entry("zeta", entry()).with_entry("alpha", entry(cost=None))
    write_lock(lock_path, lock)
    text = lock_path.read_text()
    assert text.startswith(HEADER + "version: 1\nshots:\n  alpha:\n")
    assert text.index("  alpha:") < text.index("  zeta:")
    assert "    cost: null\n" in text and text.endswith("\n")


def test_same_content_gives_same_bytes(tmp_path: Path) -> None:
    reordered = entry(
        probe={"codec": "h264", "frames": 120, "fps": 24.0, "height": 360, "width": 640}
    )
    one = Lock().with_entry("b", entry()).with_entry("a", entry(cost=1))
    two = Lock().with_entry("a", entry(cost=1.0)).with_entry("b", reordered)
    write_lock(tmp_path / "one.lock", one)
    write_lock(tmp_path / "two.lock", two)
    assert (tmp_path / "one.lock").read_bytes() == (tmp_path / "two.lock").read_bytes()


def test_unchanged_lock_is_not_rewritten(lock_path: Path) -> None:
    assert write_lock(lock_path, sample()) is True
    before = lock_path.stat().st_mtime_ns
    assert write_lock(lock_path, sample()) is False
    assert lock_path.stat().st_mtime_ns == before
    assert write_lock(lock_path, sample().without(["trail"])) is True


def test_with_entry_and_without_leave_the_original(lock_path: Path) -> None:
    lock = sample()
    assert set(lock.without(["trail", "absent"]).shots) == {"trail[sea=stormy]"}
    assert lock.with_entry("trail", entry(seed=9)).shots["trail"].seed == 9
    assert lock.shots["trail"].seed == 1234


def test_yaml_syntax_error_points_at_the_line(lock_path: Path) -> None:
    error = error_from(lock_path, HEADER + "version: 1\nshots:\n  trail: [unclosed\n")
    assert error.location is not None
    assert error.location.file == str(lock_path) and error.location.line == 5
    assert "not valid YAML" in error.render()


def test_merge_conflict_is_reported_at_its_marker(lock_path: Path) -> None:
    write_lock(lock_path, sample())
    lines = lock_path.read_text().splitlines(keepends=True)
    seed_at = next(i for i, line in enumerate(lines) if "seed:" in line)
    theirs = lines[seed_at].replace("1234", "99")
    conflicted = (
        lines[:seed_at]
        + ["<<<<<<< HEAD\n", lines[seed_at], "=======\n", theirs, ">>>>>>> other\n"]
        + lines[seed_at + 1 :]
    )
    error = error_from(lock_path, "".join(conflicted))
    assert error.location == Location(str(lock_path), seed_at + 1, 1)
    assert error.render().startswith(f"{lock_path}:{seed_at + 1}:1: merge conflict marker")


def test_unknown_version_is_refused_clearly(lock_path: Path) -> None:
    error = error_from(lock_path, HEADER + "version: 2\nshots: {}\n")
    assert "version 2" in error.message and "newer storyreel" in (error.hint or "")
    assert error.location == Location(str(lock_path), 2, 10)


def test_wrong_field_type_points_at_the_field(lock_path: Path) -> None:
    write_lock(lock_path, sample())
    text = lock_path.read_text().replace("seed: 1234", "seed: lots", 1)
    error = error_from(lock_path, text)
    line = text.splitlines().index("    seed: lots") + 1
    assert error.location is not None and error.location.line == line
    assert error.message == "shot 'trail': seed must be an integer, found str"


def test_missing_field_points_at_the_shot(lock_path: Path) -> None:
    write_lock(lock_path, Lock().with_entry("trail", entry()))
    lines = [line for line in lock_path.read_text().splitlines() if "task_uuid" not in line]
    error = error_from(lock_path, "\n".join(lines) + "\n")
    assert "missing field 'task_uuid'" in error.message
    assert error.location is not None and error.location.line == 5


def test_shot_listed_twice_is_refused(lock_path: Path) -> None:
    write_lock(lock_path, Lock().with_entry("trail", entry()))
    text = lock_path.read_text()
    body = text.split("shots:\n", 1)[1]
    error = error_from(lock_path, text + body)
    assert "'trail' appears twice" in error.message


def test_pick_beyond_the_takes_is_refused(lock_path: Path) -> None:
    write_lock(lock_path, Lock().with_entry("trail", entry()))
    error = error_from(lock_path, lock_path.read_text().replace("pick: 2", "pick: 3"))
    assert "pick 3 is not one of its 2 takes" in error.message


def test_empty_lock_file_is_an_empty_lock(lock_path: Path) -> None:
    lock_path.write_text(HEADER)
    assert read_lock(lock_path) == Lock()


def test_diff_names_added_removed_and_changed_fields() -> None:
    old = Lock().with_entry("gone", entry()).with_entry("trail", entry())
    changed = entry(seed=99, inputs={"frames/start.png": SHA_A, "new.png": SHA_B})
    new = Lock().with_entry("trail", changed).with_entry("arrival", entry())
    assert diff_locks(old, new) == [
        "arrival: added",
        "gone: removed",
        "trail: seed changed (1234 -> 99)",
        "trail: inputs changed (frames/start.png: bbbbbbbbbbbb... -> aaaaaaaaaaaa...; "
        "new.png added)",
    ]


def test_diff_of_equal_locks_is_empty() -> None:
    assert diff_locks(sample(), sample()) == []


def test_the_lock_text_does_not_depend_on_libyaml(lock_path: Path) -> None:
    """Reading and writing go through libyaml when PyYAML has it (a no-op run of many shots
    spends most of its time there otherwise); the bytes must be the pure-Python dumper's, or
    a lock written before would change without a reason."""
    import yaml

    from pipeline.store.lock import render_lock

    odd = {"width": 640, "note": "ünïcode — «quotes» 'single' \"double\" : # & * ! | > %",
           "long": "word " * 40, "empty": "", "yes": "yes", "null": "null", "octal": "0755"}
    lock = sample().with_entry("bridge[style=clay,weather=misty]", entry(probe=odd))
    text = render_lock(lock)
    shots = {key: value.to_data() for key, value in lock.shots.items()}
    pure = yaml.dump({"shots": shots}, Dumper=yaml.SafeDumper, sort_keys=True,
                     default_flow_style=False, allow_unicode=True, width=100)
    assert text == f"{HEADER}version: 1\n{pure}"
    write_lock(lock_path, lock)
    assert read_lock(lock_path) == lock


# The lock is input: every problem at its line, nothing that can exhaust the machine


def test_every_broken_entry_is_reported_at_its_line_with_the_source_and_a_caret(
        lock_path: Path) -> None:
    write_lock(lock_path, Lock().with_entry("a", entry()).with_entry("b", entry())
               .with_entry("c", entry()))
    lines = lock_path.read_text().splitlines()
    seed_a = lines.index("    seed: 1234") + 1
    cost_c = max(i for i, line in enumerate(lines) if line.startswith("    cost:")) + 1
    lines[seed_a - 1] = "    seed: true"
    lines[cost_c - 1] = "    cost: -3"
    error = error_from(lock_path, "\n".join(lines) + "\n")
    assert isinstance(error, LockFileError)
    assert [(p.location.line if p.location else 0, p.message) for p in error.problems] == [
        (seed_a, "shot 'a': seed must be an integer, found bool"),
        (cost_c, "shot 'c': cost -3 is negative")]
    assert f"{lock_path}:{seed_a}:11: shot 'a'" in error.render()
    assert "\n        seed: true\n              ^\n" in error.render()


def test_a_lock_that_is_not_utf8_is_refused_at_the_line_and_column(lock_path: Path) -> None:
    lock_path.write_bytes(HEADER.encode() + b"version: 1\nshots:\n  caf\xe9: {}\n")
    with pytest.raises(LockFileError) as caught:
        read_lock(lock_path)
    error = caught.value
    assert error.location == Location(str(lock_path), 4, 6)
    assert "not UTF-8" in error.message


def test_a_control_character_in_the_lock_is_refused_at_its_position(lock_path: Path) -> None:
    error = error_from(lock_path, HEADER + "version: 1\nshots:\n  é\x1b: {}\n")
    assert error.location == Location(str(lock_path), 4, 4)
    assert "U+001B" in error.message
    assert "␛" in error.render() and "\x1b" not in error.render()


def test_a_lock_that_is_a_folder_is_a_clear_error(lock_path: Path) -> None:
    lock_path.mkdir()
    with pytest.raises(LockFileError) as caught:
        read_lock(lock_path)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "is a folder" in caught.value.render()


BOMB = """\
version: 1
shots:
  trail:
    identity: x
    seed: 1
    task_uuid: t
    video_uuids: [v]
    cost: 0.1
    pick: 1
    sha256: {sha}
    probe: {{}}
    inputs: {{}}
  bomb:
    probe: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]
    more: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    more2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    more3: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    more4: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    more5: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    more6: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    more7: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    more8: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_an_alias_bomb_in_the_lock_is_never_expanded(lock_path: Path) -> None:
    error = error_from(lock_path, BOMB.format(sha=SHA_A))
    assert error.location == Location(str(lock_path), 15, 5)
    assert error.message == "shot 'bomb': unknown field 'more'"


def test_a_probe_that_is_not_a_flat_mapping_is_refused_where_the_alias_names_it(lock_path: Path) -> None:
    text = BOMB.format(sha=SHA_A).replace("  bomb:\n    probe:", "  bomb:\n    extra:")
    trail = text.split("  trail:\n")[1].split("  bomb:")[0]
    text += "  other:\n" + trail.replace("probe: {}", "probe: *c")
    problems = error_from(lock_path, text).problems  # type: ignore[attr-defined]
    assert [(p.location.line, p.location.col, p.message) for p in problems] == [
        (14, 5, "shot 'bomb': unknown field 'extra'"),
        (31, 5, "shot 'other': probe: expected a mapping, found list")]


def test_a_value_that_contains_itself_is_refused(lock_path: Path) -> None:
    error = error_from(lock_path, "version: 1\nshots: &s {a: *s}\n")
    assert error.message == "shot 'a': unknown field 'a'"


def test_deep_nesting_is_refused_without_recursing(lock_path: Path) -> None:
    error = error_from(lock_path, "version: 1\nshots: " + "[" * 900 + "]" * 900 + "\n")
    assert "nest" in error.message


def test_probe_values_are_plain(lock_path: Path) -> None:
    write_lock(lock_path, Lock().with_entry("trail", entry()))
    error = error_from(lock_path, lock_path.read_text().replace("width: 640", "width: [640]"))
    assert error.message == "shot 'trail': probe values are plain text or numbers, found list"


def test_an_entry_remembers_where_its_fields_were_written(lock_path: Path) -> None:
    write_lock(lock_path, Lock().with_entry("trail", entry()))
    lines = lock_path.read_text().splitlines()
    spot = read_lock(lock_path).shots["trail"].spots["seed"]
    assert spot.location == Location(str(lock_path), lines.index("    seed: 1234") + 1, 11)
    assert spot.source_line == "    seed: 1234"
