"""Sound: the clips' sound tracks in; the film's one track, mixed, encoded and muxed, out.

A track is stereo float samples at `AUDIO_RATE`. A clip without sound is silence as long as
its picture; neighbours overlap under linear ramps at a crossfade; the encoded packets are
muxed between the video packets in time order. (`SoundQueue` muxes any track: the simulator
writes its clips' sound with it too.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from fractions import Fraction
from typing import TYPE_CHECKING, Any, cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet

if TYPE_CHECKING:
    from .clip import Canvas, Clip
    from .formats import OutputFormat

    AnyPacket = Packet[Any]

__all__ = ["AUDIO_RATE", "Sound", "SoundQueue", "film_sound", "mix_sounds"]


AUDIO_RATE = 48_000


Sound = npt.NDArray[np.float32]  # (2, samples): stereo at AUDIO_RATE


def mix_sounds(parts: list[Sound], overlap: int) -> Sound:
    """Concatenate, overlapping neighbours by `overlap` samples under linear ramps."""
    total = sum(part.shape[1] for part in parts) - overlap * (len(parts) - 1)
    track = np.zeros((2, total), np.float32)
    ramp = np.linspace(0, 1, overlap + 2, dtype=np.float32)[1:-1]
    at = 0
    for i, part in enumerate(parts):
        part = part.copy()
        if i and overlap:
            part[:, :overlap] *= ramp
        if i < len(parts) - 1 and overlap:
            part[:, -overlap:] *= ramp[::-1]
        track[:, at : at + part.shape[1]] += part
        at += part.shape[1] - overlap
    return track


def film_sound(clips: list[Clip], canvas: Canvas, fade: int) -> Sound | None:
    """The film's track: each clip's sound (silence for a clip without) cut or padded to its
    picture on the canvas, so the sound stays in sync across every cut; None when no clip
    has sound."""
    if all(clip.audio is None for clip in clips):
        return None
    parts = [clip.sound(canvas.frames_in(clip) / canvas.fps) for clip in clips]
    return mix_sounds(parts, round(fade / canvas.fps * AUDIO_RATE))


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
    packets: list[AnyPacket] = []
    for start in range(0, track.shape[1], AUDIO_RATE):  # the encoder re-cuts to its frame size
        chunk = np.ascontiguousarray(track[:, start : start + AUDIO_RATE])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode(None))
    return packets
