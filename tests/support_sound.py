"""Small synthetic audio files for soundtrack tests, and ways to read films' sound back.

A test tone is a sine at a known frequency, so a test can tell the music from a clip's own
sound (`support_clips` clips sound at 440 Hz) by measuring each frequency's level.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream

from pipeline.media.audio import read_sound
from pipeline.media.sound import AUDIO_RATE, Sound, encode_track

MUSIC_HZ = 220.0
CLIP_HZ = 440.0  # the tone of support_clips.make_clip(audio=True)
_CODECS = {".wav": ("wav", "pcm_s16le"), ".mp3": ("mp3", "libmp3lame"),
           ".m4a": ("mp4", "aac"), ".ogg": ("ogg", "libopus"), ".opus": ("ogg", "libopus"),
           ".flac": ("flac", "flac")}


def tone(seconds: float, hz: float = MUSIC_HZ, level: float = 0.3) -> Sound:
    t = np.arange(round(seconds * AUDIO_RATE)) / AUDIO_RATE
    wave = (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([wave, wave])


def write_audio(path: Path, sound: Sound) -> Path:
    """`sound` (stereo at AUDIO_RATE) as an audio file of the kind its extension says."""
    muxer, codec = _CODECS[path.suffix]
    with av.open(str(path), "w", format=muxer) as container:
        stream = cast(AudioStream, container.add_stream(codec, rate=AUDIO_RATE))
        stream.layout = "stereo"
        container.mux(encode_track(stream, sound))
    return path


def write_tone(path: Path, seconds: float, hz: float = MUSIC_HZ) -> Path:
    return write_audio(path, tone(seconds, hz))


def film_sound(path: Path) -> Sound:
    """A film's sound track, decoded."""
    return read_sound(path)


def level_at(sound: Sound, hz: float, start: float, seconds: float) -> float:
    """The amplitude of the `hz` component of the left channel over a window."""
    part = sound[0, round(start * AUDIO_RATE) : round((start + seconds) * AUDIO_RATE)]
    t = np.arange(part.size) / AUDIO_RATE
    return float(2 * np.abs(np.mean(part * np.exp(-2j * np.pi * hz * t))))


def onset(sound: Sound, threshold: float = 0.02) -> float:
    """Seconds to the first sample louder than `threshold`."""
    loud: npt.NDArray[np.intp] = np.flatnonzero(np.abs(sound).max(axis=0) > threshold)
    return float(loud[0]) / AUDIO_RATE if loud.size else float("inf")
