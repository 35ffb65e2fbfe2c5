"""Never trust a file blindly, end to end on the embedded simulator: a take lost from the
cache is downloaded again before it is paid for again, a damaged take is never stitched or
chained, `--frozen` changes nothing and names every difference between the lock and the
cache, and a symlinked storyboard keeps its state next to the real file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support_cli import run_json as run

from pipeline.cli import main
from pipeline.store import ObjectStore, read_lock, sha256_file

STORY = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
shots:
  a: {positivePrompt: "first shot on a hill", seed: 11}
  b: {from: a, positivePrompt: "second shot by a river", seed: 12}
  c: {positivePrompt: "an independent shot of the sea", seed: 14}
film:
  shots: [a, b, c]
"""


def plan_status(story: Path) -> dict[str, str]:
    result = CliRunner().invoke(main, ["plan", str(story), "--json"])
    assert result.exit_code == 0, result.stderr
    return {s["id"]: s["status"] for s in json.loads(result.stdout)["shots"]}


def shot(data: dict[str, Any], shot_id: str) -> dict[str, Any]:
    return next(s for s in data["shots"] if s["id"] == shot_id)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    story = tmp_path_factory.mktemp("made") / "story.yaml"
    story.write_text(STORY)
    code, _, err = run(story)
    assert code == 0, err
    return story


@pytest.fixture
def story(made: Path, tmp_path: Path) -> Path:
    """A copy of the finished run's folder: storyboard, lock, cache and film."""
    shutil.copytree(made.parent, tmp_path / "copy")
    return tmp_path / "copy" / "story.yaml"


def take_of(story: Path, key: str) -> Path:
    """The picked take of `key` in the cache, as the lock names it."""
    sha = read_lock(story.with_suffix(".lock")).shots[key].sha256
    return ObjectStore(story.parent / ".storyreel").path_for(sha, "mp4")


def damage(path: Path) -> None:
    """Change bytes in the middle of a file, keeping its size."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def test_a_take_deleted_from_the_cache_is_downloaded_again_not_paid_again(story: Path) -> None:
    take = take_of(story, "a")
    take.unlink()
    assert plan_status(story)["a"] == "missing file: download again"
    code, data, err = run(story)
    assert code == 0, err
    assert shot(data, "a")["status"] == "downloaded again"
    assert "videoInference" not in data["requests"] and data["cost"] == 0
    assert sha256_file(take) == read_lock(story.with_suffix(".lock")).shots["a"].sha256
    assert {shot(data, k)["status"] for k in "bc"} == {"cached"}


def test_a_lost_take_nothing_can_bring_back_is_generated_again_and_plan_says_so(
        story: Path) -> None:
    take_of(story, "a").unlink()
    for journal in (story.parent / ".storyreel").glob("journal.sqlite*"):
        journal.unlink()  # the answer that named the videos is gone too
    assert plan_status(story)["a"] == "missing file: generate again"
    code, data, err = run(story)
    assert code == 0, err
    assert shot(data, "a")["status"] == "done"
    assert data["requests"]["videoInference"] == 1


def test_a_take_whose_bytes_changed_is_not_stitched_into_the_film(story: Path) -> None:
    film = story.with_suffix(".mp4")
    original = film.read_bytes()
    film.unlink()
    damage(take_of(story, "a"))
    code, data, err = run(story)
    assert code == 0, err
    assert "a: a take in the cache is damaged" in err
    assert shot(data, "a")["status"] == "downloaded again"
    assert film.read_bytes() == original


def test_a_damaged_parent_take_is_fetched_again_before_a_frame_is_taken_from_it(
        story: Path) -> None:
    shutil.rmtree(story.parent / ".storyreel" / "frames")  # b's frame must come from a's video
    damage(take_of(story, "a"))
    story.write_text(STORY.replace("second shot by a river", "second shot by a lake"))
    code, data, err = run(story)
    assert code == 0, err
    assert shot(data, "a")["status"] == "downloaded again"
    assert shot(data, "b")["status"] == "done"
    assert sha256_file(take_of(story, "a")) == read_lock(story.with_suffix(".lock")).shots[
        "a"].sha256


def test_frozen_names_a_lock_sha256_the_cache_disagrees_with_and_changes_nothing(
        story: Path) -> None:
    lock = story.with_suffix(".lock")
    sha = read_lock(lock).shots["a"].sha256
    lock.write_text(lock.read_text().replace(sha, "f" * 64))
    before = lock.read_bytes()
    assert plan_status(story)["a"] == "lock mismatch"
    code, data, err = run(story, "--frozen")
    assert code == 1
    assert "a: sha256 changed (ffffffffffff... -> " in err
    assert lock.read_bytes() == before and data == {}


def test_frozen_names_a_damaged_take_and_leaves_it_alone(story: Path) -> None:
    take = take_of(story, "c")
    damage(take)
    before = take.read_bytes()
    code, _, err = run(story, "--frozen")
    assert code == 1
    assert "c: the cached take's content no longer matches its sha256" in err
    assert take.read_bytes() == before


def test_a_run_without_frozen_rewrites_a_lock_entry_from_the_cache(story: Path) -> None:
    lock = story.with_suffix(".lock")
    right = lock.read_bytes()
    sha = read_lock(lock).shots["a"].sha256
    lock.write_text(lock.read_text().replace(sha, "f" * 64))
    code, data, err = run(story)
    assert code == 0, err
    assert "a: the lock file disagrees with the cache" in err
    assert lock.read_bytes() == right


def test_a_symlinked_storyboard_keeps_its_cache_and_lock_next_to_the_real_file(
        tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "story.yaml").write_text(STORY)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = elsewhere / "link.yaml"
    link.symlink_to(real / "story.yaml")
    code, _, err = run(link)
    assert code == 0, err
    assert (real / ".storyreel").is_dir() and (real / "story.lock").is_file()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["link.yaml"]
    again, data, _ = run(link)
    assert again == 0 and data["requests"] == {}
