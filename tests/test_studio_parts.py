"""The studio's parts that other commands can use: posters, the preview records, the view of
a run from outside it, and the `review` command's process."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from PIL import Image
from support_processes import STORYREEL, stop

from pipeline.media.poster import POSTER_WIDTH, poster_jpeg
from pipeline.store import Journal, ObjectStore
from pipeline.store.activity import latest_tasks, run_holder, store_stamp
from pipeline.store.journal import TaskPhase
from pipeline.store.previews import Previews


def grey_clip(path: Path, gop: int, frames: int = 48) -> Path:
    """A 24 fps clip whose frame n is the grey level 5 n, with a keyframe every `gop`."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"g": str(gop),
                                                                    "keyint_min": str(gop),
                                                                    "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for n in range(frames):
            picture = np.full((180, 320, 3), 5 * n, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return path


def grey_of(jpeg: bytes) -> float:
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG" and image.width == POSTER_WIDTH
        return float(np.asarray(image.convert("L")).mean())


def test_a_poster_is_the_keyframe_before_a_third_of_the_clip(tmp_path: Path) -> None:
    """A third of 2 s is frame 16; the keyframe before it is frame 12 (grey 60)."""
    poster = poster_jpeg(grey_clip(tmp_path / "short-gop.mp4", gop=12))
    assert grey_of(poster) == pytest.approx(60, abs=3)


def test_a_clip_with_one_keyframe_is_decoded_on_to_its_third(tmp_path: Path) -> None:
    """Not the opening frame, which a chained shot shares with its parent."""
    poster = poster_jpeg(grey_clip(tmp_path / "long-gop.mp4", gop=250))
    assert grey_of(poster) == pytest.approx(80, abs=3)


def test_posters_are_recorded_by_take_and_a_broken_record_is_made_again(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / ".storyreel")
    previews = Previews(store)
    take = "c" * 64
    assert previews.find_poster(take) is None
    jpeg = previews.put_poster(take, b"\xff\xd8\xffposter")
    assert previews.find_poster(take) == jpeg
    assert store.path_for(jpeg, "jpg").read_bytes() == b"\xff\xd8\xffposter"
    (store.root / "derived" / take[:2] / f"{take}.poster-1.json").write_text("{not json")
    assert previews.find_poster(take) is None
    previews.put_poster(take, b"\xff\xd8\xffposter")
    store.path_for(jpeg, "jpg").unlink()
    assert previews.find_poster(take) is None
    with pytest.raises(ValueError):
        previews.find_poster("../../etc/passwd")


def test_the_journal_is_read_without_being_written(tmp_path: Path) -> None:
    """(SQLite may make its empty -wal companion to read a WAL journal; the journal stays.)"""
    store = ObjectStore(tmp_path / ".storyreel")
    assert latest_tasks(store) == {}
    with Journal(store.journal_path) as journal:
        journal.prepare("t1", "id-a", "a", {"positivePrompt": "x"})
        journal.mark_failed("t1", {"code": "timeoutProvider", "message": "the provider timed out"})
        journal.prepare("t2", "id-a", "a", {"positivePrompt": "x"}, attempt=2)
        journal.mark_submitted("t2")
        journal.prepare("t3", "id-b", "b", {"positivePrompt": "y"})
        journal.mark_failed("t3", {"code": "invalidPrompt", "message": "prompt refused"})
    before, stamp = store.journal_path.read_bytes(), store_stamp(store)
    tasks = latest_tasks(store)
    assert {k: (t.shot_key, t.state) for k, t in tasks.items()} == {
        "id-a": ("a", TaskPhase.SUBMITTED), "id-b": ("b", TaskPhase.FAILED)}
    assert tasks["id-b"].error == "prompt refused (invalidPrompt)"
    assert store.journal_path.read_bytes() == before
    assert store_stamp(store) == stamp  # a look is not a change the studio would report


def test_the_holder_of_a_folder_is_a_live_process(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / ".storyreel")
    assert run_holder(store) is None
    with store.exclusive():
        assert run_holder(store) == os.getpid()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (store.root / "run.lock").write_text(f"{dead.pid}\n")
    assert run_holder(store) is None


def test_review_serves_on_127_0_0_1_and_stops_on_ctrl_c_with_a_page_open(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text("version: 1\nmodel: pixverse:1@3\nshots:\n  a: {positivePrompt: a hill, "
                     "width: 640, height: 360}\n")
    process = subprocess.Popen([*STORYREEL, "review", str(story), "--no-browser", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        banner = process.stdout.readline().decode()
        found = re.search(r"at (http://127\.0\.0\.1:\d+/)", banner)
        assert found, banner
        url = found.group(1)
        with httpx.Client(timeout=30) as client:
            page = client.get(url)
            assert page.status_code == 200 and "Not rendered yet" in page.text
            with client.stream("GET", f"{url}api/events") as events:
                assert events.status_code == 200
                process.send_signal(signal.SIGINT)
                start = time.monotonic()
                assert process.wait(30) == 0
                assert time.monotonic() - start < 10
        assert "studio stopped" in process.stdout.read().decode()
    finally:
        stop(process)
