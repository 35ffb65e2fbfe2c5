"""`storyreel run` end to end with a soundtrack, captions and a title: the film that comes
out (its sound as long as its picture, at -16 LUFS; its caption files), what a second run
leaves alone, and what a changed caption, caption mode or music file makes again."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pysubs2
import pytest
from support_cli import run_ok as run
from support_sound import film_sound, write_tone

from pipeline.media.probe import probe_video
from pipeline.media.sound import AUDIO_RATE
from pipeline.media.soundtrack import loudness_of

pytestmark = pytest.mark.slow

STORY = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
shots:
  a: {positivePrompt: "a hill at dawn", seed: 21, caption: "A hill at dawn"}
  b: {from: a, positivePrompt: "a river at noon", seed: 22, caption: "The river"}
  c: {positivePrompt: "the sea at night", seed: 23, caption: "The sea"}
film:
  transition: {type: crossfade, seconds: 0.5}
  audio:
    - {file: music.m4a, fade_in: 1}
    - {file: music.m4a, start: {shot: c}, gain_db: -3}
  title: {text: "Three places", seconds: 1.5}
"""


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("finished")
    write_tone(folder / "music.m4a", 20.0)
    story = folder / "story.yaml"
    story.write_text(STORY)
    return story, run(story)


def copy_story(tmp_path: Path, first_run: tuple[Path, Any]) -> Path:
    """A new folder with the first run's storyboard, music, lock and cache."""
    shutil.copytree(first_run[0].parent, tmp_path / "copy")
    return tmp_path / "copy" / "story.yaml"


def test_the_film_has_its_title_sound_and_caption_files(first_run: tuple[Path, Any]) -> None:
    story, data = first_run
    (film,) = data["films"]
    path = Path(film["path"])
    picture = probe_video(path)
    entries = film["timeline"]["entries"]
    assert [e["key"] for e in entries] == ["(title)", "a", "b", "c"]
    assert entries[1]["start"] == 36  # 1.5 s of title card at 24 fps
    assert picture.frames == film["timeline"]["frames"]
    sound = film_sound(path)
    assert sound.shape[1] / AUDIO_RATE == pytest.approx(picture.duration, abs=1 / 24)
    assert loudness_of(sound) == pytest.approx(-16.0, abs=1.0)
    starts = [round(e.start / 1000 * 24) for e in pysubs2.load(str(path.with_suffix(".srt")))]
    assert starts == [e["start"] for e in entries[1:]]
    assert path.with_suffix(".vtt").read_text().startswith("WEBVTT")


def test_a_second_run_leaves_the_film_and_its_captions_byte_for_byte(
        first_run: tuple[Path, Any]) -> None:
    story, data = first_run
    path = Path(data["films"][0]["path"])
    before = [p.read_bytes() for p in (path, path.with_suffix(".srt"), path.with_suffix(".vtt"))]
    again = run(story)
    assert again["requests"] == {}
    assert again["films"][0]["method"] == "unchanged"
    assert [p.read_bytes() for p in (path, path.with_suffix(".srt"),
                                     path.with_suffix(".vtt"))] == before


def test_a_changed_caption_remakes_the_film_and_no_shot(tmp_path: Path,
                                                        first_run: tuple[Path, Any]) -> None:
    story = copy_story(tmp_path, first_run)
    story.write_text(STORY.replace('"The river"', '"The river bends"'))
    data = run(story)
    assert data["requests"] == {}
    assert {s["status"] for s in data["shots"]} == {"cached"}
    assert data["films"][0]["method"] not in ("unchanged", None)
    events = pysubs2.load(str(story.with_suffix(".srt")))
    assert [e.plaintext for e in events] == ["A hill at dawn", "The river bends", "The sea"]


def test_burning_the_captions_removes_the_caption_files(tmp_path: Path,
                                                        first_run: tuple[Path, Any]) -> None:
    story = copy_story(tmp_path, first_run)
    story.write_text(STORY + "  captions: burn\n")
    data = run(story)
    assert data["films"][0]["method"].endswith("+splice")  # drawn on, encoded by GOPs
    assert not story.with_suffix(".srt").exists() and not story.with_suffix(".vtt").exists()
    assert data["requests"] == {}


def test_new_music_under_the_same_name_remakes_the_film(tmp_path: Path,
                                                        first_run: tuple[Path, Any]) -> None:
    story = copy_story(tmp_path, first_run)
    film = story.with_suffix(".mp4")
    before = film.read_bytes()
    write_tone(story.parent / "music.m4a", 20.0, hz=330.0)
    data = run(story)
    assert data["films"][0]["method"] != "unchanged"
    assert film.read_bytes() != before
