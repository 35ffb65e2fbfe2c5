"""Film assembly alone: finished jobs and the cache in; each variant's film stitched from the
picked takes (or left alone when nothing changed), out."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from support_backend import Recorder, write_clip

from pipeline.language.compile import Compiled, compile_storyboard
from pipeline.media.probe import probe_video
from pipeline.run.films import FilmStatus, make_films, takes_films_use
from pipeline.run.jobs import Job, make_jobs
from pipeline.store import ObjectStore, ShotRecord, Take

STORY = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
shots:
  a: {positivePrompt: "shot a", seed: 1, numberResults: 2, pick: 2}
  b: {from: a, positivePrompt: "shot b", seed: 2}
  c: {positivePrompt: "shot c", seed: 3}
film:
  shots: [c, a, b]
"""
COLOURS = {"a": [(200, 0, 0), (0, 200, 0)], "b": [(0, 0, 200)], "c": [(200, 200, 0)]}


def compiled_story(folder: Path, text: str = STORY) -> Compiled:
    story = folder / "story.yaml"
    story.write_text(textwrap.dedent(text))
    return compile_storyboard(story)


def finished_jobs(compiled: Compiled, store: ObjectStore, folder: Path,
                  unfinished: tuple[str, ...] = ()) -> dict[str, Job]:
    """Every job done, with a clip of its own colour per take, but those `unfinished`."""
    jobs = make_jobs(compiled.plan, compiled.graph.remaining)
    for job in jobs.values():
        if job.label in unfinished:
            continue
        takes = []
        for index, colour in enumerate(COLOURS[job.label], start=1):
            clip = folder / f"{job.label}{index}.mp4"
            write_clip(clip, colour, frames=8 + index)
            stored = store.put_file(clip, "mp4")
            facts = {k: v for k, v in probe_video(stored.path).to_dict().items() if k != "path"}
            takes.append(Take(index, f"{job.label}-{index}", stored.sha256, "mp4", stored.size,
                              facts))
        job.record = ShotRecord(job.identity, f"task-{job.label}", 1, tuple(takes))
    return jobs


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Compiled, ObjectStore, dict[str, Job]]:
    compiled = compiled_story(tmp_path)
    store = ObjectStore(tmp_path / ".storyreel")
    return compiled, store, finished_jobs(compiled, store, tmp_path)


def test_the_film_is_the_picked_takes_in_film_order(
        setup: tuple[Compiled, ObjectStore, dict[str, Job]]) -> None:
    compiled, store, jobs = setup
    (film,) = make_films(compiled, jobs, store, Recorder())
    assert film.status is FilmStatus.MADE and film.method == "copy"
    assert film.path == compiled.board.folder / "story.mp4" and film.timeline is not None
    # c (9 frames), a's take 2 (10 frames, but its last is b's first: shown once), b (9)
    assert [(e.key, e.frames) for e in film.timeline.entries] == [("c", 9), ("a", 9), ("b", 9)]
    assert probe_video(film.path).frames == 9 + 9 + 9


def test_an_unchanged_film_is_left_alone_byte_for_byte(
        setup: tuple[Compiled, ObjectStore, dict[str, Job]]) -> None:
    compiled, store, jobs = setup
    (first,) = make_films(compiled, jobs, store, Recorder())
    assert first.path is not None
    before = first.path.stat()
    recorder = Recorder()
    (again,) = make_films(compiled, jobs, ObjectStore(store.root), recorder)
    assert again.status is FilmStatus.UNCHANGED and again.made
    assert first.path.stat().st_mtime_ns == before.st_mtime_ns
    assert recorder.notes == []  # nothing stitched


def test_a_film_changed_on_disk_is_stitched_again(
        setup: tuple[Compiled, ObjectStore, dict[str, Job]]) -> None:
    compiled, store, jobs = setup
    (first,) = make_films(compiled, jobs, store, Recorder())
    assert first.path is not None
    made = first.path.read_bytes()
    first.path.write_bytes(made[:-100])
    (again,) = make_films(compiled, jobs, ObjectStore(store.root), Recorder())
    assert again.status is FilmStatus.MADE and first.path.read_bytes() == made


