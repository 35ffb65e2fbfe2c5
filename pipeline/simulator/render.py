"""The simulator's renderer: one videoInference request in, one real video file out.

Input: a `RenderSpec` (size, duration, frame rate, prompt, seed, format, quality, PixVerse
camera movement, style, effect, motion mode, optional first and last frame images, sound,
and how much it drifts).
Output: an H.264 MP4 or MOV, or a VP9 WebM, yuv420p BT.709, with an AAC or Opus sound track
(`tone`) when asked for, written atomically.

A clip is a timeline of `Beat`s (what the camera sees at each frame and how strongly the
look applies), sampled from one or two `Canvas`es built once; frames are composed in YUV on
a worker thread while the encoder runs. The same spec always gives the same bytes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal, TypeVar

import av
import numpy as np
from av.video.frame import PictureType
from PIL import Image, ImageOps

from ..media.formats import EXTENSIONS, FORMATS, open_output
from ..media.sound import SoundQueue
from ..store.atomic import atomic_path
from .camera import CAMERA, DRIFT, Canvas, View, margins, smoothstep
from .drift import drift_frames
from .frames import U8, Flight, FrameBuffer, Sprite, Tables, caption, cutout, rgb_to_yuv
from .looks import (
    EFFECTS,
    STYLE_TONES,
    Tone,
    apply_dots,
    apply_look,
    dot_screen,
    look_tables,
)
from .scene import paint_scene, scene_rng, subject
from .tone import tone

__all__ = ["CAMERA", "EFFECTS", "ENCODER_THREADS", "EXTENSIONS", "MOTION_MODES", "STYLE_TONES",
           "Beat", "Film", "RenderSpec", "Stage", "ahead", "compose", "fit_image", "make_beats",
           "make_film", "render_clip"]

MOTION_MODES = ("normal", "fast")
ENCODER_THREADS = 2  # fixed: x264 and libvpx output depends on the thread count
_RAMP = 0.1  # share of the clip over which looks fade in after, or out before, a given image


# -- the request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderSpec:
    """What to render: the simulator's reading of one videoInference task."""

    width: int
    height: int
    duration: float
    prompt: str
    seed: int
    fps: int = 24
    output_format: str = "MP4"
    quality: int = 95
    camera_movement: str | None = None
    style: str | None = None
    effect: str | None = None
    motion_mode: str = "normal"
    first_frame: Image.Image | None = None
    last_frame: Image.Image | None = None
    sound: bool = False
    drift: float = 0.0  # colour drift by the last frame, and a smeared end (`drift`)

    def __post_init__(self) -> None:
        checks = {
            "width and height must be even and at least 16":
                min(self.width, self.height) >= 16 and self.width % 2 == self.height % 2 == 0,
            "duration and fps must give at least two frames": self.frame_count >= 2,
            f"output_format must be one of {sorted(EXTENSIONS)}": self.output_format in EXTENSIONS,
            "quality must be 20..99": 20 <= self.quality <= 99,
            f"unknown camera_movement {self.camera_movement!r}":
                self.camera_movement is None or self.camera_movement in CAMERA,
            f"unknown style {self.style!r}": self.style is None or self.style in STYLE_TONES,
            f"unknown effect {self.effect!r}": self.effect is None or self.effect in EFFECTS,
            f"motion_mode must be one of {MOTION_MODES}": self.motion_mode in MOTION_MODES,
            "drift must be 0..1": 0 <= self.drift <= 1,
        }
        problems = [message for message, ok in checks.items() if not ok]
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def frame_count(self) -> int:
        return round(self.duration * self.fps)


def fit_image(image: Image.Image, width: int, height: int) -> U8:
    """Scale to cover width x height and crop the middle (Lanczos), as RGB."""
    fitted = ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    return np.asarray(fitted)


# -- the timeline --------------------------------------------------------------------------


@dataclass(frozen=True)
class Beat:
    """One frame's recipe."""

    seconds: float
    view: View
    dissolve: float  # weight of the last frame image
    strength: float  # of looks and sprites: 0 on a given first or last frame
    caption: bool


def make_beats(spec: RenderSpec) -> list[Beat]:
    count = spec.frame_count
    first, last = spec.first_frame is not None, spec.last_frame is not None
    ease, move = CAMERA.get(spec.camera_movement or "", DRIFT)
    amount = 2.0 if spec.motion_mode == "fast" else 1.0
    effect = EFFECTS.get(spec.effect or "")
    beats = []
    for index in range(count):
        t = index / (count - 1)
        progress = 1 - abs(2 * t - 1) if last else t  # a last image brings the camera back
        strength = _strength(t, first, last)
        view = move(amount * ease(progress))
        if effect is not None:
            view = view.then(effect.motion(progress, index / spec.fps).weaken(strength))
        dissolve = smoothstep(min(1.0, max(0.0, (t - 0.3) / 0.5))) if last else 0.0
        shown = not ((index == 0 and first) or (index == count - 1 and last))
        beats.append(Beat(index / spec.fps, view, dissolve, strength, shown))
    return beats


