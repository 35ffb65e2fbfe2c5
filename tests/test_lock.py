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
