"""The media stage on small synthetic clips: probes, frames, PNGs and stitched films.

Every frame of a test clip shows its own index (see `support_clips`), so a test can read back
which frame it got.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from support_clips import (
    BLUE,
    FPS,
    GREEN,
    RED,
    YELLOW,
    H,
    Picture,
    W,
    decoded,
    frame_number,
    make_clip,
    picture,
    psnr,
    video_packets,
)

from pipeline.errors import MediaError
from pipeline.media.frames import extract_frame, save_png
from pipeline.media.probe import Probe, probe_video
from pipeline.media.stitch import StitchResult, Transition, stitch_clips

# Another encoder setting: B-frames and other headers, so clips cannot share a track with ours.
FOREIGN = {"preset": "veryfast", "crf": "23"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "red": make_clip(folder / "red.mp4", 72, RED),
        "green": make_clip(folder / "green.mp4", 96, GREEN),
        "blue": make_clip(folder / "blue.mp4", 120, BLUE),
        "bframes": make_clip(folder / "bframes.mp4", 72, RED, options=FOREIGN),
        "bframes2": make_clip(folder / "bframes2.mp4", 60, GREEN, options=FOREIGN),
        "wide": make_clip(folder / "wide.mp4", 48, YELLOW, size=(640, 360)),
        "square": make_clip(folder / "square.mp4", 48, YELLOW, size=(240, 240)),
        "fps30": make_clip(folder / "fps30.mp4", 60, BLUE, fps=30),
        "webm": make_clip(folder / "clip.webm", 48, GREEN, codec="libvpx-vp9",
                          options={"deadline": "realtime", "cpu-used": "8"}),
        "odd": make_clip(folder / "odd.mp4", 24, RED, size=(321, 181), pix_fmt="yuv444p",
                         options={"preset": "ultrafast"}),
        "sound1": make_clip(folder / "sound1.mp4", 72, RED, audio=True),
        "sound2": make_clip(folder / "sound2.mp4", 72, GREEN, audio=True),
    }


# --- probe ------------------------------------------------------------------------------


def test_probe_reports_what_the_clip_is(clips: dict[str, Path]) -> None:
    probe = probe_video(clips["green"])
    assert probe == Probe(str(clips["green"]), "mp4", "h264", W, H, "yuv420p", Fraction(24),
                          96, 4.0, False)


def test_probe_of_webm_counts_frames_and_uses_the_container_duration(
    clips: dict[str, Path],
) -> None:
    probe = probe_video(clips["webm"])
    assert (probe.container, probe.codec, probe.frames) == ("webm", "vp9", 48)
    assert probe.duration == pytest.approx(2.0, abs=1 / FPS)


def test_probe_sees_audio(clips: dict[str, Path]) -> None:
    assert probe_video(clips["sound1"]).has_audio


def test_probe_to_dict_is_json_in_field_order(clips: dict[str, Path]) -> None:
    data = probe_video(clips["red"]).to_dict()
    assert list(data) == ["path", "container", "codec", "width", "height", "pix_fmt", "fps",
                          "frames", "duration", "has_audio"]
    assert json.loads(json.dumps(data))["fps"] == "24/1"


# --- frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("clip", ["red", "bframes", "webm"])
@pytest.mark.parametrize("which", ["first", "last", 0, 10, 30, -1, -2, -25])
def test_extract_frame_returns_exactly_that_frame(
    clips: dict[str, Path], clip: str, which: str | int
) -> None:
    count = probe_video(clips[clip]).frames
    index = {"first": 0, "last": count - 1}.get(str(which), which)
    assert isinstance(index, int)
    index %= count
    image = extract_frame(clips[clip], which)
    assert image.mode == "RGB" and image.size == (W, H)
    got = np.asarray(image)
    assert frame_number(got) == index
    colour = {"red": RED, "bframes": RED, "webm": GREEN}[clip]
    assert psnr(got, picture(index, colour)) > 30


def test_last_frame_is_not_the_one_before(clips: dict[str, Path]) -> None:
    """B-frames come out only when the decoder is flushed; the last one must not be missed."""
    last = np.asarray(extract_frame(clips["bframes"], "last"))
    before = np.asarray(extract_frame(clips["bframes"], -2))
    assert (frame_number(last), frame_number(before)) == (71, 70)
    assert psnr(last, before) < 20


def test_extract_frame_from_a_file_that_cannot_seek(tmp_path: Path) -> None:
    """A raw H.264 stream has no index, duration or timestamps: decode from the start."""
    raw = make_clip(tmp_path / "clip.h264", 30, BLUE)
    numbers = [frame_number(np.asarray(extract_frame(raw, w))) for w in ("first", "last", 7, -2)]
    assert numbers == [0, 29, 7, 28]


def test_extract_frame_out_of_range_is_a_media_error(clips: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="out of range"):
        extract_frame(clips["red"], 72)


def test_save_png_writes_atomically_and_returns_the_hash(tmp_path: Path) -> None:
    image = Image.fromarray(picture(5, RED))
    first = save_png(image, tmp_path / "frame.png")
    second = save_png(image, tmp_path / "again.png")
    data = (tmp_path / "frame.png").read_bytes()
    assert first == second == hashlib.sha256(data).hexdigest()
    assert data == (tmp_path / "again.png").read_bytes()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "frame.png")), picture(5, RED))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.png", "frame.png"]


def test_save_png_into_a_missing_folder_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="nowhere"):
        save_png(Image.fromarray(picture(0, RED)), tmp_path / "nowhere" / "frame.png")


# --- corrupt input ----------------------------------------------------------------------


@pytest.fixture
def corrupt(tmp_path: Path, clips: dict[str, Path]) -> list[Path]:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clips["red"].read_bytes()[:2000])
    return [garbage, truncated, tmp_path / "missing.mp4"]


def test_corrupt_files_are_media_errors_that_name_the_file(corrupt: list[Path]) -> None:
    for path in corrupt:
        for call in (probe_video, lambda p: extract_frame(p, "last")):
            with pytest.raises(MediaError, match=str(path)):
                call(path)


def test_a_failed_stitch_leaves_nothing_behind(
    tmp_path: Path, clips: dict[str, Path], corrupt: list[Path]
) -> None:
    out = tmp_path / "film" / "film.mp4"
    out.parent.mkdir()
    with pytest.raises(MediaError, match=str(corrupt[0])):
        stitch_clips([clips["red"], corrupt[0]], out)
    assert list(out.parent.iterdir()) == []


# --- stitching --------------------------------------------------------------------------


def _seconds(result: StitchResult, frames: int) -> None:
    assert result.frames == pytest.approx(frames, abs=1)
    assert result.duration == pytest.approx(frames / FPS, abs=1 / FPS)
    probe = probe_video(result.path)
    assert probe.frames == pytest.approx(frames, abs=1)
    assert probe.duration == pytest.approx(frames / FPS, abs=1 / FPS)


def test_stream_copy_keeps_every_frame_in_order(tmp_path: Path, clips: dict[str, Path]) -> None:
    parts = [clips["red"], clips["green"], clips["blue"]]
    result = stitch_clips(parts, tmp_path / "film.mp4")
    assert result.method == "copy"
    _seconds(result, 72 + 96 + 120)
    assert video_packets(result.path) == [p for part in parts for p in video_packets(part)]
    numbers = [frame_number(f) for f in decoded(result.path)]
    assert numbers == [*range(72), *range(96), *range(120)]


def test_stream_copy_of_clips_with_b_frames(tmp_path: Path, clips: dict[str, Path]) -> None:
    """Decode times run ahead of presentation; they must still rise across the seam."""
    result = stitch_clips([clips["bframes"], clips["bframes2"]], tmp_path / "film.mp4")
    assert result.method == "copy"
    _seconds(result, 72 + 60)
    assert [frame_number(f) for f in decoded(result.path)] == [*range(72), *range(60)]


@pytest.mark.parametrize("other", ["wide", "fps30", "bframes"])
def test_clips_that_differ_are_reencoded(
    tmp_path: Path, clips: dict[str, Path], other: str
) -> None:
    """Size, frame rate or codec headers differ: a stream copy would write a broken file."""
    result = stitch_clips([clips["red"], clips[other]], tmp_path / "film.mp4")
    assert result.method == "reencode"
    probe = probe_video(result.path)
    assert (probe.width, probe.height, probe.fps) == (W, H, Fraction(FPS))
    _seconds(result, 72 + round(probe_video(clips[other]).duration * FPS))


def test_reencode_scales_and_letterboxes_onto_the_first_clip(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    result = stitch_clips([clips["red"], clips["wide"], clips["square"]], tmp_path / "f.mp4")
    frames = decoded(result.path)
    assert len(frames) == 72 + 48 + 48
    assert psnr(frames[72 + 7], picture(7, YELLOW)) > 30  # same shape: scaled down
    square = frames[72 + 48 + 7]  # 240x240 fits as 180x180, with bars 70 wide at each side
    assert square[:, :68].max() < 30 and square[:, -68:].max() < 30
    fitted = Image.fromarray(picture(7, YELLOW, 240, 240)).resize((180, 180))
    assert psnr(square[:, 70:250], np.asarray(fitted)) > 25


def test_reencode_puts_a_keyframe_at_least_every_second(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    result = stitch_clips([clips["red"], clips["fps30"], clips["green"]], tmp_path / "f.mp4")
    with av.open(str(result.path)) as container:
        keys = [i for i, p in enumerate(container.demux(video=0)) if p.size and p.is_keyframe]
    assert keys[0] == 0 and max(b - a for a, b in zip(keys, keys[1:])) <= FPS


def test_reencode_keeps_the_first_clips_colour_tags(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    tagged = tmp_path / "tagged.mp4"
    with av.open(str(tagged), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        ctx = stream.codec_context
        ctx.color_range, ctx.color_primaries, ctx.color_trc, ctx.colorspace = 1, 1, 1, 1  # BT.709
        frame = av.VideoFrame.from_ndarray(picture(0, RED), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    result = stitch_clips([tagged, clips["wide"]], tmp_path / "film.mp4")
    with av.open(str(result.path)) as container:
        out = container.streams.video[0].codec_context
        tags = (out.color_range, out.color_primaries, out.color_trc, out.colorspace)
    assert tags == (1, 1, 1, 1)


def test_webm_output_is_vp9(tmp_path: Path, clips: dict[str, Path]) -> None:
    result = stitch_clips([clips["red"], clips["green"]], tmp_path / "film.webm")
    probe = probe_video(result.path)
    assert (result.method, probe.container, probe.codec) == ("reencode", "webm", "vp9")
    _seconds(result, 72 + 96)


def test_webm_clips_are_copied_into_webm(tmp_path: Path, clips: dict[str, Path]) -> None:
    """WebM carries no per-packet durations or frame counts; timing comes from timestamps."""
    result = stitch_clips([clips["webm"]] * 3, tmp_path / "film.webm")
    assert result.method == "copy"
    _seconds(result, 3 * 48)
    assert [frame_number(f) for f in decoded(result.path)] == [*range(48)] * 3


def test_webm_clips_are_reencoded_into_mp4(tmp_path: Path, clips: dict[str, Path]) -> None:
    result = stitch_clips([clips["webm"], clips["red"]], tmp_path / "film.mp4")
    assert (result.method, probe_video(result.path).codec) == ("reencode", "h264")
    _seconds(result, 48 + 72)
    assert [frame_number(f) for f in decoded(result.path)] == [*range(48), *range(72)]


def test_output_format_overrides_the_extension(tmp_path: Path, clips: dict[str, Path]) -> None:
    result = stitch_clips([clips["red"]], tmp_path / "film.out", output_format="MOV")
    assert (result.method, probe_video(result.path).container) == ("copy", "mov")


def test_odd_sizes_cannot_be_reencoded(tmp_path: Path, clips: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="even width and height"):
        stitch_clips([clips["odd"], clips["red"]], tmp_path / "film.mp4")


def _expected_blend(a: Picture, b: Picture, weight: float) -> Picture:
    return (a * (1 - weight) + b * weight).round().astype(np.uint8)


@pytest.mark.parametrize("names", [("red", "green", "blue"), ("bframes", "bframes2")])
def test_crossfade_overlaps_and_blends_linearly(
    tmp_path: Path, clips: dict[str, Path], names: tuple[str, ...]
) -> None:
    parts = [clips[name] for name in names]
    counts = [probe_video(part).frames for part in parts]
    result = stitch_clips(parts, tmp_path / "film.mp4", transition=Transition("crossfade", 1.0))
    assert result.method == "crossfade"
    _seconds(result, sum(counts) - FPS * (len(parts) - 1))
    frames = decoded(result.path)
    # Fade frame j mixes A's frame (count - 24 + j), red, and B's frame j, green, with weight
    # (j + 1) / 25 on B. Look at the middle of the first fade.
    j = 12
    a, b = picture(counts[0] - FPS + j, RED), picture(j, GREEN)
    middle = frames[counts[0] - FPS + j]
    assert psnr(middle, _expected_blend(a, b, (j + 1) / (FPS + 1))) > 30
    assert psnr(middle, a) < 25 and psnr(middle, b) < 25
    assert frame_number(frames[counts[0]]) == FPS  # right after the fade: B's frame 24


def test_crossfade_copies_the_gops_clear_of_the_seams(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    """Clips encoded with the film's own settings: only the GOPs at each seam are re-encoded."""
    parts = [clips["red"], clips["green"], clips["blue"]]
    result = stitch_clips(parts, tmp_path / "film.mp4", transition=Transition("crossfade", 1.0))
    out = video_packets(result.path)
    green = video_packets(clips["green"])
    # red: GOPs 1-2 copied, GOP 3 is the fade; green: GOP 1 is the fade, GOPs 2-3 copied ...
    assert green[24:72] == out[72:120]
    assert set(video_packets(clips["red"])[:48]) <= set(out)
    assert video_packets(clips["blue"])[24:] == out[-96:]


