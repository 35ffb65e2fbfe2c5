"""`storyreel run` end to end on the embedded simulator: the film that comes out, the seams,
what a second run sends, and what a change re-renders."""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from support_cli import run_json as run
from support_processes import LiveRun

from pipeline.cli import main
from pipeline.media.frames import extract_frame
from pipeline.media.probe import probe_video
from pipeline.store import TaskPhase, read_lock, read_tasks

STORY = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
shots:
  a: {positivePrompt: "first shot on a hill", seed: 11}
  b: {from: a, positivePrompt: "second shot by a river", seed: 12, numberResults: 2, pick: 2}
  c: {from: b, positivePrompt: "third shot in a forest", seed: 13}
  d: {positivePrompt: "an independent shot of the sea", seed: 14}
film:
  shots: [a, b, c, d]
  transition: {type: crossfade, seconds: 0.5}
"""


def psnr(a: Any, b: Any) -> float:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("film")
    story = folder / "story.yaml"
    story.write_text(STORY)
    code, data, err = run(story)
    assert code == 0, err
    return story, data


def shot(data: dict[str, Any], shot_id: str) -> dict[str, Any]:
    return next(s for s in data["shots"] if s["id"] == shot_id)


def test_the_film_lasts_the_frames_it_keeps(first_run: tuple[Path, Any]) -> None:
    """a -> b and b -> c hand over: a cut, each parent's last frame shown once (as its child's
    first); c -> d are not chained and crossfade."""
    story, data = first_run
    film = probe_video(Path(data["films"][0]["path"]))
    clips = [probe_video(Path(shot(data, s)["path"])) for s in "abcd"]
    kept = [clips[0].frames - 1, clips[1].frames - 1, clips[2].frames, clips[3].frames]
    assert abs(film.frames - (sum(kept) - round(0.5 * 24))) <= 1
    assert (film.width, film.height) == (640, 360)
    timeline = data["films"][0]["timeline"]
    assert [e["frames"] for e in timeline["entries"]] == kept
    assert [e["fade_in"] for e in timeline["entries"]] == [0, 0, 0, 12]


def test_each_from_seam_starts_on_the_parents_picked_last_frame(first_run: tuple[Path, Any]
                                                                ) -> None:
    _, data = first_run
    for parent, child in (("a", "b"), ("b", "c")):
        last = extract_frame(Path(shot(data, parent)["path"]), "last")
        first = extract_frame(Path(shot(data, child)["path"]), "first")
        assert psnr(last, first) > 30, (parent, child)


def test_pick_chooses_the_take_that_feeds_the_next_shot(first_run: tuple[Path, Any]) -> None:
    story, data = first_run
    lock = read_lock(story.with_suffix(".lock"))
    takes = lock.shots["b"].video_uuids
    assert len(takes) == 2 and lock.shots["b"].pick == 2
    store_take = Path(shot(data, "b")["path"])
    other = [p for p in store_take.parent.parent.rglob("*.mp4") if p != store_take]
    c_first = extract_frame(Path(shot(data, "c")["path"]), "first")
    picked_last = extract_frame(store_take, "last")
    assert psnr(picked_last, c_first) > 30
    assert other  # the other take is kept in the cache too


def test_a_second_run_sends_nothing_and_keeps_the_film_byte_for_byte(
        first_run: tuple[Path, Any]) -> None:
    story, data = first_run
    film = Path(data["films"][0]["path"])
    before = film.read_bytes()
    lock_before = story.with_suffix(".lock").read_bytes()
    code, again, _ = run(story)
    assert code == 0
    assert again["requests"] == {}
    assert all(s["cached"] for s in again["shots"])
    assert film.read_bytes() == before
    assert story.with_suffix(".lock").read_bytes() == lock_before


def copy_story(tmp_path: Path, first_run: tuple[Path, Any]) -> Path:
    """A new folder with the first run's storyboard, lock and cache."""
    import shutil

    story, _ = first_run
    shutil.copytree(story.parent, tmp_path / "copy")
    return tmp_path / "copy" / "story.yaml"


def generated(data: dict[str, Any]) -> set[str]:
    return {s["id"] for s in data["shots"] if s["status"] == "done"}


def test_changing_a_prompt_rerenders_that_shot_and_its_descendants_only(
        tmp_path: Path, first_run: tuple[Path, Any]) -> None:
    story = copy_story(tmp_path, first_run)
    story.write_text(STORY.replace("second shot by a river", "second shot by a lake"))
    code, data, _ = run(story)
    assert code == 0
    assert generated(data) == {"b", "c"}
    assert data["requests"]["videoInference"] == 2