def with_film(compiled: Compiled, **changes: object) -> Compiled:
    film = replace(compiled.plan.films[0], **changes)  # type: ignore[arg-type]
    return replace(compiled, plan=replace(compiled.plan, films=(film,)))


def test_a_new_canvas_is_a_new_film(
        setup: tuple[Compiled, ObjectStore, dict[str, Job]]) -> None:
    compiled, store, jobs = setup
    make_films(compiled, jobs, store, Recorder())
    larger = with_film(compiled, size=(640, 360))
    (outcome,) = make_films(larger, jobs, ObjectStore(store.root), Recorder())
    assert outcome.status is FilmStatus.MADE and outcome.method == "reencode"
    assert outcome.path is not None and probe_video(outcome.path).width == 640


def test_another_variant_or_file_name_of_the_same_inputs_is_the_same_film(
        setup: tuple[Compiled, ObjectStore, dict[str, Job]]) -> None:
    """What a film is made from is its clips' content, the frames kept and the seams: the
    variant it belongs to and its name do not make it another film."""
    compiled, store, jobs = setup
    (first,) = make_films(compiled, jobs, store, Recorder())
    assert first.path is not None
    renamed = with_film(compiled, file="other-name.mp4", variant={"mood": "calm"})
    (film,) = make_films(renamed, jobs, ObjectStore(store.root), Recorder())
    assert film.status is FilmStatus.MADE  # a new file, written...
    assert film.path is not None and film.path.read_bytes() == first.path.read_bytes()
    (again,) = make_films(renamed, jobs, ObjectStore(store.root), Recorder())
    assert again.status is FilmStatus.UNCHANGED  # ...and recognised as made after


def test_a_film_whose_shot_did_not_finish_is_not_made_and_says_which(tmp_path: Path) -> None:
    compiled = compiled_story(tmp_path)
    store = ObjectStore(tmp_path / ".storyreel")
    jobs = finished_jobs(compiled, store, tmp_path, unfinished=("b",))
    (film,) = make_films(compiled, jobs, store, Recorder())
    assert film.status is FilmStatus.NOT_MADE and not film.made
    assert film.error == "not made: b did not finish"
    assert not (tmp_path / "story.mp4").exists()


def test_a_damaged_clip_is_not_stitched(
        setup: tuple[Compiled, ObjectStore, dict[str, Job]]) -> None:
    compiled, store, jobs = setup
    record = jobs[compiled.plan.shot("c").identity].record
    assert record is not None
    clip = store.path_for(record.takes[0].sha256, "mp4")
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    clip.write_bytes(bytes(data))
    (film,) = make_films(compiled, jobs, ObjectStore(store.root), Recorder())
    assert film.status is FilmStatus.FAILED and "damaged" in (film.error or "")
    assert not (compiled.board.folder / "story.mp4").exists()


def test_a_film_that_cannot_be_written_fails_with_the_reason(
        setup: tuple[Compiled, ObjectStore, dict[str, Job]]) -> None:
    compiled, store, jobs = setup
    (compiled.board.folder / "story.mp4").mkdir()
    (film,) = make_films(compiled, jobs, store, Recorder())
    assert film.status is FilmStatus.FAILED
    target = compiled.board.folder / "story.mp4"
    assert film.error == f"cannot write the film story.mp4: {target} is a folder"


def test_the_takes_a_run_will_stitch(setup: tuple[Compiled, ObjectStore, dict[str, Job]]
                                     ) -> None:
    compiled, store, jobs = setup
    plan = compiled.plan
    picked = [record.takes[plan.shot(key).pick - 1] for key in ("c", "a", "b")
              if (record := jobs[plan.shot(key).identity].record) is not None]
    assert takes_films_use(compiled, jobs, store) == picked  # not made yet: all of them
    make_films(compiled, jobs, store, Recorder())
    assert takes_films_use(compiled, jobs, ObjectStore(store.root)) == []  # made: none
    jobs[plan.shot("b").identity].record = None  # b to make: the film's other takes
    assert takes_films_use(compiled, jobs, store) == picked[:2]