def _strength(t: float, first: bool, last: bool) -> float:
    ramp = min(1.0, t / _RAMP if first else 1.0, (1 - t) / _RAMP if last else 1.0)
    return smoothstep(max(0.0, ramp))


# -- the film: everything built once, then composed frame by frame -------------------------


@dataclass(frozen=True)
class Stage:
    """What the camera films, in one colouring: the canvases and the sprites over them."""

    main: Canvas
    end: Canvas | None
    flights: tuple[Flight, ...]
    still: Sprite | None  # a subject that keeps its size (dolly zoom)

    def recoloured(self, tables: Tables) -> Stage:
        return Stage(self.main.recoloured(tables),
                     self.end.recoloured(tables) if self.end else None,
                     tuple(replace(f, sprite=f.sprite.recoloured(tables)) for f in self.flights),
                     self.still.recoloured(tables) if self.still else None)


@dataclass(frozen=True)
class Film:
    """Everything a clip's frames are composed from, built once."""

    spec: RenderSpec
    beats: list[Beat]
    stage: Stage
    toned: Stage | None  # the stage with the look at full strength, when there is a look
    label: Sprite
    tones: tuple[Tone, ...]
    flashes: float
    dots: U8 | None = field(default=None, repr=False)


def make_film(spec: RenderSpec) -> Film:
    beats = make_beats(spec)
    stage = _make_stage(spec, [beat.view for beat in beats])
    effect = EFFECTS.get(spec.effect or "")
    tones = tuple(t for t in (STYLE_TONES.get(spec.style or ""), effect and effect.tone) if t)
    return Film(spec, beats, stage, stage.recoloured(look_tables(tones, 64, 0)) if tones else None,
                caption(_caption_text(spec), spec.height), tones,
                effect.flashes if effect else 0.0,
                dot_screen(spec.width, spec.height) if any(t.dots for t in tones) else None)


def _make_stage(spec: RenderSpec, views: list[View]) -> Stage:
    w, h = spec.width, spec.height
    margin = margins(views, w, h)
    flights: tuple[Flight, ...] = ()
    if spec.first_frame is None:
        scene = paint_scene(spec.prompt, spec.seed, w, h, margin)
        main = Canvas.build(rgb_to_yuv(scene.rgb), margin, views)
        first = scene.rgb[margin[1]:margin[1] + h, margin[0]:margin[0] + w]
        flights = scene.flights
    else:
        first = fit_image(spec.first_frame, w, h)
        main = Canvas.mirrored(first, margin, views)
    end = None
    if spec.last_frame is not None:
        end = Canvas.mirrored(fit_image(spec.last_frame, w, h), margin, views)
    if spec.camera_movement == "fix_bg":
        flights += (subject(scene_rng(spec.prompt, spec.seed), w, h, spec.duration),)
    still = cutout(first) if spec.camera_movement == "hitchcock" else None
    return Stage(main, end, flights, still)


def _caption_text(spec: RenderSpec) -> str:
    prompt = " ".join(spec.prompt.split())
    prompt = prompt if len(prompt) <= 60 else prompt[:57] + "..."
    return f"SIMULATED  seed {spec.seed}  {prompt}"


def compose(film: Film, beat: Beat) -> FrameBuffer:
    """The frame a beat describes, ready for the encoder."""
    frame = FrameBuffer.new(film.spec.width, film.spec.height)
    flash = _flash(film, beat)
    toned = film.toned if beat.strength >= 1 and not flash else None
    stage = toned or film.stage
    if stage.end is not None and beat.dissolve >= 1:
        stage.end.sample(beat.view, frame)
    else:
        stage.main.sample(beat.view, frame)
        _add_sprites(film, stage, beat, frame)
        if stage.end is not None and beat.dissolve > 0:
            other = FrameBuffer.new(*frame.size)
            stage.end.sample(beat.view, other)
            frame.mix(other, beat.dissolve)
    if toned is None:
        apply_look(film.tones, beat.strength, flash, frame)
    if film.dots is not None and beat.strength > 0:
        apply_dots(film.dots, beat.strength, frame)
    if beat.caption:
        _add_caption(film.label, frame)
    return frame