def test_crossfade_longer_than_a_clip_is_refused(tmp_path: Path, clips: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="too short"):
        stitch_clips([clips["red"], clips["wide"], clips["red"]], tmp_path / "film.mp4",
                     transition=Transition("crossfade", 1.5))


def test_sound_is_copied_or_mixed(tmp_path: Path, clips: dict[str, Path]) -> None:
    parts = [clips["sound1"], clips["sound2"]]
    copied = stitch_clips(parts, tmp_path / "cut.mp4")
    faded = stitch_clips(parts, tmp_path / "fade.mp4", transition=Transition("crossfade", 0.5))
    mixed = stitch_clips([clips["sound1"], clips["red"]], tmp_path / "mixed.mp4")
    assert (copied.method, faded.method, mixed.method) == ("copy", "crossfade", "copy")
    # a silent clip next to one with sound: the pictures are still copied, the sound rebuilt
    assert video_packets(mixed.path) == video_packets(clips["sound1"]) + video_packets(
        clips["red"])
    for result in (copied, faded, mixed):
        assert probe_video(result.path).has_audio
        with av.open(str(result.path)) as container:
            audio = container.streams.audio[0]
            seconds = float((audio.duration or 0) * (audio.time_base or 0))
        assert seconds == pytest.approx(result.duration, abs=0.1)


