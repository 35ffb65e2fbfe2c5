"""Finish: a stitched film, its `Timeline` and what the storyboard lays over it (a `Finish`:
a soundtrack, captions to burn, a title) in; the finished film, written atomically, and its
timeline (with the title card, if any, in front) out.

A step after stitching, so it does not care how the picture was made: the video packets are
copied as they are unless something is drawn on them (`burn`), and the sound track is
rebuilt (the film's own sound behind the card, the music mixed under it, `soundtrack`) and
encoded once (AAC in MP4 and MOV, Opus in WebM), or copied when only the picture changes.
Captions as files are written by `captions`, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from av.container import OutputContainer
from av.packet import Packet

from ..errors import MediaError
from ..store.atomic import atomic_path
from .burn import BurnMethod, burn_packets
from .captions import caption_overlays
from .clip import Canvas, Clip
from .copy import move_packet
from .cues import Finish, Title, caption_times, shot_stretch, title_frames, with_title
from .formats import OutputFormat, format_for_file, open_output
from .probe import media_errors
from .sound import AUDIO_RATE, Sound, SoundQueue
from .soundtrack import mix_soundtrack
from .text import TITLE_STYLE, Overlay, render_text
from .timeline import Timeline

if TYPE_CHECKING:
    AnyPacket = Packet[Any]

__all__ = ["TITLE_FADE", "Finished", "finish_film", "needs_finishing"]

TITLE_FADE = 0.5  # seconds a title takes to appear and to go


@dataclass(frozen=True)
class Finished:
    path: Path
    picture: BurnMethod
    timeline: Timeline


def needs_finishing(finish: Finish) -> bool:
    """Whether the stitched film must be rewritten (captions as files alone need not)."""
    return finish.soundtrack is not None or finish.edits_picture


def finish_film(stitched: Path, timeline: Timeline, finish: Finish, out: Path,
                output_format: str | None = None) -> Finished:
    """Write `out`: the film at `stitched` (laid out as `timeline`) finished with `finish`."""
    fmt = format_for_file(out, output_format)
    with Clip.open(stitched) as film, media_errors(out), atomic_path(out) as tmp:
        film.index()
        canvas = _canvas(film, finish)
        lead = title_frames(finish.title, canvas.fps)
        final = with_title(timeline, lead)
        with open_output(tmp, fmt) as output:
            method, video = burn_packets(film, canvas, output, fmt, lead,
                                         film_overlays(finish, final, canvas))
            sound = _sound(film, output, fmt, finish, final, lead)
            sound.mux(video)
            sound.drain()
    return Finished(out, method, final)


def _canvas(film: Clip, finish: Finish) -> Canvas:
    canvas = Canvas.of(film)
    if finish.edits_picture and (canvas.width % 2 or canvas.height % 2):
        raise MediaError(f"{film.path}: {canvas.width}x{canvas.height} cannot be drawn on and "
                         "encoded; yuv420p needs an even width and height")
    return canvas


def film_overlays(finish: Finish, final: Timeline, canvas: Canvas) -> list[Overlay]:
    """What is drawn on the finished film: the title, and the captions when they burn."""
    overlays = [_title(finish.title, final, canvas)] if finish.title else []
    if finish.burns:
        shown = caption_times(finish.captions, final)
        overlays += caption_overlays(shown, canvas.width, canvas.height)
    return overlays


def _title(title: Title, final: Timeline, canvas: Canvas) -> Overlay:
    """The title over its card, or over the start of the shot it names, fading in and out."""
    if title.over is None:
        first, stop = 0, final.entries[0].frames
    else:
        index = next(i for i, e in enumerate(final.entries) if e.key == title.over)
        first = shot_stretch(final, index)[0]
        stop = min(first + max(1, round(Fraction(title.seconds) * canvas.fps)), final.frames)
    fade = min(round(Fraction(TITLE_FADE) * canvas.fps), (stop - first) // 4)
    stamp = render_text(title.text, canvas.width, canvas.height, TITLE_STYLE)
    return Overlay(first, stop, stamp, fade)


def _sound(film: Clip, output: OutputContainer, fmt: OutputFormat, finish: Finish,
           final: Timeline, lead: int) -> SoundQueue:
    """The finished film's sound: rebuilt under a soundtrack or behind a card, otherwise the
    film's own packets, copied."""
    own = film.audio.codec_context.name if film.audio is not None else None
    if finish.soundtrack is None and not lead and own in {None, *fmt.copy_audio}:
        queue = SoundQueue(output, fmt, None)
        queue.packets.extend(_copied_sound(film, output))
        return queue
    if finish.soundtrack is None and film.audio is None:
        return SoundQueue(output, fmt, None)
    track = _film_sound(film, final, lead)
    if finish.soundtrack is not None:
        track = mix_soundtrack(track, final, finish.soundtrack)
    return SoundQueue(output, fmt, track)


def _film_sound(film: Clip, final: Timeline, lead: int) -> Sound:
    """The clips' sound as long as the finished film, silent behind the card."""
    fps = final.fps
    track = np.zeros((2, round(final.frames / fps * AUDIO_RATE)), np.float32)
    own = film.sound(Fraction(final.frames - lead) / fps)
    at = round(lead / fps * AUDIO_RATE)
    track[:, at : at + own.shape[1]] = own[:, : track.shape[1] - at]
    return track


def _copied_sound(film: Clip, output: OutputContainer) -> list[AnyPacket]:
    if film.audio is None:
        return []
    stream = output.add_stream_from_template(film.audio)
    film.container.seek(0)
    packets = list(film.packets(film.audio))
    for packet in packets:
        move_packet(packet, 0, stream)
    return packets
