"""Captions: where each caption shows on a film (`Shown`, in film frames) in; a WebVTT and an
SRT file next to the film, or the overlays that burn them into its picture, out.

The files are written by pysubs2; a cue starts on the first millisecond of its first frame
and ends on the first millisecond of the frame after its last, so no player shows it a
frame early or cuts it a frame short. Text that WebVTT reads as markup (`<`, `>`, `&`) is
escaped there; SRT has no escapes and gets the text as written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pysubs2

from ..store.atomic import write_atomic
from .cues import Shown
from .text import CAPTION_STYLE, Overlay, render_text

__all__ = ["caption_files", "caption_overlays", "captions_text", "write_captions"]

_VTT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def caption_files(film: Path) -> tuple[Path, Path]:
    """Where a film's captions go: `<film>.vtt` and `<film>.srt` beside it."""
    return film.with_suffix(".vtt"), film.with_suffix(".srt")


def captions_text(shown: Sequence[Shown], fps: Fraction, kind: str) -> str:
    """The captions as a `vtt` or `srt` file's text."""
    subs = pysubs2.SSAFile()
    for cue in shown:
        event = pysubs2.SSAEvent(start=_ms(cue.first, fps), end=_ms(cue.stop, fps))
        event.plaintext = cue.text.translate(_VTT_ESCAPES) if kind == "vtt" else cue.text
        subs.append(event)
    return subs.to_string(kind)


def _ms(frame: int, fps: Fraction) -> int:
    return math.ceil(frame * 1000 / fps)


def write_captions(shown: Sequence[Shown], fps: Fraction, film: Path) -> tuple[Path, Path]:
    """Write the film's WebVTT and SRT files; return their paths."""
    vtt, srt = caption_files(film)
    write_atomic(vtt, captions_text(shown, fps, "vtt").encode("utf-8"))
    write_atomic(srt, captions_text(shown, fps, "srt").encode("utf-8"))
    return vtt, srt


def caption_overlays(shown: Sequence[Shown], width: int, height: int) -> list[Overlay]:
    """Each caption drawn once, over the frames it shows on."""
    stamps = {text: render_text(text, width, height, CAPTION_STYLE)
              for text in dict.fromkeys(cue.text for cue in shown)}
    return [Overlay(cue.first, cue.stop, stamps[cue.text]) for cue in shown]