@pytest.mark.parametrize(
    ("names", "transition", "suffix"),
    [
        (("red", "green"), Transition(), ".mp4"),
        (("red", "wide"), Transition(), ".mp4"),
        (("red", "green"), Transition("crossfade", 0.5), ".mp4"),
        (("bframes", "sound2"), Transition("crossfade", 0.5), ".mp4"),
        (("red", "green"), Transition(), ".webm"),
    ],
)
def test_stitching_twice_gives_identical_bytes(
    tmp_path: Path,
    clips: dict[str, Path],
    names: tuple[str, ...],
    transition: Transition,
    suffix: str,
) -> None:
    parts = [clips[name] for name in names]
    first = stitch_clips(parts, tmp_path / f"one{suffix}", transition=transition)
    second = stitch_clips(parts, tmp_path / f"two{suffix}", transition=transition)
    assert first.path.read_bytes() == second.path.read_bytes()


def _top_level_boxes(path: Path) -> list[str]:
    data, boxes, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        boxes.append(data[pos + 4 : pos + 8].decode("ascii"))
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        pos += size if size else len(data)
    return boxes


@pytest.mark.parametrize(
    ("names", "transition"),
    [(("red", "green"), Transition()), (("red", "wide"), Transition()),
     (("red", "green"), Transition("crossfade", 0.5))],
)
def test_mp4_films_start_with_the_index(
    tmp_path: Path, clips: dict[str, Path], names: tuple[str, ...], transition: Transition
) -> None:
    """faststart: the moov box comes before mdat, so a browser can play while loading."""
    parts = [clips[name] for name in names]
    result = stitch_clips(parts, tmp_path / "film.mp4", transition=transition)
    boxes = _top_level_boxes(result.path)
    assert boxes.index("moov") < boxes.index("mdat")


def test_transition_must_be_known() -> None:
    with pytest.raises(ValueError, match="wipe"):
        Transition("wipe", 1.0)


def test_unknown_film_format_is_refused(tmp_path: Path, clips: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="film.avi"):
        stitch_clips([clips["red"]], tmp_path / "film.avi")
