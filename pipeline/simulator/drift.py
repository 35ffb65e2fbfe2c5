"""Drift: a clip's composed frames in; the same frames drifting as a real model's do, out.

With `--sim-drift RATE`, each clip's colour moves from its first frame's towards a warm,
washed-out cast (`DRIFT_TONE`, a look as `looks` applies them), RATE of the way there by its
last frame, so a chain of clips, each starting from the last one's end, drifts further at
every hop. Its last quarter second smears sideways, more and more, as if the camera moved
while it stopped. A given first frame stays as it was given (the drift starts from nothing);
a given last frame too (the drift fades back out and nothing smears), as a model is asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from .frames import U8, FrameBuffer
from .looks import Tone

__all__ = ["BLUR_SECONDS", "DRIFT_TONE", "drift_frames", "smear"]

DRIFT_TONE = Tone(contrast=0.8, lift=12, shift_u=-60, shift_v=50)
BLUR_SECONDS = 0.25  # the smeared end of a clip: well inside the half second `best` looks at
_BLUR_SHARE = 1 / 24  # the last frame's smear, as a share of the picture's width


def drift_frames(frames: Iterable[FrameBuffer], strengths: Sequence[float], rate: float,
                 fps: int, *, smear_end: bool) -> Iterator[FrameBuffer]:
    """The frames drifted by `rate` over the clip; `strengths` are the beats' look strengths
    (0 on a given first or last frame), which the drift follows."""
    count = len(strengths)
    blurred = max(1, round(BLUR_SECONDS * fps)) if smear_end else 0
    for index, (frame, strength) in enumerate(zip(frames, strengths, strict=True)):
        progress = index / max(count - 1, 1)
        amount = rate * progress * strength
        if amount > 0:
            for plane, table in zip(frame.planes, DRIFT_TONE.tables(amount)):
                np.take(table, plane, out=plane)
        late = index - (count - blurred)
        if late >= 0 and index > 0:
            length = round(frame.size[0] * _BLUR_SHARE * (late + 1) / blurred)
            for plane, sub in zip(frame.planes, (1, 2, 2)):
                smear(plane, length // sub)
        yield frame


def smear(plane: U8, length: int) -> None:
    """A sideways box blur `length` pixels long, in place: the blur of a panning camera."""
    if length < 2:
        return
    left = length // 2
    padded = np.pad(plane.astype(np.uint32), ((0, 0), (left + 1, length - 1 - left)), "edge")
    padded[:, 0] = 0
    sums = np.cumsum(padded, axis=1, dtype=np.uint32)
    plane[...] = (sums[:, length:] - sums[:, :-length]) // length
