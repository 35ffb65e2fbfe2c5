"""The simulator's renderer: one videoInference request in, one real video file out.

Input: a `RenderSpec` (size, duration, prompt, seed, format, quality, PixVerse camera movement,
style, effect, motion mode, optional first and last frame images).
Output: an H.264 MP4 or MOV, or a VP9 WebM, 24 fps, yuv420p BT.709, written atomically.

A clip is a timeline of `Beat`s (what the camera sees at each frame and how strongly the
look applies), sampled from one or two `Canvas`es built once; frames are composed in YUV on
a worker thread while the encoder runs. The same spec always gives the same bytes.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

import av
import numpy as np
import numpy.typing as npt
from av.video.frame import PictureType
from PIL import Image, ImageOps

from .scene import (U8, Canvas, Flight, FrameBuffer, Sprite, Tables, View, caption, cutout,
                    margins, paint_scene, rgb_to_yuv, scene_rng, subject)

EXTENSIONS = {"MP4": "mp4", "WEBM": "webm", "MOV": "mov"}
MOTION_MODES = ("normal", "fast")
ENCODER_THREADS = 2  # fixed: x264 and libvpx output depends on the thread count
F64 = npt.NDArray[np.float64]
_RAMP = 0.1  # share of the clip over which looks fade in after, or out before, a given image


# -- camera movements ----------------------------------------------------------------------


def _smooth(q: float) -> float:
    return q * q * (3 - 2 * q)


def _quick(q: float) -> float:
    return 1 - (1 - q) ** 3


def _whip(q: float) -> float:
    return _smooth(min(1.0, max(0.0, (q - 0.4) / 0.2)))


Move = tuple[Callable[[float], float], Callable[[float], View]]  # easing, amount -> view

CAMERA: dict[str, Move] = {
    "horizontal_left": (_smooth, lambda a: View(dx=-0.2 * a)),
    "horizontal_right": (_smooth, lambda a: View(dx=0.2 * a)),
    "vertical_up": (_smooth, lambda a: View(dy=-0.18 * a)),
    "vertical_down": (_smooth, lambda a: View(dy=0.18 * a)),
    "zoom_in": (_smooth, lambda a: View(zoom=1 + 0.35 * a)),
    "zoom_out": (_smooth, lambda a: View(zoom=1 / (1 + 0.35 * a))),
    "auto_camera": (_smooth, lambda a: View(zoom=1 + 0.08 * a, dx=0.05 * a, dy=-0.02 * a)),
    "crane_up": (_smooth, lambda a: View(zoom=1 / (1 + 0.1 * a), dy=-0.25 * a)),
    "quickly_zoom_in": (_quick, lambda a: View(zoom=1 + 0.8 * a)),
    "quickly_zoom_out": (_quick, lambda a: View(zoom=1 / (1 + 0.8 * a))),
    "smooth_zoom_in": (lambda q: _smooth(_smooth(q)), lambda a: View(zoom=1 + 0.25 * a)),
    "camera_rotation": (_smooth, lambda a: View(zoom=1 + 0.1 * a, angle=30 * a)),
    "robo_arm": (_smooth,
                 lambda a: View(zoom=1 + 0.2 * a, angle=-12 * a, dx=0.12 * a, dy=-0.06 * a)),
    "super_dolly_out": (_smooth, lambda a: View(zoom=1 / (1 + 1.2 * a))),
    "whip_pan": (_whip, lambda a: View(dx=0.6 * a)),
    "hitchcock": (_smooth, lambda a: View(zoom=1 / (1 + 0.4 * a))),  # the subject stays put
    "left_follow": (_smooth, lambda a: View(zoom=1 + 0.08 * a, dx=-0.28 * a)),
    "right_follow": (_smooth, lambda a: View(zoom=1 + 0.08 * a, dx=0.28 * a)),
    "pan_left": (_smooth, lambda a: View(zoom=1 + 0.04 * a, dx=-0.25 * a)),
    "pan_right": (_smooth, lambda a: View(zoom=1 + 0.04 * a, dx=0.25 * a)),
    "fix_bg": (_smooth, lambda a: View()),  # a subject moves instead
}
_DRIFT: Move = (_smooth, lambda a: View(zoom=1 + 0.05 * a, dx=0.03 * a))  # no movement asked


# -- looks: styles and effects as lookup tables on Y, U and V -------------------------------


@dataclass(frozen=True)
class Tone:
    """A colour treatment, applied at a strength from 0 (none) to 1."""

    contrast: float = 1.0
    lift: float = 0.0
    levels: int = 0  # posterize luma to this many steps
    saturation: float = 1.0
    shift_u: float = 0.0  # + bluer, - yellower
    shift_v: float = 0.0  # + redder, - greener
    invert: bool = False
    dots: bool = False  # a halftone screen

    def tables(self, strength: float, flash: float = 0.0) -> tuple[U8, U8, U8]:
        x = np.arange(256, dtype=np.float64)
        y = (x - 126) * self.contrast + 126 + self.lift
        y = 251 - y if self.invert else y
        if self.levels:
            step = 219 / (self.levels - 1)
            y = 16 + np.round((np.clip(y, 16, 235) - 16) / step) * step
        y += (235 - y) * flash
        chroma = (x - 128) * self.saturation + 128
        return (_toward(x, y, strength), _toward(x, chroma + self.shift_u, strength),
                _toward(x, chroma + self.shift_v, strength))


def _toward(x: F64, target: F64, strength: float) -> U8:
    return np.clip(np.round(x + (target - x) * strength), 0, 255).astype(np.uint8)


STYLE_TONES = {
    "anime": Tone(contrast=1.1, levels=8, saturation=1.5),
    "3d_animation": Tone(contrast=1.2, saturation=1.15),
    "clay": Tone(contrast=0.8, lift=10, levels=10, saturation=1.1, shift_u=-16, shift_v=14),
    "comic": Tone(contrast=1.3, levels=5, saturation=1.4, dots=True),
    "cyberpunk": Tone(contrast=1.2, lift=-10, saturation=1.3, shift_u=22, shift_v=18),
}


def _wave(rate: float, seconds: float, phase: float = 0.0) -> float:
    return math.sin(2 * math.pi * rate * seconds + phase)


Motion = Callable[[float, float], View]  # progress 0..1, seconds -> view


def _shake(p: float, s: float) -> View:
    return View(dx=0.012 * _wave(7.3, s), dy=0.01 * _wave(5.1, s, 1), angle=1.5 * _wave(4.3, s))


def _pulse(p: float, s: float) -> View:
    return View(zoom=1 + 0.07 * _wave(1.0, s) ** 2)


def _sway(p: float, s: float) -> View:
    return View(angle=6 * _wave(0.9, s), dy=0.02 * abs(_wave(0.9, s)))


def _bounce(p: float, s: float) -> View:
    return View(zoom=1.04, dy=-0.035 * abs(_wave(1.2, s)))


def _spin(p: float, s: float) -> View:
    return View(zoom=1 + 0.25 * math.sin(math.pi * p), angle=360 * _smooth(p))


def _punch(p: float, s: float) -> View:
    hit = math.exp(-((p - 0.45) / 0.08) ** 2)
    return View(zoom=1 + 0.3 * hit).then(_shake(p, s).weaken(hit))


def _swell(p: float, s: float) -> View:
    return View(zoom=1 + 0.25 * p + 0.03 * _wave(2.0, s))


def _drift(p: float, s: float) -> View:
    return View(dx=0.03 * _wave(0.4, s), dy=0.02 * _wave(0.6, s), angle=3 * _wave(0.5, s))


@dataclass(frozen=True)
class Effect:
    motion: Motion
    tone: Tone = Tone()
    flashes: float = 0.0  # white flashes per second


_LOVE = Tone(lift=8, contrast=0.9, shift_u=4, shift_v=16)
EFFECTS: dict[str, Effect] = {
    "bikini up": Effect(_swell, Tone(lift=6, saturation=1.2)),
    "the tigers touch": Effect(_shake, Tone(saturation=1.3, shift_u=-16, shift_v=14)),
    "jiggle jiggle": Effect(_bounce, Tone(saturation=1.2)),
    "hug your love": Effect(_pulse, _LOVE),
    "kiss me ai": Effect(_pulse, _LOVE),
    "subject 3 fever": Effect(_sway, Tone(saturation=1.4)),
    "fin-tastic mermaid": Effect(_drift, Tone(saturation=1.2, shift_u=18, shift_v=-14)),
    "lets ymca": Effect(_bounce, Tone(saturation=1.3, shift_v=6)),
    "skeleton dance": Effect(_sway, Tone(saturation=0.0, contrast=1.3, invert=True)),
    "kungfu club": Effect(_shake, Tone(contrast=1.2, shift_u=-8, shift_v=8)),
    "boom drop": Effect(_punch, Tone(contrast=1.15), flashes=1.0),
    "vroom vroom step": Effect(_bounce, Tone(contrast=1.1, saturation=1.2)),
    "creepy devil smile": Effect(_pulse, Tone(contrast=1.2, lift=-25, saturation=0.6,
                                              shift_u=-8, shift_v=30)),
    "pubg winner hit": Effect(_punch, Tone(saturation=1.2, shift_u=-10, shift_v=10), flashes=1.5),
    "360 microwave": Effect(_spin, Tone(lift=5, shift_u=-6, shift_v=10)),
    "eye zoom challenge": Effect(_punch, Tone(contrast=1.1)),
    "muscle surge": Effect(_swell, Tone(contrast=1.25, saturation=1.2)),
    "punch face": Effect(_punch, Tone(contrast=1.15), flashes=2.0),
    "balloon belly": Effect(_swell, Tone(lift=5, saturation=1.1)),
    "kiss kiss": Effect(_pulse, _LOVE),
}


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
    ease, move = CAMERA.get(spec.camera_movement or "", _DRIFT)
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
        dissolve = _smooth(min(1.0, max(0.0, (t - 0.3) / 0.5))) if last else 0.0
        shown = not ((index == 0 and first) or (index == count - 1 and last))
        beats.append(Beat(index / spec.fps, view, dissolve, strength, shown))
    return beats


def _strength(t: float, first: bool, last: bool) -> float:
    ramp = min(1.0, t / _RAMP if first else 1.0, (1 - t) / _RAMP if last else 1.0)
    return _smooth(max(0.0, ramp))


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
    return Film(spec, beats, stage, stage.recoloured(_tables(tones, 64, 0)) if tones else None,
                caption(_caption_text(spec), spec.height), tones,
                effect.flashes if effect else 0.0,
                _dots(spec.width, spec.height) if any(t.dots for t in tones) else None)


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


def _dots(width: int, height: int) -> U8:
    """A Ben-Day dot screen: ink where a dot is, white elsewhere (used with minimum)."""
    pitch = max(4, height // 90)
    yy, xx = np.ogrid[:height, :width]
    dx = (xx % pitch) - pitch / 2
    dy = (yy % pitch) - pitch / 2
    return np.where(dx * dx + dy * dy <= (pitch * 0.3) ** 2, 70, 255).astype(np.uint8)


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
        _apply_look(film.tones, beat.strength, flash, frame)
    if film.dots is not None and beat.strength > 0:
        _apply_dots(film.dots, beat.strength, frame)
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


def _apply_look(tones: tuple[Tone, ...], strength: float, flash: float,
                frame: FrameBuffer) -> None:
    if strength <= 0 or not (tones or flash):
        return
    for plane, table in zip(frame.planes, _tables(tones, round(strength * 64), round(flash * 64))):
        if table is not None:
            np.take(table, plane, out=plane)


def _apply_dots(dots: U8, strength: float, frame: FrameBuffer) -> None:
    if strength < 1:  # lighter dots while the look fades in or out
        ink = (255 - dots.astype(np.uint16)) * round(strength * 256) >> 8
        dots = (255 - ink).astype(np.uint8)
    np.minimum(frame.planes[0], dots, out=frame.planes[0])


@lru_cache(maxsize=256)
def _tables(tones: tuple[Tone, ...], strength: int, flash: int) -> Tables:
    """The tones' lookup tables chained, at strength and flash in 64ths; None: unchanged."""
    identity = np.arange(256, dtype=np.uint8)
    tables = [identity] * 3
    for tone in tones:
        tables = [new[old] for old, new in zip(tables, tone.tables(strength / 64, flash / 64))]
        flash = 0
    return tuple(None if np.array_equal(t, identity) else t for t in tables)


# -- encoding ------------------------------------------------------------------------------


def render_clip(spec: RenderSpec, out: Path) -> None:
    """Write the clip to `out` atomically (temp file in the same folder, then os.replace)."""
    out = Path(out)
    film = make_film(spec)
    handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(handle)
    temp = Path(name)
    try:
        _encode(film, ahead(compose(film, beat) for beat in film.beats), temp)
        temp.chmod(0o644)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _encode(film: Film, frames: Iterable[FrameBuffer], path: Path) -> None:
    spec = film.spec
    options = {"fflags": "+bitexact"}
    if spec.output_format != "WEBM":
        options["movflags"] = "+faststart"
    with av.open(str(path), "w", format=EXTENSIONS[spec.output_format], options=options) as box:
        stream = box.add_stream(_codec(spec), rate=spec.fps, options=_codec_options(spec))
        _configure(stream.codec_context, spec)
        for index, frame in enumerate(frames):
            video = _video_frame(frame, index, spec)
            box.mux(stream.encode(video))
        box.mux(stream.encode(None))


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