def _add_caption(label: Sprite, frame: FrameBuffer) -> None:
    """In the bottom-left corner."""
    width, height = frame.size
    label_w, label_h = label.size()
    margin = max(4, height // 60)
    label.paste(frame, (margin + label_w / 2, height - margin - label_h / 2))


def _add_sprites(film: Film, stage: Stage, beat: Beat, frame: FrameBuffer) -> None:
    width, height = frame.size
    if stage.still is not None:
        stage.still.paste(frame, (width / 2, height / 2))
    fade = beat.strength if film.spec.first_frame is not None else 1.0
    for flight in stage.flights:
        x, y = flight.at(beat.seconds)
        centre = beat.view.to_screen(x, y, width, height)
        flight.sprite.paste(frame, centre, beat.view.zoom, fade)


def _flash(film: Film, beat: Beat) -> float:
    """How far towards white an effect's flash takes this frame."""
    if not film.flashes:
        return 0.0
    return 0.6 * max(0.0, 1 - (beat.seconds * film.flashes % 1) * 6) * beat.strength


# -- encoding ------------------------------------------------------------------------------


def render_clip(spec: RenderSpec, out: Path) -> None:
    """Write the clip to `out` atomically."""
    film = make_film(spec)
    frames: Iterable[FrameBuffer] = (compose(film, beat) for beat in film.beats)
    if spec.drift:
        frames = drift_frames(frames, [beat.strength for beat in film.beats], spec.drift,
                              spec.fps, smear_end=spec.last_frame is None)
    with atomic_path(Path(out)) as temp:
        _encode(film, ahead(frames), temp)


def _encode(film: Film, frames: Iterable[FrameBuffer], path: Path) -> None:
    spec = film.spec
    fmt = FORMATS[spec.output_format]
    with open_output(path, fmt) as box:
        stream = box.add_stream(_codec(spec), rate=spec.fps, options=_codec_options(spec))
        _configure(stream.codec_context, spec)
        track = tone(spec.frame_count / spec.fps, spec.seed) if spec.sound else None
        sound = SoundQueue(box, fmt, track)
        for index, frame in enumerate(frames):
            sound.mux(stream.encode(_video_frame(frame, index, spec)))
        sound.mux(stream.encode(None))
        sound.drain()


def _codec(spec: RenderSpec) -> Literal["libvpx-vp9", "libx264"]:
    return "libvpx-vp9" if spec.output_format == "WEBM" else "libx264"


def _codec_options(spec: RenderSpec) -> dict[str, str]:
    """Fast settings, with quality 20..99 as a constant-quality factor (CRF).

    x264 CRF 40..16 (quality 95, the default, is 18), VP9 CRF 47..23. Given frame images
    cap the CRF (x264 23, VP9 32) so that even detailed pictures come back above 30 dB PSNR.
    """
    webm = spec.output_format == "WEBM"
    crf = round((53 if webm else 46) - 0.3 * spec.quality)
    if spec.first_frame is not None or spec.last_frame is not None:
        crf = min(crf, 32 if webm else 23)
    if webm:
        return {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": str(crf), "b": "0"}
    return {"preset": "ultrafast", "crf": str(crf)}


def _configure(ctx: av.VideoCodecContext, spec: RenderSpec) -> None:
    ctx.width, ctx.height, ctx.pix_fmt = spec.width, spec.height, "yuv420p"
    ctx.thread_count = ENCODER_THREADS
    ctx.gop_size = min(spec.fps, 24)
    ctx.max_b_frames = 0
    ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # BT.709
    ctx.color_range = 1  # limited ("tv") range


def _video_frame(frame: FrameBuffer, index: int, spec: RenderSpec) -> av.VideoFrame:
    if spec.height % 4 == 0:  # the zero-copy path needs the planes to split on whole rows
        video = av.VideoFrame.from_numpy_buffer(frame.buf, format="yuv420p")
    else:
        video = av.VideoFrame.from_ndarray(frame.buf, format="yuv420p")
    video.pts, video.time_base = index, Fraction(1, spec.fps)
    if spec.last_frame is not None and index == spec.frame_count - 1:
        video.pict_type = PictureType.I  # a keyframe keeps the last image sharp
    return video


T = TypeVar("T")


def ahead(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Produce `items` (never None) on a worker thread, up to `depth` ahead of the consumer."""
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=1) as worker:  # one worker: items come in order
        pending = deque(worker.submit(next, iterator, None) for _ in range(depth))
        while (item := pending.popleft().result()) is not None:
            pending.append(worker.submit(next, iterator, None))
            yield item