def test_changing_pick_rerenders_only_the_dependents(tmp_path: Path,
                                                     first_run: tuple[Path, Any]) -> None:
    story = copy_story(tmp_path, first_run)
    story.write_text(STORY.replace("pick: 2", "pick: 1"))
    code, data, _ = run(story)
    assert code == 0
    assert generated(data) == {"c"}
    lock = read_lock(story.with_suffix(".lock"))
    assert lock.shots["b"].pick == 1


def test_frozen_refuses_a_run_that_would_change_the_lock(tmp_path: Path,
                                                          first_run: tuple[Path, Any]) -> None:
    story = copy_story(tmp_path, first_run)
    story.write_text(STORY.replace("third shot in a forest", "third shot in a desert"))
    code, data, err = run(story, "--frozen")
    assert code == 1
    assert "c: would run (request changed)" in err
    assert data == {}


def test_plan_says_why_each_shot_will_run(tmp_path: Path, first_run: tuple[Path, Any]) -> None:
    story = copy_story(tmp_path, first_run)
    story.write_text(STORY.replace("first shot on a hill", "first shot on a dune")
                     .replace("pick: 2", "pick: 1"))
    result = CliRunner().invoke(main, ["plan", str(story), "--json"])
    status = {s["id"]: s["status"] for s in json.loads(result.stdout)["shots"]}
    assert status == {"a": "request changed", "b": "input frame changed",
                      "c": "input frame changed", "d": "cached"}


def test_select_runs_a_shot_with_its_ancestors(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(STORY)
    code, data, _ = run(story, "--select", "+b")
    assert code == 0
    assert generated(data) == {"a", "b"}
    assert data["films"] == []


def test_select_without_cached_parents_stops_before_spending(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(STORY)
    code, data, err = run(story, "--select", "c")
    assert code == 2
    assert "c needs b" in err and "+shot" in err


def test_a_refused_shot_is_reported_with_the_servers_reason(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(textwrap.dedent("""\
        version: 1
        model: pixverse:1@3
        shots:
          a: {positivePrompt: "a shot", width: 640, height: 360,
              inputs: {frameImages: [7f0c1a52-0000-4000-8000-00000000abcd]}}
          b: {from: a, positivePrompt: "after it", width: 640, height: 360}
          c: {positivePrompt: "independent", width: 640, height: 360}
        """))
    code, data, err = run(story)
    assert code == 1
    states = {s["id"]: s["status"] for s in data["shots"]}
    assert states == {"a": "failed", "b": "skipped", "c": "done"}
    assert "7f0c1a52-0000-4000-8000-00000000abcd" in shot(data, "a")["error"]
    assert shot(data, "b")["error"] == "a failed"
    assert data["films"][0]["path"] is None


def test_a_film_in_a_folder_that_does_not_exist_yet_is_written_there(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text("version: 1\nmodel: pixverse:1@3\ndefaults: {resolution: 360p}\n"
                     "shots:\n  a: {positivePrompt: a hill at dawn, seed: 3}\n"
                     "film: {file: renders/today/hill.mp4}\n")
    code, data, err = run(story)
    assert code == 0, err
    assert Path(data["films"][0]["path"]) == tmp_path / "renders" / "today" / "hill.mp4"
    assert probe_video(tmp_path / "renders" / "today" / "hill.mp4").frames == 120


def test_an_invalid_storyboard_spends_nothing(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(STORY.replace("seed: 13", "seed: -13"))
    code, data, err = run(story)
    assert code == 2
    assert "story.yaml:7:" in err and "must be at least 0" in err
    assert not (tmp_path / ".storyreel").exists()


def submitted_tasks(journal: Path) -> list[tuple[str, str]]:
    """(shot key, taskUUID) of the tasks the journal says reached the service, if any yet."""
    return [(t.shot_key, t.task_uuid) for t in read_tasks(journal, TaskPhase.SUBMITTED)]


def test_ctrl_c_keeps_tasks_in_flight_and_a_rerun_resumes_them(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(STORY)
    journal = tmp_path / ".storyreel" / "journal.sqlite"
    with (tmp_path / "run.log").open("wb") as log:
        live = LiveRun(story, os.environ, ["--sim-latency", "3,4"], log)
        try:
            # A shot says "rendering" once its task is submitted and journaled; each takes 3 s
            # or more, so Ctrl-C now finds tasks in flight.
            assert live.wait_line(r"^\[.*\] \S+: rendering$"), "\n".join(live.text)
        finally:
            code = live.interrupt()
    err = "\n".join(live.text)
    assert code == 130, err
    assert "run the same command again to resume" in err
    submitted = submitted_tasks(journal)  # what was in flight when the run was interrupted
    assert submitted
    code, data, err = run(story)
    assert code == 0
    for key, uuid in submitted:
        assert f"{key}: resuming task {uuid}" in err
        assert shot(data, key)["taskUUID"] == uuid
