"""Benchmark of the media stage against the ffmpeg command line doing the same job.

Builds 1280x720 24 fps H.264 clips (5 s and 8 s, a keyframe every 24 frames) with PyAV, then
times each job (median of 3) next to the equivalent ffmpeg command, run in the same process
environment. Target: within 1.2x of ffmpeg.

    python bench/media.py
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from pipeline.media.formats import H264_OPTIONS
from pipeline.media.frames import extract_frame, save_png
from pipeline.media.stitch import Transition, stitch_clips

WIDTH, HEIGHT, FPS, GOP = 1280, 720, 24, 24
REPEATS = 3


def run_media_bench() -> list[dict[str, object]]:
    """Time every job; one row per job with ours, ffmpeg's and the ratio, in seconds."""
    with tempfile.TemporaryDirectory(prefix="storyreel-bench-") as folder:
        work = Path(folder)
        clips = _make_clips(work)
        return [_row(name, ours, theirs) for name, ours, theirs in _jobs(work, clips)]


def _jobs(
    work: Path, clips: dict[str, Path]
) -> list[tuple[str, Callable[[], object], list[str]]]:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    quiet = [ffmpeg, "-v", "error", "-y"]
    eight, five, other = clips["8s"], clips["5s"], clips["5s-foreign"]
    concat_list = work / "concat.txt"
    concat_list.write_text("".join(f"file '{five}'\n" for _ in range(10)))
    last_second = [*quiet, "-sseof", "-1", "-i", str(eight), "-vf", "reverse", "-frames:v", "1"]
    return [
        (
            "last frame of an 8 s clip, to RGB",
            lambda: extract_frame(eight, "last"),
            [*last_second, "-pix_fmt", "rgb24", "-f", "rawvideo", str(work / "last.rgb")],
        ),
        (
            "last frame of an 8 s clip, to PNG",
            lambda: save_png(extract_frame(eight, "last"), work / "last.png"),
            [*last_second, str(work / "last-ffmpeg.png")],
        ),
        (
            "stream-copy concat of 10 x 5 s clips",
            lambda: stitch_clips([five] * 10, work / "concat.mp4"),
            [*quiet, "-f", "concat", "-safe", "0", "-i", str(concat_list), "-c", "copy",
             "-movflags", "+faststart", str(work / "concat-ffmpeg.mp4")],
        ),
        (
            "1 s crossfade of 2 x 5 s clips (splice)",
            lambda: stitch_clips([five, five], work / "fade.mp4", transition=_FADE),
            _xfade(quiet, five, five, work / "fade-ffmpeg.mp4"),
        ),
        (
            "1 s crossfade of 2 x 5 s clips (full re-encode)",
            lambda: stitch_clips([other, other], work / "fade-full.mp4", transition=_FADE),
            _xfade(quiet, other, other, work / "fade-full-ffmpeg.mp4"),
        ),
    ]


_FADE = Transition("crossfade", 1.0)


def _xfade(quiet: list[str], a: Path, b: Path, out: Path) -> list[str]:
    return [*quiet, "-i", str(a), "-i", str(b), "-filter_complex",
            "[0:v][1:v]xfade=transition=fade:duration=1:offset=4,format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", H264_OPTIONS["crf"], "-g", str(GOP),
            str(out)]


def _row(name: str, ours: Callable[[], object], theirs: list[str]) -> dict[str, object]:
    ours_s, theirs_s = _medians(ours, lambda: subprocess.run(theirs, check=True))
    return {"job": name, "ours_s": round(ours_s, 4), "ffmpeg_s": round(theirs_s, 4),
            "ratio": round(ours_s / theirs_s, 2)}


def _medians(ours: Callable[[], object], theirs: Callable[[], object]) -> tuple[float, float]:
    """Median of REPEATS runs each, taken in turns so a busy moment hits both sides."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(REPEATS):
        for job, spent in ((ours, times[0]), (theirs, times[1])):
            start = time.perf_counter()
            job()
            spent.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def _make_clips(work: Path) -> dict[str, Path]:
    """Clips as the film's own encoder writes them, and one from another encoder setting."""
    foreign = {"preset": "veryfast", "crf": "23"}  # other headers: B-frames, High profile
    return {
        "8s": _make_clip(work / "clip-8s.mp4", 8 * FPS, H264_OPTIONS),
        "5s": _make_clip(work / "clip-5s.mp4", 5 * FPS, H264_OPTIONS),
        "5s-foreign": _make_clip(work / "clip-5s-foreign.mp4", 5 * FPS, foreign),
    }


def _make_clip(path: Path, frames: int, options: dict[str, str]) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options=dict(options))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.codec_context.time_base = Fraction(1, FPS)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_picture(index), format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _picture(index: int) -> npt.NDArray[np.uint8]:
    """A moving gradient with a drifting checkerboard: motion and detail for the encoder."""
    y = np.add.outer(np.arange(HEIGHT) // 3, np.arange(WIDTH) // 5 + index * 3) % 220 + 16
    board = (np.add.outer(np.arange(HEIGHT) // 40, (np.arange(WIDTH) + index * 4) // 40) % 2)
    y = (y + board * 30).astype(np.uint8)
    chroma = np.full((HEIGHT // 2, WIDTH), 128 + (index % 40) - 20, np.uint8)
    return np.concatenate([y, chroma])


def _print(rows: list[dict[str, object]]) -> None:
    print(f"{'job':50} {'ours':>9} {'ffmpeg':>9} {'ratio':>6}")
    for row in rows:
        print(f"{row['job']!s:50} {row['ours_s']:>8}s {row['ffmpeg_s']:>8}s {row['ratio']:>6}")


if __name__ == "__main__":
    _print(run_media_bench())
