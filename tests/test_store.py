"""The content-addressed cache, atomic writes and the run lock."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.errors import StoryreelError
from pipeline.store import (
    CacheError,
    ObjectStore,
    ShotRecord,
    Take,
    atomic_writer,
    store_root_for,
    write_atomic,
)

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / ".storyreel")


def stored_take(store: ObjectStore, data: bytes, index: int = 1) -> Take:
    obj = store.put_bytes(data, "mp4")
    probe = {"width": 640, "height": 360, "fps": 24.0, "frames": 120}
    return Take(index, f"video-{index}", obj.sha256, "mp4", obj.size, probe)


def make_record(store: ObjectStore, identity: str = "id-1") -> ShotRecord:
    takes = (stored_take(store, b"take one", 1), stored_take(store, b"take two", 2))
    return ShotRecord(identity, "task-1", 42, takes, cost=0.35)


def test_store_sits_next_to_the_storyboard(tmp_path: Path) -> None:
    root = store_root_for(tmp_path / "lighthouse.yaml")
    assert root == tmp_path / ".storyreel"
    assert ObjectStore(root).journal_path == root / "journal.sqlite"


# Atomic files


def test_write_atomic_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    write_atomic(target, b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_failed_atomic_write_leaves_target_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"intact")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"intact"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_keeps_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"x")
    target.chmod(0o640)
    write_atomic(target, b"y")
    assert target.stat().st_mode & 0o777 == 0o640


# Objects


def test_put_bytes_round_trip(store: ObjectStore) -> None:
    obj = store.put_bytes(b"video bytes", ".MP4")
    assert obj.sha256 == sha(b"video bytes")
    assert obj.path == store.path_for(obj.sha256, "mp4")
    assert obj.path.name == obj.sha256[2:] + ".mp4"
    assert obj.path.parent.name == obj.sha256[:2]
    assert obj.path.read_bytes() == b"video bytes"
    assert store.has(obj.sha256, "mp4") and not store.has(obj.sha256, "png")


def test_put_file_copies_a_foreign_file(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    src.write_bytes(b"png bytes")
    obj = store.put_file(src, "png", sha256=sha(b"png bytes"))
    assert src.read_bytes() == b"png bytes"
    assert obj.path.read_bytes() == b"png bytes" and obj.size == 9


def test_put_file_moves_its_own_temp_file(store: ObjectStore) -> None:
    temp = store.temp_path(".mp4")
    temp.write_bytes(b"downloaded")
    obj = store.put_file(temp, "mp4")
    assert not temp.exists()
    assert obj.path.read_bytes() == b"downloaded"


def test_put_file_of_known_content_keeps_one_copy(store: ObjectStore) -> None:
    first = store.put_bytes(b"same", "mp4")
    temp = store.temp_path("mp4")
    temp.write_bytes(b"same")
    assert store.put_file(temp, "mp4") == first
    assert not temp.exists()


def test_put_file_refuses_wrong_hash(store: ObjectStore, tmp_path: Path) -> None:
    temp = store.temp_path("mp4")
    temp.write_bytes(b"damaged download")
    with pytest.raises(CacheError, match="expected"):
        store.put_file(temp, "mp4", sha256=sha(b"what the server sent"))
    src = tmp_path / "a.png"
    src.write_bytes(b"a")
    with pytest.raises(CacheError):
        store.put_file(src, "png", sha256="0" * 64)
    assert not store.has(sha(b"damaged download"), "mp4")
    assert list((store.root / "tmp").iterdir()) == []


def test_bad_hash_or_extension_is_a_bug(store: ObjectStore) -> None:
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd", "mp4")
    with pytest.raises(ValueError):
        store.path_for("a" * 64, "mp4/../x")


def test_lookups_create_nothing(store: ObjectStore) -> None:
    assert store.find_shot("nothing") is None
    assert store.find_frame("a" * 64, "last") is None
    assert store.find_upload("sim", "a" * 64, now=NOW) is None
    assert not store.root.exists()


# Shot records


def test_shot_record_round_trip(store: ObjectStore) -> None:
    record = make_record(store)
    store.record_shot("id-1", record)
    assert store.find_shot("id-1") == record
    assert ShotRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_shot_record_invalid_when_a_take_file_is_gone(store: ObjectStore) -> None:
    record = make_record(store)
    store.record_shot("id-1", record)
    store.path_for(record.takes[1].sha256, "mp4").unlink()
    assert store.find_shot("id-1") is None


def test_shot_record_invalid_when_a_take_file_is_truncated(store: ObjectStore) -> None:
    record = make_record(store)
    store.record_shot("id-1", record)
    store.path_for(record.takes[0].sha256, "mp4").write_bytes(b"take")
    assert store.find_shot("id-1") is None


def test_shot_record_needs_its_takes_stored_first(store: ObjectStore) -> None:
    take = Take(1, "v", sha(b"never stored"), "mp4", 12, {})
    with pytest.raises(ValueError, match="not in the store"):
        store.record_shot("id-1", ShotRecord("id-1", "task", 1, (take,)))


def test_corrupt_shot_record_names_the_file(store: ObjectStore) -> None:
    store.record_shot("id-1", make_record(store))
    path = store.root / "shots" / "id-1.json"
    path.write_text("{ not json")
    with pytest.raises(StoryreelError, match=r"id-1\.json:1: invalid JSON"):
        store.find_shot("id-1")
    path.write_text('{"format": 1}')
    with pytest.raises(CacheError, match=r"id-1\.json: unexpected record"):
        store.find_shot("id-1")


# Frames


def test_frame_round_trip(store: ObjectStore) -> None:
    video = store.put_bytes(b"video", "mp4")
    png = store.put_bytes(b"png", "png")
    store.record_frame(video.sha256, "last", png.sha256)
    store.record_frame(video.sha256, "12", png.sha256)
    assert store.find_frame(video.sha256, "last") == png.sha256
    assert store.find_frame(video.sha256, "12") == png.sha256
    assert store.find_frame(video.sha256, "first") is None
    png.path.unlink()
    assert store.find_frame(video.sha256, "last") is None


def test_frame_selector_is_checked(store: ObjectStore) -> None:
    with pytest.raises(ValueError):
        store.find_frame("a" * 64, "../middle")


# Uploads


def test_upload_cache_expires(store: ObjectStore) -> None:
    image = sha(b"image")
    store.record_upload("runware", image, "uuid-1", now=NOW)
    assert store.find_upload("runware", image, now=NOW + timedelta(days=24)) == "uuid-1"
    assert store.find_upload("runware", image, now=NOW + timedelta(days=26)) is None
    short = NOW + timedelta(days=2)
    assert store.find_upload("runware", image, max_age_days=1, now=short) is None


def test_upload_cache_is_per_backend(store: ObjectStore) -> None:
    image = sha(b"image")
    store.record_upload("https://api.runware.ai/v1", image, "real", now=NOW)
    store.record_upload("simulator", image, "fake", now=NOW)
    assert store.find_upload("https://api.runware.ai/v1", image, now=NOW) == "real"
    assert store.find_upload("simulator", image, now=NOW) == "fake"
    store.forget_upload("simulator", image)
    assert store.find_upload("simulator", image, now=NOW) is None


def test_upload_cache_wants_aware_time(store: ObjectStore) -> None:
    with pytest.raises(ValueError):
        store.record_upload("sim", sha(b"i"), "u", now=datetime(2025, 1, 1))


# The run lock

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline.store import ObjectStore
    with ObjectStore(Path(sys.argv[1])).exclusive():
        print("held", flush=True)
        sys.stdin.readline()
    """
)


def start_holder(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_run_lock_refuses_a_second_run(store: ObjectStore) -> None:
    holder = start_holder(store.root)
    try:
        with pytest.raises(CacheError, match="another storyreel run is using") as caught:
            with store.exclusive():
                pass
        assert str(holder.pid) in (caught.value.hint or "")
    finally:
        holder.communicate("done\n", timeout=10)
    with store.exclusive():
        pass


def test_run_lock_dies_with_its_holder(store: ObjectStore) -> None:
    holder = start_holder(store.root)
    holder.kill()
    holder.wait(timeout=10)
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.close()
    holder.stdout.close()
    with store.exclusive():
        assert (store.root / "run.lock").read_text() == f"{os.getpid()}\n"


def test_run_lock_clears_temp_files_of_a_dead_run(store: ObjectStore) -> None:
    leftover = store.temp_path("mp4")
    leftover.write_bytes(b"half a download")
    with store.exclusive():
        assert not leftover.exists()
