"""Films cut where shots hand over, and trimmed: which frames go in, how, and the timeline.

A chained child here is a clip whose first frame is its parent's frame k (the parent's colour
and index) followed by frames of its own; the bridge is a clip whose last frame is another
clip's frame j. Every frame shows its clip and index (`support_clips`), so a test reads the
film back frame by frame.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from support_clips import (
    BLUE,
    FPS,
    GREEN,
    RED,
    YELLOW,
    H,
    Picture,
    decoded,
    frame_number,
    make_clip,
    picture,
    video_packets,
    write_pictures,
)

from pipeline.errors import MediaError
from pipeline.media.formats import H264_OPTIONS
from pipeline.media.probe import probe_video
from pipeline.media.stitch import Span, Timeline, Transition, stitch_film

FOREIGN = {"preset": "veryfast", "crf": "23"}  # B-frames: not every frame ends a copy
Colour = tuple[int, int, int]


def write_clip(path: Path, pictures: list[Picture], options: dict[str, str] = H264_OPTIONS
               ) -> Path:
    return write_pictures(path, pictures, options, gop=24)


def child_of(path: Path, parent: Colour, k: int, frames: int, colour: Colour,
             options: dict[str, str] = H264_OPTIONS) -> Path:
    """A clip made from the parent's frame k: that picture first, then its own frames 1..."""
    return write_clip(path, [picture(k, parent)] + [picture(i, colour)
                                                    for i in range(1, frames)], options)


def bridge_to(path: Path, colour: Colour, frames: int, other: Colour, j: int) -> Path:
    """A clip that ends on another clip's frame j."""
    return write_clip(path, [picture(i, colour) for i in range(frames - 1)] + [picture(j, other)])


def colour_of(img: Picture) -> Colour:
    bottom = img[H * 3 // 4 :].reshape(-1, 3).mean(axis=0)
    named = {RED: RED, GREEN: GREEN, BLUE: BLUE, YELLOW: YELLOW}
    return min(named, key=lambda c: float(np.abs(bottom - np.array(c)).sum()))


def shown(path: Path) -> list[tuple[Colour, int]]:
    """Each film frame as (the colour of its clip, its index in that clip)."""
    return [(colour_of(img), frame_number(img)) for img in decoded(path)]


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("parent") / "red.mp4", 72, RED)


def test_a_child_from_frame_k_follows_the_parent_up_to_k_and_shows_it_once(
    tmp_path: Path, parent: Path
) -> None:
    child = child_of(tmp_path / "child.mp4", RED, 40, 48, GREEN)
    result = stitch_film([Span(parent, 0, 40), Span(child)], tmp_path / "film.mp4")
    frames = shown(result.path)
    assert frames == [(RED, i) for i in range(41)] + [(GREEN, i) for i in range(1, 48)]
    assert frames.count((RED, 40)) == 1  # the handover frame: the child's first, once
    assert result.method == "copy"  # a cut at the end of a clip without B-frames copies
    assert result.frames == 40 + 48


def test_a_child_from_the_last_frame_is_a_stream_copy_without_the_parents_last(
    tmp_path: Path, parent: Path
) -> None:
    child = child_of(tmp_path / "child.mp4", RED, 71, 48, GREEN)
    result = stitch_film([Span(parent, 0, -1), Span(child)], tmp_path / "film.mp4")
    frames = shown(result.path)
    assert frames[70:73] == [(RED, 70), (RED, 71), (GREEN, 1)]
    assert frames.count((RED, 71)) == 1
    assert result.method == "copy"
    assert video_packets(result.path) == video_packets(parent)[:71] + video_packets(child)


def test_a_cut_where_the_frames_before_need_later_ones_is_reencoded(tmp_path: Path) -> None:
    """With B-frames, frame 40 is decoded after frames it needs: a copy cannot stop there."""
    parent = make_clip(tmp_path / "bframes.mp4", 72, RED, options=FOREIGN)
    child = child_of(tmp_path / "child.mp4", RED, 40, 48, GREEN, FOREIGN)
    result = stitch_film([Span(parent, 0, 40), Span(child)], tmp_path / "film.mp4")
    assert result.method == "reencode"
    frames = shown(result.path)
    assert frames == [(RED, i) for i in range(41)] + [(GREEN, i) for i in range(1, 48)]


