"""The simulator's sound: a clip's length and seed in; its sound track, out.

A request that asks for sound (Veo's `generateAudio`, Wan's `audio`, Vidu's `bgm`, ...)
gets a real track in its file: AAC in MP4 and MOV, Opus in WebM (the container's audio
codec in `media.formats`), 48 kHz stereo, exactly as long as the picture. It is a quiet chord
whose notes come from the seed, with a soft tick at every whole second, so that a stitched
film can be heard to stay in sync across its cuts. The same length and seed give the same
samples.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..media.sound import AUDIO_RATE, Sound

_SCALE = (220.0, 246.94, 261.63, 293.66, 329.63, 349.23, 392.0)  # A minor, from A3
LEVEL = 0.08  # peak of each note: quiet, never clipping
TICK = 0.02  # seconds of the tick at each whole second


def tone(seconds: float, seed: int) -> Sound:
    """`seconds` of stereo sound at AUDIO_RATE: three notes chosen by `seed`, a fade in and
    out of 50 ms, a tick at every whole second."""
    count = round(seconds * AUDIO_RATE)
    t = np.arange(count, dtype=np.float64) / AUDIO_RATE
    digest = hashlib.sha256(str(seed).encode()).digest()
    notes = [_SCALE[b % len(_SCALE)] for b in digest[:3]]
    wave = sum(np.sin(2 * np.pi * f * t + k) for k, f in enumerate(notes)) / len(notes)
    tick = (t % 1.0) < TICK
    wave = np.where(tick, wave + 0.5 * np.sin(2 * np.pi * 1760.0 * t), wave)
    ramp = np.clip(np.minimum(t, seconds - t) / 0.05, 0.0, 1.0)
    left = (LEVEL * wave * ramp).astype(np.float32)
    right = np.roll(left, AUDIO_RATE // 100)  # 10 ms apart: a little width
    return np.ascontiguousarray(np.stack([left, right]))
