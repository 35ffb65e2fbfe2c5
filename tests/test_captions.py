"""Captions and titles: WebVTT and SRT cues on the film's actual cut points (read back from
its pictures), captions burned into the picture only where and while they show (and only
the GOPs they touch re-encoded), and titles on a card before the film or over a shot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysubs2
import pytest
from support_clips import (
    BLUE,
    GREEN,
    RED,
    H,
    Picture,
    W,
    decoded,
    make_clip,
    video_packets,
)
from test_cut_points import colour_of

from pipeline.media.burn import BurnMethod
from pipeline.media.captions import captions_text, write_captions
from pipeline.media.cues import (
    Caption,
    CaptionMode,
    Finish,
    Shown,
    Title,
    caption_times,
    with_title,
)
from pipeline.media.finish import finish_film
from pipeline.media.stitch import Span, StitchResult, Transition, stitch_film
from pipeline.media.text import CAPTION_STYLE, FONT_FILE, TITLE_STYLE, render_text
from pipeline.media.timeline import Timeline

FPS = 24
CAPTIONS = (Caption("a", "Red"), Caption("b", "Green one", 0.0, 1.0),
            Caption("b", "Green two", 1.0), Caption("c", "Blue"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("captions")


@pytest.fixture(scope="module")
def film(folder: Path) -> StitchResult:
    """a: red to frame 60; b: green from its frame 12; c: blue, crossfaded in over 0.5 s.
    A 4 s GOP for b and c, so a caption on b leaves c's picture as it was."""
    red = make_clip(folder / "red.mp4", 72, RED)
    green = make_clip(folder / "green.mp4", 96, GREEN)
    blue = make_clip(folder / "blue.mp4", 96, BLUE)
    spans = [Span(red, 0, 60, "a"), Span(green, 12, None, "b"), Span(blue, key="c")]
    return stitch_film(spans, folder / "film.mp4",
                       transitions=[Transition(), Transition("crossfade", 0.5)])


def cut_points(path: Path) -> list[int]:
    """Where the picture leaves red (a cut) and where green starts to blend (a crossfade)."""
    pictures = decoded(path)
    colours = [colour_of(img) for img in pictures]
    green = np.array(GREEN)
    cut = colours.index(GREEN)
    fade = next(i for i in range(cut, len(pictures))
                if np.abs(pictures[i][H * 3 // 4 :].reshape(-1, 3).mean(0) - green).sum() > 6)
    return [cut, fade]


def test_caption_files_start_on_the_films_own_cut_points(film: StitchResult,
                                                         folder: Path) -> None:
    cut, fade = cut_points(film.path)
    assert (cut, fade) == (60, 132)  # a keeps 60 frames; b's 84 less the 12 of crossfade
    expected = [(0, cut), (cut, cut + FPS), (cut + FPS, fade), (fade, film.frames)]
    shown = caption_times(CAPTIONS, film.timeline)
    for path in write_captions(shown, film.timeline.fps, folder / "film.mp4"):
        events = pysubs2.load(str(path))
        assert [e.plaintext for e in events] == ["Red", "Green one", "Green two", "Blue"]
        for event, (first, stop) in zip(events, expected, strict=True):
            assert 0 <= event.start - first * 1000 / FPS < 1000 / FPS
            assert 0 <= event.end - stop * 1000 / FPS < 1000 / FPS


def test_a_title_card_moves_every_caption_by_its_length(film: StitchResult) -> None:
    card = with_title(film.timeline, 48)
    moved = caption_times(CAPTIONS, card)
    assert [(s.first - 48, s.stop - 48) for s in moved] == [
        (s.first, s.stop) for s in caption_times(CAPTIONS, film.timeline)]


def test_a_shot_shown_twice_is_captioned_twice() -> None:
    timeline = Timeline.from_json({"fps": "24/1", "entries": [
        {"key": k, "clip": "", "first": 0, "last": 47, "start": s, "frames": 48, "fade_in": 0}
        for k, s in (("a", 0), ("b", 48), ("a", 96))]})
    assert caption_times([Caption("a", "again")], timeline) == [
        Shown(0, 48, "again"), Shown(96, 144, "again")]


def test_webvtt_escapes_what_it_would_read_as_markup() -> None:
    shown = [Shown(0, 24, "<b>salt & pepper</b> --> sea")]
    assert "&lt;b&gt;salt &amp; pepper&lt;/b&gt; --&gt; sea" in captions_text(shown, FPS, "vtt")
    assert "<b>salt & pepper</b> --> sea" in captions_text(shown, FPS, "srt")


def region_diff(a: Picture, b: Picture, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """Mean absolute difference inside the box (x, y, w, h), and outside it."""
    x, y, w, h = box
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=2)
    inside = diff[y : y + h, x : x + w]
    return float(inside.mean()), float((diff.sum() - inside.sum()) / (diff.size - inside.size))


def test_a_burned_caption_changes_its_region_only_while_it_shows(film: StitchResult,
                                                                 folder: Path) -> None:
    out = folder / "burned.mp4"
    finish = Finish(captions=(Caption("b", "Green one", 0.0, 1.0),), mode=CaptionMode.BURN)
    made = finish_film(film.path, film.timeline, finish, out)
    assert made.picture is BurnMethod.SPLICE
    stamp = render_text("Green one", W, H, CAPTION_STYLE)
    box = (stamp.x, stamp.y, stamp.grey.shape[1], stamp.grey.shape[0])
    before, after = decoded(film.path), decoded(out)
    assert len(after) == len(before)
    for index, (a, b) in enumerate(zip(before, after, strict=True)):
        inside, outside = region_diff(a, b, box)
        if 60 <= index < 84:
            assert inside > 20 and outside < 2, index
        else:
            assert inside < 2 and outside < 2, index
    kept = video_packets(film.path)[132:]  # c's GOPs: untouched, copied
    assert video_packets(out)[132:] == kept


def test_a_title_over_a_shot_fades_in_and_out_over_it(film: StitchResult,
                                                      folder: Path) -> None:
    out = folder / "title-over.mp4"
    finish_film(film.path, film.timeline, Finish(title=Title("Relay", 2.0, "b")), out)
    stamp = render_text("Relay", W, H, TITLE_STYLE)
    box = (stamp.x, stamp.y, stamp.grey.shape[1], stamp.grey.shape[0])
    before, after = decoded(film.path), decoded(out)
    inside = [region_diff(a, b, box)[0] for a, b in zip(before, after, strict=True)]
    assert max(inside[:60] + inside[108:]) < 2
    assert inside[61] < inside[66] < inside[84] > inside[102] > inside[107]


def test_a_title_on_black_comes_before_the_film(film: StitchResult, folder: Path) -> None:
    out = folder / "title-card.mp4"
    made = finish_film(film.path, film.timeline, Finish(title=Title("Relay", 1.5)), out)
    assert [e.start for e in made.timeline.entries] == [0, 36, 96, 168]
    pictures = decoded(out)
    assert len(pictures) == film.frames + 36
    stamp = render_text("Relay", W, H, TITLE_STYLE)
    middle = pictures[18]
    assert middle[: stamp.y].max() < 30 and middle[stamp.y + stamp.grey.shape[0] :].max() < 30
    assert middle[stamp.y : stamp.y + stamp.grey.shape[0]].max() > 200
    assert [colour_of(img) for img in pictures[36:40]] == [RED] * 4


def test_the_font_ships_inside_the_package_with_its_license() -> None:
    assert FONT_FILE.is_file() and FONT_FILE.parent.parent.name == "media"
    assert "Bitstream Vera" in (FONT_FILE.parent / "LICENSE").read_text(encoding="utf-8")
