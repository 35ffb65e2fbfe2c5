"""How music/chords.ogg was made: four synthesized chords (C, A minor, F, G), six seconds
each, a soft pad under a slow arpeggio, as Opus at 48 kbit/s; the same bytes every time.
Run from this folder, with storyreel installed:

    python chords.py
"""

from __future__ import annotations

import av
import numpy as np

from pipeline.media.sound import encode_track

RATE, BAR = 48_000, 6.0
CHORDS = [(261.63, 329.63, 392.00), (220.00, 261.63, 329.63),
          (174.61, 220.00, 261.63), (196.00, 246.94, 293.66)]


def note(hz: float, seconds: float, level: float, detune: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    envelope = np.minimum(1, t / 0.4) * np.exp(-t / (seconds * 0.8))
    wave = np.sin(2 * np.pi * hz * (1 + detune) * t) + 0.3 * np.sin(4 * np.pi * hz * t)
    return (level * envelope * wave).astype(np.float32)


def bar(chord: tuple[float, float, float]) -> np.ndarray:
    sound = np.zeros((2, round(BAR * RATE)), np.float32)
    for hz in chord:  # the pad, a little wider in the right channel
        sound[0] += note(hz / 2, BAR, 0.08)
        sound[1] += note(hz / 2, BAR, 0.08, detune=0.002)
    for step in range(12):  # the arpeggio: up and down the chord, an octave higher
        hz = chord[[0, 1, 2, 1][step % 4]] * 2
        at = round(step * BAR / 12 * RATE)
        tone = note(hz, BAR / 6, 0.06)[: sound.shape[1] - at]
        sound[step % 2, at : at + tone.size] += tone
        sound[1 - step % 2, at : at + tone.size] += 0.6 * tone
    return sound


def main() -> None:
    music = np.concatenate([bar(chord) for chord in CHORDS], axis=1)
    with av.open("chords.ogg", "w", format="ogg", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libopus", rate=RATE)
        stream.layout, stream.bit_rate = "stereo", 48_000
        container.mux(encode_track(stream, music))


if __name__ == "__main__":
    main()
