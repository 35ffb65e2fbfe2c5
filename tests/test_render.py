"""The simulator's renderer writes real, deterministic clips that honour the request."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from pipeline.simulator.render import (
    CAMERA,
    EFFECTS,
    EXTENSIONS,
    STYLE_TONES,
    RenderSpec,
    render_clip,
)

Frames = list[npt.NDArray[np.uint8]]


def picture(seed: int, size: tuple[int, int] = (800, 500)) -> Image.Image:
    """A photo-like test image: a gradient, soft shapes and some grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 180 + 40, yy / h * 160 + 50, 200 - xx / w * 120], axis=2)
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y, r = (int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(20, h // 3)))
        colour = tuple(int(c) for c in rng.integers(30, 230, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    grain = rng.normal(0, 3, (h, w, 3))
    blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(3)), np.float32) + grain
    return Image.fromarray(np.clip(blurred, 0, 255).astype(np.uint8))


def detailed(seed: int, size: tuple[int, int] = (640, 360)) -> Image.Image:
    """Texture at every scale (1/f noise), as hard on the encoder as a busy photo."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    radius[0, 0] = 1.0
    channels = []
    for _ in range(3):
        noise = np.fft.ifft2(rng.normal(size=(h, w)) / radius).real
        channels.append((noise - noise.mean()) / noise.std())
    luma, a, b = channels
    rgb = luma[..., None] * 40 + np.stack([a, b, -a - b], axis=2) * 10 + 128
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def spec(**changes: Any) -> RenderSpec:
    fields: dict[str, Any] = {"width": 640, "height": 360, "duration": 5, "seed": 7,
                              "prompt": "a red lighthouse on a cliff at sunset"}
    return RenderSpec(**(fields | changes))


def render(tmp_path: Path, request: RenderSpec, name: str = "clip") -> Path:
    out = tmp_path / f"{name}.{EXTENSIONS[request.output_format]}"
    render_clip(request, out)
    return out


def decode(path: Path) -> Frames:
    """Every frame, decoded to the end so nothing held back by the decoder is lost."""
    with av.open(str(path)) as container:
        frames = sorted(container.decode(video=0), key=lambda f: f.pts or 0)
        return [f.to_ndarray(format="rgb24").astype(np.uint8) for f in frames]


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def fitted(image: Image.Image, request: RenderSpec) -> npt.NDArray[np.uint8]:
    size = (request.width, request.height)
    return np.asarray(ImageOps.fit(image, size, Image.Resampling.LANCZOS))


@pytest.mark.parametrize(("fmt", "codec", "container_name"), [
    ("MP4", "h264", "mp4"), ("MOV", "h264", "mov"), ("WEBM", "vp9", "webm")])
def test_each_format_is_its_codec_in_yuv420p_at_24_fps(
        tmp_path: Path, fmt: str, codec: str, container_name: str) -> None:
    out = render(tmp_path, spec(output_format=fmt))
    with av.open(str(out)) as container:
        assert container_name in container.format.name
        assert len(container.streams.audio) == 0
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
        assert stream.average_rate == Fraction(24)
        count = sum(1 for _ in container.decode(video=0))
    assert abs(count - 120) <= 1


def test_an_eight_second_clip_has_192_frames(tmp_path: Path) -> None:
    frames = decode(render(tmp_path, spec(duration=8, width=320, height=180)))
    assert abs(len(frames) - 192) <= 1
    assert frames[0].shape == (180, 320, 3)


def test_keyframes_are_at_most_one_second_apart(tmp_path: Path) -> None:
    out = render(tmp_path, spec(duration=8, width=320, height=180))
    with av.open(str(out)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keys[0] == 0
    assert max(np.diff(keys + [len(packets)])) <= 24


def test_a_720p_clip_has_the_full_size(tmp_path: Path) -> None:
    frames = decode(render(tmp_path, spec(width=1280, height=720, duration=5)))
    assert frames[0].shape == (720, 1280, 3)


def test_a_height_not_divisible_by_four_still_encodes(tmp_path: Path) -> None:
    frames = decode(render(tmp_path, spec(width=320, height=182, first_frame=picture(1))))
    assert frames[0].shape == (182, 320, 3)


@pytest.mark.parametrize("fmt", ["MP4", "WEBM"])
def test_first_and_last_frames_are_the_given_images(tmp_path: Path, fmt: str) -> None:
    first, last = picture(1), picture(2, (500, 700))
    request = spec(output_format=fmt, first_frame=first, last_frame=last,
                   camera_movement="zoom_in")
    frames = decode(render(tmp_path, request))
    assert psnr(frames[0], fitted(first, request)) > 30
    assert psnr(frames[-1], fitted(last, request)) > 30
    assert psnr(frames[len(frames) // 2], fitted(first, request)) < 30


def test_a_last_frame_alone_ends_a_painted_scene(tmp_path: Path) -> None:
    last = picture(15)
    request = spec(last_frame=last, camera_movement="crane_up")
    frames = decode(render(tmp_path, request))
    assert psnr(frames[-1], fitted(last, request)) > 30
    assert psnr(frames[0], fitted(last, request)) < 20


def test_given_endpoints_carry_no_caption_style_or_effect(tmp_path: Path) -> None:
    first, last = picture(3), picture(4)
    request = spec(first_frame=first, last_frame=last, style="comic", effect="punch face")
    frames = decode(render(tmp_path, request))
    corner = (slice(300, 360), slice(0, 400))  # where the caption goes
    assert psnr(frames[0][corner], fitted(first, request)[corner]) > 30
    assert psnr(frames[-1][corner], fitted(last, request)[corner]) > 30
    assert psnr(frames[60][corner], frames[0][corner]) < 25


@pytest.mark.parametrize("fmt", ["MP4", "WEBM"])
def test_endpoints_survive_the_lowest_quality(tmp_path: Path, fmt: str) -> None:
    first, last = detailed(5), detailed(6)
    request = spec(first_frame=first, last_frame=last, quality=20, output_format=fmt)
    frames = decode(render(tmp_path, request))
    assert psnr(frames[0], fitted(first, request)) > 30
    assert psnr(frames[-1], fitted(last, request)) > 30


def test_higher_quality_makes_a_bigger_file(tmp_path: Path) -> None:
    low = render(tmp_path, spec(quality=30), "low").stat().st_size
    high = render(tmp_path, spec(quality=95), "high").stat().st_size
    assert high > 1.5 * low


@pytest.mark.parametrize("fmt", ["MP4", "WEBM", "MOV"])
def test_the_same_spec_gives_identical_bytes(tmp_path: Path, fmt: str) -> None:
    request = spec(output_format=fmt, width=320, height=180, camera_movement="robo_arm",
                   first_frame=picture(8), style="anime")
    a, b = render(tmp_path, request, "a"), render(tmp_path, request, "b")
    assert a.read_bytes() == b.read_bytes()


def test_different_seeds_give_different_pictures(tmp_path: Path) -> None:
    a = decode(render(tmp_path, spec(seed=1), "a"))
    b = decode(render(tmp_path, spec(seed=2), "b"))
    assert psnr(a[60], b[60]) < 20


def test_different_prompts_give_different_pictures(tmp_path: Path) -> None:
    a = decode(render(tmp_path, spec(prompt="a quiet night over the city"), "a"))
    b = decode(render(tmp_path, spec(prompt="dunes in the desert at noon"), "b"))
    assert psnr(a[0], b[0]) < 20


def test_text_to_video_moves_even_without_a_camera_movement(tmp_path: Path) -> None:
    frames = decode(render(tmp_path, spec()))
    assert psnr(frames[0], frames[-1]) < 35


def test_zoom_in_magnifies_the_middle_of_the_picture(tmp_path: Path) -> None:
    request = spec(first_frame=picture(9), camera_movement="zoom_in")
    frames = decode(render(tmp_path, request))
    end = frames[-1]
    zoom = 1.35  # zoom_in's full amount
    crop_w, crop_h = round(640 / zoom), round(360 / zoom)
    x, y = (640 - crop_w) // 2, (360 - crop_h) // 2
    middle = Image.fromarray(frames[0][y:y + crop_h, x:x + crop_w]).resize((640, 360))
    region = (slice(0, 280), slice(0, 640))  # above the caption
    assert psnr(end[region], np.asarray(middle)[region]) > psnr(end[region], frames[0][region]) + 3


def shift_between(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> int:
    """How many pixels to the right the picture in `a` has moved in `b`."""
    grey_a, grey_b = a[:280].mean(axis=2), b[:280].mean(axis=2)
    width = a.shape[1]
    errors = {s: float(np.mean((grey_a[:, :width - s] - grey_b[:, s:]) ** 2)) for s in range(320)}
    return min(errors, key=errors.__getitem__)


def test_horizontal_left_pans_and_fast_motion_pans_twice_as_far(tmp_path: Path) -> None:
    """The camera moving left moves the picture right: 20% of the width, 40% when fast."""
    request = spec(camera_movement="horizontal_left", first_frame=picture(14))
    normal = decode(render(tmp_path, request, "n"))
    fast = decode(render(tmp_path, RenderSpec(**(vars(request) | {"motion_mode": "fast"})), "f"))
    assert abs(shift_between(normal[0], normal[-1]) - 128) <= 2
    assert abs(shift_between(fast[0], fast[-1]) - 256) <= 2


def test_fix_bg_keeps_the_background_still(tmp_path: Path) -> None:
    frames = decode(render(tmp_path, spec(first_frame=picture(10), camera_movement="fix_bg")))
    top = (slice(0, 60), slice(0, 640))
    assert psnr(frames[0][top], frames[60][top]) > 35
    assert psnr(frames[0], frames[60]) < psnr(frames[0][top], frames[60][top])


@pytest.mark.parametrize("movement", sorted(CAMERA))
def test_every_camera_movement_renders_and_moves(tmp_path: Path, movement: str) -> None:
    request = spec(width=160, height=96, duration=1, camera_movement=movement,
                   first_frame=picture(11))
    frames = decode(render(tmp_path, request))
    assert len(frames) == 24
    assert psnr(frames[0], fitted(picture(11), request)) > 30
    assert psnr(frames[0], frames[-1]) < 40


@pytest.mark.parametrize("effect", sorted(EFFECTS))
def test_every_effect_renders_and_shows(tmp_path: Path, effect: str) -> None:
    plain = decode(render(tmp_path, spec(width=160, height=96, duration=1), "plain"))
    frames = decode(render(tmp_path, spec(width=160, height=96, duration=1, effect=effect)))
    assert psnr(plain[12], frames[12]) < 40


@pytest.mark.parametrize("style", sorted(STYLE_TONES))
def test_every_style_changes_the_colours(tmp_path: Path, style: str) -> None:
    request = spec(width=320, height=180, duration=1, first_frame=picture(12))
    plain = decode(render(tmp_path, request, "plain"))
    styled = decode(render(tmp_path, RenderSpec(**(vars(request) | {"style": style})), "styled"))
    assert psnr(plain[0], styled[0]) > 45  # the given image itself is never styled
    assert psnr(plain[18], styled[18]) < 30


def test_cyberpunk_tints_towards_magenta(tmp_path: Path) -> None:
    request = spec(width=320, height=180, duration=1, first_frame=picture(13))
    plain = decode(render(tmp_path, request, "plain"))[18].astype(np.float64)
    tinted = decode(render(tmp_path, RenderSpec(**(vars(request) | {"style": "cyberpunk"})), "c"))
    shift = tinted[18].astype(np.float64).mean(axis=(0, 1)) - plain.mean(axis=(0, 1))
    assert shift[0] - shift[1] > 5 and shift[2] - shift[1] > 5  # red and blue over green


def test_the_file_appears_whole_and_alone(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"old")
    render_clip(spec(width=160, height=96, duration=1), out)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("changes", [
    {"width": 641}, {"height": 0}, {"output_format": "GIF"}, {"quality": 5},
    {"camera_movement": "crane-up"}, {"style": "oil"}, {"effect": "dab"}, {"motion_mode": "slow"},
])
def test_an_impossible_spec_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        spec(**changes)


def test_the_scene_does_not_depend_on_the_camera_movement(tmp_path: Path) -> None:
    """A prompt and seed paint one landscape; the movement only changes how it is filmed."""
    still = decode(render(tmp_path, spec(prompt="a harbour at sunset"), "a"))
    dolly = decode(render(tmp_path, spec(prompt="a harbour at sunset",
                                         camera_movement="super_dolly_out"), "b"))
    assert psnr(still[0], dolly[0]) > 40
