"""Sound: the clips' sound tracks in; the film's one track, mixed, encoded and muxed, out.

A track is stereo float samples at `AUDIO_RATE`. Each part is the sound under one piece of
the film (a clip's, from where the piece starts in it); a clip without sound is silence as
long as its picture; neighbours overlap under linear ramps at a crossfade; the encoded
packets are muxed between the video packets in time order. (`SoundQueue` muxes any track:
the simulator writes its clips' sound with it too.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet

if TYPE_CHECKING:
    from .clip import Canvas, Piece
    from .formats import OutputFormat

    AnyPacket = Packet[Any]

__all__ = ["AUDIO_RATE", "Sound", "SoundQueue", "encode_track", "film_sound", "mix_sounds"]


AUDIO_RATE = 48_000


Sound = npt.NDArray[np.float32]  # (2, samples): stereo at AUDIO_RATE


def mix_sounds(parts: list[Sound], overlaps: int | Sequence[int]) -> Sound:
    """Concatenate, overlapping part i and the next by `overlaps[i]` samples (or the same
    number everywhere) under linear ramps."""
    if isinstance(overlaps, int):
        overlaps = [overlaps] * (len(parts) - 1)
    total = sum(part.shape[1] for part in parts) - sum(overlaps)
    track = np.zeros((2, total), np.float32)
    at = 0
    for i, part in enumerate(parts):
        part = part.copy()
        fade_in = overlaps[i - 1] if i else 0
        fade_out = overlaps[i] if i < len(parts) - 1 else 0
        if fade_in:
            part[:, :fade_in] *= _ramp(fade_in)
        if fade_out:
            part[:, -fade_out:] *= _ramp(fade_out)[::-1]
        track[:, at : at + part.shape[1]] += part
        at += part.shape[1] - fade_out
    return track


def _ramp(samples: int) -> npt.NDArray[np.float32]:
    return np.linspace(0, 1, samples + 2, dtype=np.float32)[1:-1]


def film_sound(pieces: list[Piece], canvas: Canvas, fades: Sequence[int]) -> Sound | None:
    """The film's track: the sound under each piece (silence for a clip without) cut or
    padded to its picture on the canvas, so the sound stays in sync across every cut;
    `fades[i]` frames overlap piece i and the next. None when no clip has sound."""
    if all(piece.clip.audio is None for piece in pieces):
        return None
    parts = [piece.clip.sound((piece.stop - piece.start) / canvas.fps,
                              piece.start / canvas.fps) for piece in pieces]
    return mix_sounds(parts, [round(fade / canvas.fps * AUDIO_RATE) for fade in fades])


class SoundQueue:
    """A sound track, encoded up front, muxed between video packets in time order."""

    def __init__(self, output: OutputContainer, fmt: OutputFormat, track: Sound | None) -> None:
        self.output = output
        self.packets: deque[AnyPacket] = deque()
        if track is not None:
            self.packets.extend(_encode_sound(output, fmt, track))

    def mux(self, video: Iterable[AnyPacket]) -> int:
        """Mux video packets, each after the sound due before it; return how many."""
        count = 0
        for packet in video:
            while self.packets and _seconds(self.packets[0]) <= _seconds(packet):
                self.output.mux_one(self.packets.popleft())
            self.output.mux_one(packet)
            count += 1
        return count

    def drain(self) -> None:
        while self.packets:
            self.output.mux_one(self.packets.popleft())


def _seconds(packet: AnyPacket) -> Fraction:
    return (packet.dts or 0) * packet.time_base


def _encode_sound(output: OutputContainer, fmt: OutputFormat, track: Sound) -> list[AnyPacket]:
    stream = cast(AudioStream, output.add_stream(fmt.audio_codec, rate=AUDIO_RATE))
    stream.layout = "stereo"
    return encode_track(stream, track)


def encode_track(stream: AudioStream, track: Sound) -> list[AnyPacket]:
    """`track` encoded by a stereo stream at `AUDIO_RATE`, flushed."""
    packets: list[AnyPacket] = []
    for start in range(0, track.shape[1], AUDIO_RATE):  # the encoder re-cuts to its frame size
        chunk = np.ascontiguousarray(track[:, start : start + AUDIO_RATE])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode(None))
    return packets
