"""Audio files: a soundtrack file (WAV, MP3, M4A/AAC, OGG/Opus, FLAC) in; what it holds or
why it cannot be used, and its samples on the film's sound grid, out.

`probe_audio` decodes the whole file once, so a file that is not audio, holds no sound, or
was cut short (a download that stopped, a copy that did not finish) is found before a run:
by a decoding error, by fewer seconds than the file declares, or by its container's own
bookkeeping (a RIFF size beyond the end of the file, an Ogg stream without its last page).
`read_sound` gives seconds of it as stereo float samples at `AUDIO_RATE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer

from ..errors import MediaError
from .probe import media_errors
from .sound import AUDIO_RATE, Sound

__all__ = ["AudioFacts", "probe_audio", "read_sound"]

_SHORT_BY = 0.1  # seconds a file may hold less than it declares (codec delay, rounding)


@dataclass(frozen=True)
class AudioFacts:
    """What an audio file holds, decoded to its end."""

    codec: str
    seconds: float
    rate: int
    channels: int


def probe_audio(path: Path) -> AudioFacts:
    """Decode `path` to its end; a MediaError says why it is not usable audio."""
    container = _open(path)
    with container:
        stream = _audio_stream(container, path)
        samples, stopped = 0, None
        try:
            for frame in container.decode(stream):
                samples += frame.samples
        except av.FFmpegError as exc:  # what a cut-off packet or page gives
            stopped = exc.strerror or type(exc).__name__
        rate = stream.codec_context.sample_rate or AUDIO_RATE
        facts = AudioFacts(stream.codec_context.name, samples / rate, rate,
                           stream.codec_context.channels)
        declared = _declared_seconds(container, stream)
    if stopped is not None:
        raise MediaError(f"{path}: damaged or cut short: decoding stops after "
                         f"{facts.seconds:.2f} s ({stopped})")
    if not samples:
        raise MediaError(f"{path}: holds no sound")
    if declared is not None and facts.seconds < declared - max(_SHORT_BY, 0.02 * declared):
        raise MediaError(f"{path}: cut short: it declares {declared:.2f} s but holds "
                         f"{facts.seconds:.2f} s")
    _check_container(path)
    return facts


def _open(path: Path) -> InputContainer:
    try:
        return av.open(str(path), "r")
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: cannot be read as sound: not an audio file, or one cut "
                         f"short ({exc.strerror or type(exc).__name__})") from exc
    except OSError as exc:
        raise MediaError(f"{path}: {exc.strerror or type(exc).__name__}") from exc


def _audio_stream(container: InputContainer, path: Path) -> AudioStream:
    if not container.streams.audio:
        raise MediaError(f"{path}: holds no sound (no audio stream)")
    return container.streams.audio[0]


def _declared_seconds(container: InputContainer, stream: AudioStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def _check_container(path: Path) -> None:
    """What FFmpeg forgives in a cut-off file: a WAV whose RIFF header counts more bytes than
    the file has, an Ogg stream whose last page is missing or incomplete."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(12)
        handle.seek(max(0, size - 65_536))
        tail = handle.read()
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        declared = int.from_bytes(head[4:8], "little") + 8
        if 8 < declared < 0xFFFFFFFF and size < declared:
            raise MediaError(f"{path}: cut short: its header counts {declared} bytes, the "
                             f"file has {size}")
    if head[:4] == b"OggS" and not _ogg_ends(tail):
        raise MediaError(f"{path}: cut short: the Ogg stream has no last page")


def _ogg_ends(tail: bytes) -> bool:
    """Whether the last Ogg page in `tail` is complete and marks the end of its stream."""
    at = tail.rfind(b"OggS")
    if at < 0 or len(tail) < at + 27:
        return False
    segments = tail[at + 27 : at + 27 + tail[at + 26]]
    complete = len(tail) - at >= 27 + len(segments) + sum(segments)
    return complete and bool(tail[at + 5] & 0x04)


def read_sound(path: Path, start: float = 0.0, seconds: float | None = None) -> Sound:
    """`seconds` of the file from `start` (None: to its end), stereo at `AUDIO_RATE`."""
    first = round(start * AUDIO_RATE)
    stop = None if seconds is None else first + round(seconds * AUDIO_RATE)
    chunks, have = [], 0
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    with media_errors(path), av.open(str(path), "r") as container:
        stream = _audio_stream(container, path)
        for frame in chain(container.decode(stream), [None]):
            for chunk in resampler.resample(frame):
                chunks.append(chunk.to_ndarray())
                have += chunks[-1].shape[1]
            if stop is not None and have >= stop:
                break
    sound = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    return np.ascontiguousarray(sound[:, first:stop], dtype=np.float32)