def test_a_bridge_ends_before_its_last_frame_and_the_next_shot_starts_on_it(
    tmp_path: Path, parent: Path
) -> None:
    """The bridge's last frame is the door's frame 30 (mid-GOP): the door starts there, the
    GOP it starts in is re-encoded and the rest of the door copied."""
    door = make_clip(tmp_path / "door.mp4", 96, BLUE)
    bridge = bridge_to(tmp_path / "bridge.mp4", GREEN, 48, BLUE, 30)
    spans = [Span(bridge, 0, -1, "bridge"), Span(door, 30, None, "door")]
    result = stitch_film(spans, tmp_path / "film.mp4")
    frames = shown(result.path)
    assert frames == [(GREEN, i) for i in range(47)] + [(BLUE, i) for i in range(30, 96)]
    assert frames.count((BLUE, 30)) == 1
    assert result.method == "splice"
    assert video_packets(door)[48:] == video_packets(result.path)[47 + 18 :]


def test_the_film_lasts_the_frames_it_keeps_and_its_timeline_says_where(
    tmp_path: Path, parent: Path
) -> None:
    green = make_clip(tmp_path / "green.mp4", 96, GREEN)
    blue = make_clip(tmp_path / "blue.mp4", 120, BLUE)
    spans = [Span(parent, 10, 60, "a"), Span(green, 5, None, "b"), Span(blue, 0, 100, "c")]
    seams = [Transition("cut"), Transition("crossfade", 1.0)]
    result = stitch_film(spans, tmp_path / "film.mp4", transitions=seams)
    kept = [50, 91, 100]
    assert result.frames == sum(kept) - 24 == probe_video(result.path).frames
    assert result.duration == pytest.approx(result.frames / FPS)
    timeline = result.timeline
    assert [(e.key, e.first, e.last, e.start, e.frames, e.fade_in)
            for e in timeline.entries] == [("a", 10, 59, 0, 50, 0), ("b", 5, 95, 50, 91, 0),
                                           ("c", 0, 99, 117, 100, 24)]
    assert timeline.cut_points() == [50, 117]
    frames = shown(result.path)
    assert frames[:51] == [(RED, i) for i in range(10, 60)] + [(GREEN, 5)]
    assert frames[-76:] == [(BLUE, i) for i in range(24, 100)]


def test_trims_cut_where_they_say(tmp_path: Path) -> None:
    green = make_clip(tmp_path / "green.mp4", 96, GREEN)
    result = stitch_film([Span(green, 30, 70)], tmp_path / "film.mp4")
    assert shown(result.path) == [(GREEN, i) for i in range(30, 70)]
    assert result.method == "splice"  # frames 30-47 encoded, the GOP from 48 copied
    assert video_packets(green)[48:70] == video_packets(result.path)[18:]


def test_a_timeline_reads_back_from_its_json(tmp_path: Path, parent: Path) -> None:
    result = stitch_film([Span(parent, 0, 30, "a"), Span(parent, 24, None, "b")],
                         tmp_path / "film.mp4")
    data = result.timeline.to_json()
    assert Timeline.from_json(data) == result.timeline
    assert data["fps"] == "24/1" and data["frames"] == 30 + 48
    assert data["entries"][1] | {"clip": ""} == {
        "key": "b", "clip": "", "first": 24, "last": 71, "start": 30, "frames": 48,
        "fade_in": 0, "start_seconds": 1.25, "seconds": 2.0}


def test_a_trimmed_clip_keeps_the_sound_under_its_frames(tmp_path: Path) -> None:
    sound = make_clip(tmp_path / "sound.mp4", 72, RED, audio=True)
    other = make_clip(tmp_path / "other.mp4", 48, GREEN)
    for spans in ([Span(sound, 24, 60), Span(sound)], [Span(sound, 10, 60), Span(other)]):
        result = stitch_film(spans, tmp_path / "film.mp4")
        with av.open(str(result.path)) as container:
            audio = container.streams.audio[0]
            seconds = float((audio.duration or 0) * (audio.time_base or Fraction(0)))
        assert seconds == pytest.approx(result.duration, abs=0.1)


def test_a_span_that_keeps_nothing_or_runs_past_its_clip_is_refused(
    tmp_path: Path, parent: Path
) -> None:
    for span in (Span(parent, 40, 40), Span(parent, 0, 80), Span(parent, 0, -72)):
        with pytest.raises(MediaError, match="red.mp4"):
            stitch_film([span, Span(parent)], tmp_path / "film.mp4")


def test_each_seam_takes_its_own_transition(tmp_path: Path, parent: Path) -> None:
    with pytest.raises(ValueError, match="2 transitions"):
        stitch_film([Span(parent)] * 3, tmp_path / "film.mp4", transitions=[Transition()])
