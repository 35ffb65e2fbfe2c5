"""Soundtrack: the film's own sound (its clips', as long as the film), its timeline and the
storyboard's music cues in; the film's one track, mixed, out.

Each cue is cut from its file (`in`..`out`), given its gain and its fades, and laid where it
starts on the timeline; the music is lowered by `duck_db` under every film entry whose clip
has sound (with short ramps either side), added to the clips' sound, cut at the film's end
and faded out over its last second, and the whole is brought to the target loudness:
measured as ITU-R BS.1770 integrated loudness by pyloudnorm, then any sample peak above -1
dBFS is limited (and the loudness measured again).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from .audio import read_sound
from .cues import TITLE_KEY, SoundCue, Soundtrack, cue_start
from .sound import AUDIO_RATE, Sound
from .timeline import Timeline

__all__ = ["END_FADE", "PEAK_CEILING", "cue_sound", "duck_gains", "fade_end", "loudness_of",
           "mix_soundtrack", "normalise"]

END_FADE = 1.0  # seconds of fade out where the film ends
DUCK_RAMP = 0.25  # seconds the music takes to go down or up around a clip's sound
AUDIBLE = 10 ** (-50 / 20)  # RMS above which a film entry counts as having sound
PEAK_CEILING = 10 ** (-1 / 20)  # -1 dBFS: headroom for the encoder
_LIMIT_BLOCK = 480  # samples (10 ms) per step of the limiter's gain
Gains = npt.NDArray[np.float32]


def mix_soundtrack(film: Sound, timeline: Timeline, soundtrack: Soundtrack) -> Sound:
    """The film's sound with the music under it, faded out at the end and normalised."""
    length = film.shape[1]
    music = np.zeros_like(film)
    for cue in soundtrack.cues:
        at = round(cue_start(cue.start, timeline) * AUDIO_RATE)
        if at < length:
            part = cue_sound(cue, (length - at) / AUDIO_RATE)
            music[:, at : at + part.shape[1]] += part
    mixed = music * duck_gains(film, timeline, soundtrack.duck_db) + film
    fade_end(mixed, min(END_FADE, length / AUDIO_RATE / 2))
    return normalise(mixed, soundtrack.loudness)


def cue_sound(cue: SoundCue, limit: float) -> Sound:
    """The cue's samples, no more than `limit` seconds of them, with its gain and fades; the
    fade out only where the cue itself ends within the limit."""
    tail = -cue.trim_out if cue.trim_out is not None and cue.trim_out < 0 else 0.0
    span = cue.trim_out - cue.trim_in if cue.trim_out is not None and cue.trim_out > 0 else None
    wanted = limit + tail if span is None else min(span, limit)
    sound = read_sound(cue.path, cue.trim_in, wanted)
    ends = sound.shape[1] < round(wanted * AUDIO_RATE) or (span is not None and span <= limit)
    if ends and tail:
        sound = sound[:, : max(0, sound.shape[1] - round(tail * AUDIO_RATE))]
    sound = sound[:, : round(limit * AUDIO_RATE)] * np.float32(10 ** (cue.gain_db / 20))
    fade_in = min(round(cue.fade_in * AUDIO_RATE), sound.shape[1])
    sound[:, :fade_in] *= np.linspace(0, 1, fade_in, endpoint=False, dtype=np.float32)
    if ends:
        fade_end(sound, cue.fade_out)
    return sound


def fade_end(track: Sound, seconds: float) -> None:
    """Fade the last `seconds` of `track` out, in place, to silence on its last sample."""
    samples = min(round(seconds * AUDIO_RATE), track.shape[1])
    if samples:
        track[:, -samples:] *= np.linspace(1, 0, samples, dtype=np.float32)


def duck_gains(film: Sound, timeline: Timeline, duck_db: float) -> Gains:
    """The music's gain at each sample: 1, or `duck_db` lower under entries with sound."""
    length = film.shape[1]
    spans = _merged([_samples(entry.start, entry.end, timeline.fps)
                     for entry in timeline.entries if entry.key != TITLE_KEY
                     and _audible(film, *_samples(entry.start, entry.end, timeline.fps))])
    if duck_db <= 0 or not spans:
        return np.ones(length, np.float32)
    ramp, low = round(DUCK_RAMP * AUDIO_RATE), 10 ** (-duck_db / 20)
    xs: list[float] = []
    ys: list[float] = []
    for a, b in spans:
        xs += [a - ramp, a, b, b + ramp]
        ys += [1.0, low, low, 1.0]
    return np.interp(np.arange(length), xs, ys).astype(np.float32)


def _samples(first: int, stop: int, fps: Fraction) -> tuple[int, int]:
    return round(first / fps * AUDIO_RATE), round(stop / fps * AUDIO_RATE)


def _audible(film: Sound, first: int, stop: int) -> bool:
    part = film[:, first:stop]
    return part.size > 0 and float(np.sqrt(np.mean(np.square(part)))) > AUDIBLE


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans joined where their ramps would meet."""
    gap, out = 2 * round(DUCK_RAMP * AUDIO_RATE), list[tuple[int, int]]()
    for a, b in sorted(spans):
        if out and a - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return out


def loudness_of(track: Sound) -> float:
    """Integrated loudness (LUFS, BS.1770 gated); -inf for silence or under 0.4 s."""
    # Imported here: it brings scipy.signal (about a second), which only a soundtrack needs.
    import pyloudnorm  # type: ignore[import-untyped]

    meter = pyloudnorm.Meter(AUDIO_RATE)
    if track.shape[1] <= meter.block_size * AUDIO_RATE:
        return -math.inf
    return float(meter.integrated_loudness(track.T))


def normalise(track: Sound, target: float) -> Sound:
    """`track` at `target` LUFS, its peaks kept under `PEAK_CEILING`; silence stays silent."""
    out = track
    for _ in range(2):  # a second pass puts back what the limiter took
        measured = loudness_of(out)
        if not math.isfinite(measured) or abs(measured - target) < 0.05:
            break
        out, limited = _limit(out * np.float32(10 ** ((target - measured) / 20)))
        if not limited:
            break
    return out


def _limit(track: Sound) -> tuple[Sound, bool]:
    """Peaks over the ceiling brought down by a gain that moves in 10 ms steps, eased in
    over the step before; whether any was."""
    peak = np.abs(track).max(axis=0)
    if peak.size == 0 or peak.max() <= PEAK_CEILING:
        return track, False
    blocks = -(-peak.size // _LIMIT_BLOCK)
    padded = np.zeros(blocks * _LIMIT_BLOCK, np.float32)
    padded[: peak.size] = peak
    need = np.minimum(1, PEAK_CEILING / np.maximum(padded.reshape(blocks, -1).max(axis=1), 1e-9))
    eased = need.copy()  # each step's gain no higher than its neighbours' needs
    eased[1:] = np.minimum(eased[1:], need[:-1])
    eased[:-1] = np.minimum(eased[:-1], need[1:])
    centres = (np.arange(blocks) + 0.5) * _LIMIT_BLOCK
    gains = np.interp(np.arange(peak.size), centres, eased).astype(np.float32)
    return track * gains, True
