"""The studio over HTTP: the board's JSON, media by content hash with Range, what cannot be
reached, the session token, the edits, runs from the page and from the command line, and
the page following the storyboard on disk."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import WriteBoard
from markupsafe import escape
from support_processes import LiveRun, simulator, stop
from support_studio import listening, render, token_of

from pipeline.cli import main
from pipeline.simulator.options import SimOptions
from pipeline.store import ObjectStore, TaskPhase, read_tasks
from pipeline.studio.review import ReviewConfig
from pipeline.studio.server import Served, serving

STORY = """\
# a small board: a chain with two takes, and a clip in each container
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
shots:
  a:
    positivePrompt: a hill at dawn
    seed: 11
    numberResults: 2
    pick: 1
  b: {from: a, positivePrompt: "a river bend", seed: 12}
  w: {positivePrompt: a snowy peak, seed: 13, outputFormat: WEBM}
  m: {positivePrompt: a quiet beach, seed: 14, outputFormat: MOV}
film:
  shots: [a, b]
"""
FAST = SimOptions(latency=(0.0, 0.05))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("studio") / "story.yaml"
    path.write_text(STORY)
    render(path)
    return path


@pytest.fixture(scope="module")
def studio(story: Path) -> Iterator[Served]:
    with serving(ReviewConfig(story, "story.yaml", simulator=FAST)) as served:
        yield served


@pytest.fixture
def client(studio: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=studio.url, timeout=120) as client:
        yield client


@pytest.fixture
def token(client: httpx.Client) -> str:
    return token_of(client.get("/").text)


@pytest.fixture
def restored(story: Path) -> Iterator[Path]:
    """The storyboard, put back as it was after the test."""
    before = story.read_bytes()
    yield story
    story.write_bytes(before)


def board(client: httpx.Client) -> dict[str, Any]:
    answer = client.get("/api/board")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def shot(data: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in data["shots"] if s["key"] == key)


def line_changes(before: str, after: str) -> list[tuple[str, str]]:
    diff = difflib.ndiff(before.splitlines(), after.splitlines())
    return [(line[0], line[2:]) for line in diff if line[:1] in "+-"]


def test_the_board_has_the_shape_the_page_and_scripts_rely_on(client: httpx.Client) -> None:
    data = board(client)
    assert [s["key"] for s in data["shots"]] == ["a", "b", "w", "m"]
    a = shot(data, "a")
    assert {k: a[k] for k in ("id", "variant", "pick", "status", "cost")} == {
        "id": "a", "variant": {}, "pick": 1, "status": "cached", "cost": a["cost"]}
    assert [t["n"] for t in a["takes"]] == [1, 2]
    assert all(re.fullmatch(r"/media/[0-9a-f]{64}\.mp4", t["video"]) for t in a["takes"])
    assert all(re.fullmatch(r"/poster/[0-9a-f]{64}\.jpg", t["poster"]) for t in a["takes"])
    [seam] = data["seams"]
    assert (seam["parent"], seam["child"]) == ("a", "b") and seam["psnr"] > 30
    [film] = data["films"]
    assert film["variant"] == {} and re.fullmatch(r"/media/[0-9a-f]{64}\.mp4", film["video"])
    assert data["to_run"] == 0 and data["estimate"] == 0


def test_media_are_served_by_hash_with_the_type_of_their_format(client: httpx.Client) -> None:
    data = board(client)
    expected = {"a": "video/mp4", "w": "video/webm", "m": "video/quicktime"}
    for key, content_type in expected.items():
        answer = client.get(shot(data, key)["takes"][0]["video"])
        assert answer.status_code == 200
        assert answer.headers["content-type"] == content_type
        assert answer.headers["accept-ranges"] == "bytes"
    poster = client.get(shot(data, "a")["takes"][1]["poster"])
    assert poster.headers["content-type"] == "image/jpeg" and poster.content[:3] == b"\xff\xd8\xff"
    frame = client.get(data["seams"][0]["given"])
    assert frame.headers["content-type"] == "image/png"
    assert client.get(data["films"][0]["video"]).headers["content-type"] == "video/mp4"


def test_a_range_request_gets_those_bytes_so_a_browser_can_seek(client: httpx.Client,
                                                                story: Path) -> None:
    video = shot(board(client), "a")["takes"][0]["video"]
    whole = client.get(video).content
    part = client.get(video, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert part.content == whole[100:200]
    tail = client.get(video, headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == whole[-64:]
    assert client.get(video, headers={"Range": f"bytes={len(whole) + 10}-"}).status_code == 416


def test_nothing_but_objects_and_films_can_be_reached(client: httpx.Client, story: Path) -> None:
    secret = story.parent.parent / "secret.mp4"
    secret.write_bytes(b"not for the browser")
    store_objects = story.parent / ".storyreel" / "objects"
    fake = "ab" * 32
    (store_objects / fake[:2]).mkdir(exist_ok=True)
    link = store_objects / fake[:2] / f"{fake[2:]}.mp4"
    link.symlink_to(secret)
    try:
        paths = [
            "/media/../story.yaml", "/media/..%2Fstory.yaml", "/media/..%2F..%2Fsecret.mp4",
            "/media/%2e%2e%2f%2e%2e%2fsecret.mp4", "/media/story.yaml", "/media/%2Fetc%2Fpasswd",
            f"/media/{fake}.mp4", f"/media/{'0' * 64}.mp4", f"/media/{fake}.yaml",
            f"/media/{fake.upper()}.mp4", "/static/..%2Fapp.py", "/static/../review.py",
            f"/poster/{fake}.jpg", "/media/%2e%2e/story.lock",
        ]
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert b"not for the browser" not in answer.content
            assert b"version: 1" not in answer.content
    finally:
        link.unlink()
        secret.unlink()


def test_state_changing_requests_without_the_session_token_get_403(
        client: httpx.Client, story: Path) -> None:
    before = story.read_bytes()
    for path, body in (("/api/pick", {"shot": "a", "take": 2}), ("/api/reroll", {"shot": "a"}),
                       ("/api/run", {})):
        assert client.post(path, json=body).status_code == 403
        wrong = client.post(path, json=body, headers={"X-Studio-Token": "guess"})
        assert wrong.status_code == 403
        # A form post from another site cannot set the header, nor send JSON with the token.
        assert client.post(path, data={"shot": "a"}).status_code == 403
    assert story.read_bytes() == before


def test_a_request_for_another_host_name_is_refused(client: httpx.Client) -> None:
    """A page of another site whose name was pointed at 127.0.0.1 cannot read the board."""
    assert client.get("/api/board", headers={"Host": "attacker.example"}).status_code == 400


def test_pick_writes_only_the_pick_line_and_says_what_will_run(
        client: httpx.Client, token: str, restored: Path) -> None:
    before = restored.read_text()
    answer = client.post("/api/pick", json={"shot": "a", "take": 2},
                         headers={"X-Studio-Token": token})
    assert answer.status_code == 200, answer.text
    assert line_changes(before, restored.read_text()) == [("-", "    pick: 1"), ("+", "    pick: 2")]
    data = answer.json()
    assert data["will_run"] == [{"key": "b", "reason": "pick changed", "cost": 0.15}]
    assert data["estimate"] == 0.15
    after = board(client)
    assert shot(after, "a")["pick"] == 2 and shot(after, "a")["status"] == "cached"
    assert [t["n"] for t in shot(after, "a")["takes"] if t["picked"]] == [2]
    assert shot(after, "b")["status"] == "pick changed"


def test_a_pick_out_of_range_or_of_an_unknown_shot_changes_nothing(
        client: httpx.Client, token: str, story: Path) -> None:
    before = story.read_bytes()
    headers = {"X-Studio-Token": token}
    assert client.post("/api/pick", json={"shot": "a", "take": 3}, headers=headers).status_code == 400
    assert client.post("/api/pick", json={"shot": "a", "take": True}, headers=headers).status_code == 400
    assert client.post("/api/pick", json={"shot": "zz", "take": 1}, headers=headers).status_code == 404
    assert story.read_bytes() == before


def test_another_take_writes_a_new_seed(client: httpx.Client, token: str,
                                        restored: Path) -> None:
    before = restored.read_text()
    answer = client.post("/api/reroll", json={"shot": "b"}, headers={"X-Studio-Token": token})
    assert answer.status_code == 200, answer.text
    seed = answer.json()["seed"]
    assert seed != 12
    assert line_changes(before, restored.read_text()) == [
        ("-", '  b: {from: a, positivePrompt: "a river bend", seed: 12}'),
        ("+", f'  b: {{from: a, positivePrompt: "a river bend", seed: {seed}}}')]
    assert shot(board(client), "b")["status"] == "request changed"


def test_a_run_from_the_page_streams_each_shots_status(studio: Served, client: httpx.Client,
                                                       token: str, restored: Path) -> None:
    headers = {"X-Studio-Token": token}
    client.post("/api/reroll", json={"shot": "b"}, headers=headers)
    with listening(f"{studio.url}api/events") as events:
        answer = client.post("/api/run", json={}, headers=headers)
        assert answer.status_code == 202, answer.text
        seen = events.wait_for(lambda items: any(k == "run" and d["state"] != "started"
                                                 for k, d in items))
    statuses = [d["status"] for k, d in seen if k == "job" and d["keys"] == ["b"]]
    assert statuses[0] == "waiting" and "rendering" in statuses and statuses[-1] == "done"
    finished = [d for k, d in seen if k == "run" and d["state"] == "finished"]
    assert finished and finished[0]["complete"]
    assert shot(board(client), "b")["status"] == "cached"


def test_an_edit_saved_on_disk_reaches_the_page(studio: Served, client: httpx.Client,
                                                restored: Path) -> None:
    with listening(f"{studio.url}api/events") as events:
        restored.write_text(restored.read_text().replace("a river bend", "a river at noon"))
        events.wait_for(lambda items: any(k == "board" for k, _ in items))
    assert shot(board(client), "b")["status"] == "request changed"
    assert shot(board(client), "b")["prompt"] == "a river at noon"


def test_a_storyboard_that_does_not_compile_shows_its_problems_until_fixed(
        client: httpx.Client, restored: Path) -> None:
    restored.write_text(restored.read_text().replace("seed: 13", "seed: no"))
    answer = client.get("/api/board")
    assert answer.status_code == 422
    assert "story.yaml:12:43: 'no' is read by YAML as the boolean False" in answer.json()["problems"]
    page = client.get("/").text
    assert "data-problems" in page and "is read by YAML as the boolean False" in page
    restored.write_text(restored.read_text().replace("seed: no", "seed: 13"))
    assert client.get("/api/board").status_code == 200


def test_a_run_from_the_command_line_shows_up_live(studio: Served, client: httpx.Client,
                                                   restored: Path, tmp_path: Path) -> None:
    restored.write_text(restored.read_text().replace("seed: 14", "seed: 41"))
    seen: list[str] = []
    with listening(f"{studio.url}api/events") as events, open(tmp_path / "run.log", "wb") as log:
        run = LiveRun(restored, os.environ, ["--sim-latency", "1,1.5"], log)
        try:
            count = 0
            while run.process.poll() is None or count < len(events.items):
                count = len(events.wait_for(lambda items, n=count: len(items) > n
                                            or run.process.poll() is not None))
                seen.append(shot(board(client), "m")["status"])
            assert run.process.wait(60) == 0
        finally:
            stop(run.process)
    assert "board" in events.kinds()
    assert "rendering" in seen
    assert shot(board(client), "m")["status"] == "cached"


def test_a_paid_run_asks_first_and_no_answer_or_log_carries_the_key(
        story: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-studio-secret-4f1d9e"
    folder = tmp_path / "paid"
    shutil.copytree(story.parent, folder)
    paid = folder / "story.yaml"
    paid.write_text(paid.read_text().replace("seed: 13", "seed: 31"))
    caplog.set_level("DEBUG")
    with simulator(tmp_path / "sim", latency=(0.0, 0.05)) as sim:
        environ = {"RUNWARE_API_KEY": key, "RUNWARE_BASE_URL": sim.url}
        with serving(ReviewConfig(paid, "story.yaml", backend="runware", environ=environ)) as s, \
                httpx.Client(base_url=s.url, timeout=120) as client, \
                listening(f"{s.url}api/events") as events:
            page = client.get("/").text
            headers = {"X-Studio-Token": token_of(page)}
            asked = client.post("/api/run", json={}, headers=headers)
            assert asked.status_code == 409
            assert asked.json()["needs_confirmation"] and asked.json()["estimate"] == 0.15
            assert client.post("/api/run", json={"confirm": 0.1}, headers=headers).status_code == 409
            started = client.post("/api/run", json={"confirm": 0.15}, headers=headers)
            assert started.status_code == 202
            events.wait_for(lambda items: any(k == "run" and d["state"] == "finished"
                                              for k, d in items))
            answers = [page, client.get("/api/board").text, client.get("/").text,
                       *events.text]
    assert shot(json.loads(answers[1]), "w")["status"] == "cached"
    for text in [*answers, *(r.getMessage() for r in caplog.records)]:
        assert key not in text


def test_the_export_is_a_folder_of_relative_links_that_all_resolve(story: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["review", str(story), "--export", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    links = re.findall(r'(?:src|href|poster)="([^"]+)"', page)
    assert links and not [link for link in links if link.startswith(("/", "http"))]
    missing = [link for link in links if not link.startswith(("#", "data:"))
               and not (out / link).is_file()]
    assert missing == []
    assert "studio-token" not in page and 'class="pick"' not in page


def test_a_shot_that_failed_shows_the_reason_from_the_last_run(story: Path,
                                                              tmp_path: Path) -> None:
    folder = tmp_path / "failing"
    shutil.copytree(story.parent, folder)
    failing = folder / "story.yaml"
    failing.write_text(failing.read_text().replace("seed: 13", "seed: 130"))
    faults = SimOptions(latency=(0.0, 0.05), rates={"task": 1.0})
    with serving(ReviewConfig(failing, "story.yaml", simulator=faults)) as studio, \
            httpx.Client(base_url=studio.url, timeout=120) as client, \
            listening(f"{studio.url}api/events") as events:
        headers = {"X-Studio-Token": token_of(client.get("/").text)}
        assert client.post("/api/run", json={}, headers=headers).status_code == 202
        seen = events.wait_for(lambda items: any(k == "run" and d["state"] == "finished"
                                                 for k, d in items))
        assert not [d for k, d in seen if k == "run" and d["state"] == "finished"][0]["complete"]
        failed = shot(board(client), "w")
        page = client.get("/").text
    assert failed["status"] == "failed"
    assert "timeoutProvider" in failed["error"]
    assert str(escape(failed["error"])) in page


def test_another_take_of_a_model_that_takes_no_seed_is_refused(write_board: WriteBoard) -> None:
    story = write_board("""
        version: 1
        shots:
          a: {model: "klingai:5@3", positivePrompt: a harbour, width: 1920, height: 1080,
              duration: 5}
        """)
    before = story.read_bytes()
    with serving(ReviewConfig(story, "board.yaml")) as studio, \
            httpx.Client(base_url=studio.url, timeout=120) as client:
        page = client.get("/").text
        assert re.search(r'<button class="reroll ghost" data-shot="a" disabled', page)
        answer = client.post("/api/reroll", json={"shot": "a"},
                             headers={"X-Studio-Token": token_of(page)})
    assert answer.status_code == 409 and "takes no seed" in answer.json()["error"]
    assert story.read_bytes() == before


def test_a_seam_is_poor_below_the_storyboards_continuity_threshold(client: httpx.Client,
                                                                   restored: Path) -> None:
    [seam] = board(client)["seams"]
    assert seam["psnr"] > 30 and not seam["poor"]  # the default min_psnr is 30 dB
    restored.write_text(restored.read_text().replace(
        "version: 1\n", f"version: 1\ncontinuity: {{min_psnr: {seam['psnr'] + 1}}}\n"))
    [seam] = board(client)["seams"]
    assert seam["poor"]
    assert 'class="seam poor"' in client.get("/").text


def test_stop_ends_a_run_from_the_page_and_the_next_run_resumes_its_tasks(
        tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text("version: 1\nmodel: pixverse:1@3\ndefaults: {width: 640, height: 360}\n"
                     "shots:\n  a: {positivePrompt: a hill, seed: 1}\n"
                     "  b: {from: a, positivePrompt: a river, seed: 2}\n")
    slow = SimOptions(latency=(3.0, 4.0))
    with serving(ReviewConfig(story, "story.yaml", simulator=slow)) as served, \
            httpx.Client(base_url=served.url, timeout=120) as client, \
            listening(f"{served.url}api/events") as events:
        headers = {"X-Studio-Token": token_of(client.get("/").text)}
        assert 'id="stop"' in client.get("/").text
        assert client.post("/api/stop", json={}, headers=headers).status_code == 409
        assert client.post("/api/run", json={}, headers=headers).status_code == 202
        events.wait_for(lambda items: any(k == "job" and d["status"] == "rendering"
                                          for k, d in items))
        assert client.post("/api/stop", json={}).status_code == 403  # no token, no stop
        assert client.post("/api/stop", json={}, headers=headers).status_code == 202
        ended = events.wait_for(lambda items: any(k == "run" and d["state"] != "started"
                                                  for k, d in items))
        outcome = next(d for k, d in ended if k == "run" and d["state"] != "started")
        assert outcome["state"] == "stopped" and "without paying twice" in outcome["message"]
        assert not served.review.run_active
    in_flight = read_tasks(ObjectStore(tmp_path / ".storyreel").journal_path,
                           TaskPhase.SUBMITTED)
    assert [t.shot_key for t in in_flight] == ["a"]
    again = CliRunner().invoke(main, ["run", str(story), "--sim-latency", "0,0.05"])
    assert again.exit_code == 0, again.stderr
    assert f"a: resuming task {in_flight[0].task_uuid}" in again.stderr
