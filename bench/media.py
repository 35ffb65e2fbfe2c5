"""Benchmark of the media stage against the ffmpeg command line doing the same job.

Builds 1280x720 24 fps H.264 clips (5 s and 8 s, a keyframe every 24 frames) with PyAV, then
times each job (median of 3) next to the equivalent ffmpeg command, run in the same process
environment. Target: within 1.2x of ffmpeg.

The soundtrack job lays 2 minutes of music (AAC) under a 2-minute film whose every other
shot has sound of its own: cut to the film, faded in and out, lowered 12 dB under the
clips' sound, mixed, brought to -16 LUFS, encoded as AAC and muxed with the picture copied.
ffmpeg's command does the same in one filter graph (`volume` switched on under the clips'
sound, `amix`, `afade`, and its one-pass `loudnorm`).

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
from typing import cast

import av
import imageio_ffmpeg  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer

from pipeline.media.cues import Finish, SoundCue, Soundtrack
from pipeline.media.finish import finish_film
from pipeline.media.formats import H264_OPTIONS
from pipeline.media.frames import extract_frame, save_png
from pipeline.media.sound import AUDIO_RATE, encode_track
from pipeline.media.stitch import Transition, stitch_clips

WIDTH, HEIGHT, FPS, GOP = 1280, 720, 24, 24
REPEATS = 3


def run_media_bench() -> list[dict[str, object]]:
    """Time every job; one row per job with ours, ffmpeg's and the ratio, in seconds."""
    with tempfile.TemporaryDirectory(prefix="storyreel-bench-") as folder:
        work = Path(folder)
        clips = _make_clips(work)
        jobs = [*_jobs(work, clips), _soundtrack_job(work)]
        return [_row(name, ours, theirs) for name, ours, theirs in jobs]


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
FILM_SHOTS = 24  # 5 s each: a 2-minute film
DUCK_DB, LOUDNESS = 12.0, -16.0


def _soundtrack_job(work: Path) -> tuple[str, Callable[[], object], list[str]]:
    """A soundtrack mixed and muxed into a 2-minute film, ours and ffmpeg's."""
    voiced = _make_clip(work / "voiced.mp4", 5 * FPS, H264_OPTIONS, sound=0.3)
    quiet = _make_clip(work / "quiet.mp4", 5 * FPS, H264_OPTIONS, sound=0.0)
    film = stitch_clips([voiced, quiet] * (FILM_SHOTS // 2), work / "two-minutes.mp4")
    music = _make_music(work / "music.m4a", film.duration + 10)
    track = Soundtrack((SoundCue(music, "", 0.0, fade_in=2.0),), DUCK_DB, LOUDNESS)
    finish = Finish(track)
    out = work / "scored.mp4"
    return ("soundtrack mixed and muxed into a 2-minute film",
            lambda: finish_film(film.path, film.timeline, finish, out),
            _ffmpeg_score(film.path, music, film.duration, work / "scored-ffmpeg.mp4"))


def _ffmpeg_score(film: Path, music: Path, seconds: float, out: Path) -> list[str]:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    voiced = "+".join(f"between(t,{i * 5},{i * 5 + 5})" for i in range(0, FILM_SHOTS, 2))
    graph = (f"[1:a]atrim=0:{seconds},afade=t=in:d=2,"
             f"volume=volume={10 ** (-DUCK_DB / 20):.4f}:enable='{voiced}'[m];"
             f"[0:a][m]amix=inputs=2:normalize=0:duration=first,"
             f"afade=t=out:st={seconds - 1}:d=1,loudnorm=I={LOUDNESS}:TP=-1,"
             f"aresample=48000[a]")
    return [ffmpeg, "-v", "error", "-y", "-i", str(film), "-i", str(music),
            "-filter_complex", graph, "-map", "0:v", "-map", "[a]", "-c:v", "copy",
            "-c:a", "aac", "-movflags", "+faststart", str(out)]


def _make_music(path: Path, seconds: float) -> Path:
    """Chords changing every 2 s, as AAC: music for the encoder to work at."""
    t = np.arange(round(seconds * AUDIO_RATE)) / AUDIO_RATE
    roots = 196.0 * 2 ** (np.floor(t / 2) % 4 * 3 / 12)
    wave = sum(np.sin(2 * np.pi * roots * ratio * t) for ratio in (1.0, 1.26, 1.5)) * 0.1
    return _write_sound(path, np.stack([wave, wave]).astype(np.float32), "mp4")


def _write_sound(path: Path, sound: npt.NDArray[np.float32], muxer: str) -> Path:
    with av.open(str(path), "w", format=muxer) as container:
        container.mux(encode_track(_sound_stream(container), sound))
    return path


def _sound_stream(container: OutputContainer) -> AudioStream:
    stream = cast(AudioStream, container.add_stream("aac", rate=AUDIO_RATE))
    stream.layout = "stereo"
    return stream


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


def _make_clip(path: Path, frames: int, options: dict[str, str],
               sound: float | None = None) -> Path:
    """A clip; with `sound`, a 440 Hz tone of that level under it (0: a silent track)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options=dict(options))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.codec_context.time_base = Fraction(1, FPS)
        audio = _sound_stream(container) if sound is not None else None
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_picture(index), format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None and sound is not None:
            t = np.arange(frames * AUDIO_RATE // FPS) / AUDIO_RATE
            wave = (sound * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            container.mux(encode_track(audio, np.stack([wave, wave])))
    return path


def _picture(index: int) -> npt.NDArray[np.uint8]:
    """A moving gradient with a drifting checkerboard: motion and detail for the encoder."""
    y = np.add.outer(np.arange(HEIGHT) // 3, np.arange(WIDTH) // 5 + index * 3) % 220 + 16
    board = (np.add.outer(np.arange(HEIGHT) // 40, (np.arange(WIDTH) + index * 4) // 40) % 2)
    y = (y + board * 30).astype(np.uint8)
    chroma = np.full((HEIGHT // 2, WIDTH), 128 + (index % 40) - 20, np.uint8)
    return np.concatenate([y, chroma])


def _print(rows: list[dict[str, object]]) -> None:
    print(f"{'job':52} {'ours':>9} {'ffmpeg':>9} {'ratio':>6}")
    for row in rows:
        print(f"{row['job']!s:52} {row['ours_s']:>8}s {row['ffmpeg_s']:>8}s {row['ratio']:>6}")


if __name__ == "__main__":
    _print(run_media_bench())
