"""Mixed films and the simulator across models: every model is served from the catalog (the
planner's verdicts, the model's frame rate and size, sound when asked), and a chain across
models runs into one film with one frame rate and size, as long as its parts, its sound as
long as the film and where the clips had it."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.cli import main
from pipeline.language.catalog import load_catalog
from pipeline.media.clip import Clip
from pipeline.media.probe import probe_video
from pipeline.media.stitch import choose_canvas, stitch_clips
from pipeline.simulator.app import SimulatorApp, SimulatorConfig, create_app
from pipeline.simulator.render import RenderSpec, render_clip
from pipeline.store import read_lock

CATALOG = load_catalog()

# One request each model accepts, and one it refuses in its own terms (code, parameter).
SERVED: dict[str, tuple[dict[str, Any], dict[str, Any], str, str]] = {
    "pixverse:1@5": ({"positivePrompt": "a kite", "resolution": "360p"},
                     {"positivePrompt": "a kite", "duration": 10},
                     "unsupportedDuration", "duration"),
    "klingai:5@1": ({"inputs": {"frameImages": ["https://example.com/a.png"]}},
                    {"positivePrompt": "a kite", "width": 1280, "height": 720},
                    "missingParameter", "inputs.frameImages"),
    "klingai:5@2": ({"positivePrompt": "a kite",
                     "inputs": {"frameImages": ["https://example.com/a.png"]}},
                    {"positivePrompt": "a kite", "seed": 4,
                     "inputs": {"frameImages": ["https://example.com/a.png"]}},
                    "unsupportedParameter", "seed"),
    "klingai:5@3": ({"positivePrompt": "a kite", "duration": 10},
                    {"positivePrompt": "a kite", "width": 1280, "height": 720},
                    "unsupportedDimensions", "width"),
    "bytedance:2@1": ({"positivePrompt": "a kite", "resolution": "480p", "duration": 2.4},
                      {"positivePrompt": "a kite"}, "missingParameter", "resolution"),
    "bytedance:2@2": ({"positivePrompt": "a kite", "resolution": "720p"},
                      {"positivePrompt": "a kite", "resolution": "480p", "duration": 4.25},
                      "unsupportedDuration", "duration"),
    "google:3@1": ({"positivePrompt": "a kite", "width": 1280, "height": 720, "duration": 4,
                    "providerSettings": {"google": {"generateAudio": True}}},
                   {"positivePrompt": "a kite"}, "missingParameter", "width"),
    "google:3@3": ({"positivePrompt": "a kite", "width": 720, "height": 1280, "duration": 4},
                   {"positivePrompt": "a kite", "width": 1280, "height": 720, "duration": 7},
                   "unsupportedDuration", "duration"),
    "minimax:4@1": ({"positivePrompt": "a kite", "width": 1366, "height": 768},
                    {"positivePrompt": "a kite", "width": 1920, "height": 1080,
                     "duration": 10}, "unsupportedDuration", "duration"),
    "vidu:1@1": ({"positivePrompt": "a kite", "duration": 4,
                  "providerSettings": {"vidu": {"bgm": True}}},
                 {"positivePrompt": "a kite", "providerSettings": {"vidu": {"bgm": True}}},
                 "incompatibleParameters", "providerSettings.vidu.bgm"),
    "alibaba:wan@2.6": ({"positivePrompt": "a kite", "resolution": "720p",
                         "providerSettings": {"alibaba": {"audio": True}}},
                        {"positivePrompt": "a kite", "resolution": "720p",
                         "providerSettings": {"alibaba": {"shotType": "multi",
                                                          "promptExtend": False}}},
                        "incompatibleParameters", "providerSettings.alibaba.shotType"),
}


def task(model: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"taskType": "videoInference", "taskUUID": str(uuid.uuid4()), "model": model,
            "deliveryMethod": "async", "includeCost": True, **fields}


def post(app: SimulatorApp, tasks: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as client:
            return await client.post("/v1", json=tasks, headers={"Authorization": "Bearer k"})

    answer = asyncio.run(go())
    return answer.status_code, answer.json()


@pytest.fixture
def app() -> Any:
    made = create_app(SimulatorConfig(latency=(0, 0)), clock=lambda: 1_700_000_000.0)
    try:
        yield made
    finally:
        made.close()


def test_the_simulator_serves_every_model_in_the_catalog() -> None:
    assert set(SERVED) | {"pixverse:1@3"} == set(CATALOG.ids)


@pytest.mark.parametrize("model", sorted(SERVED))
def test_each_model_is_accepted_and_refused_as_the_planner_would(
        app: SimulatorApp, model: str) -> None:
    good, bad, code, parameter = SERVED[model]
    spec = CATALOG.get(model)
    accepted = task(model, good)
    assert [v for v in spec.check_request(accepted) if not v.warning] == []
    status, body = post(app, [accepted])
    assert status == 200, body
    record = app.state.tasks[accepted["taskUUID"]]
    width, height = spec.output_size(accepted, (1280, 720) if "inputs" in good else None)
    assert (record.fps, record.width, record.height) == (spec.fps, width, height)
    assert record.sound is spec.sound.is_on(accepted)
    refused = task(model, bad)
    status, body = post(app, [refused])
    assert status == 400
    assert [(e["code"], e["parameter"]) for e in body["errors"]] == [(code, parameter)]
    assert [(v.code, v.parameter) for v in spec.check_request(refused)
            if not v.warning] == [(code, parameter)]


def test_a_last_frame_into_a_first_frame_model_is_refused_by_the_simulator_too(
        app: SimulatorApp) -> None:
    status, body = post(app, [task("minimax:4@1", {
        "positivePrompt": "a kite", "inputs": {"frameImages": [
            {"image": "https://example.com/a.png", "frame": "first"},
            {"image": "https://example.com/b.png", "frame": "last"}]}})])
    assert status == 400
    (error,) = body["errors"]
    assert error["code"] == "unsupportedFrameImages"
    assert "Hailuo 2.3 (minimax:4@1) takes a first frame only, not a last frame" in (
        error["message"])


def sound_of(path: Path) -> tuple[str, float, Any]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)
        return stream.codec_context.name, samples.shape[1] / stream.rate, samples


@pytest.mark.parametrize(("fmt", "codec"), [("MP4", "aac"), ("WEBM", "opus"), ("MOV", "aac")])
def test_a_clip_asked_for_sound_has_a_real_track_as_long_as_its_picture(
        tmp_path: Path, fmt: str, codec: str) -> None:
    out = tmp_path / f"clip.{fmt.lower()}"
    render_clip(RenderSpec(width=320, height=180, duration=2, prompt="waves", seed=5, fps=25,
                           output_format=fmt, sound=True), out)
    probe = probe_video(out)
    assert (probe.fps, probe.frames, probe.has_audio) == (25, 50, True)
    name, seconds, samples = sound_of(out)
    assert name == codec
    assert seconds == pytest.approx(2.0, abs=0.03)  # an AAC frame at most
    assert float(np.sqrt((samples ** 2).mean())) > 0.01  # not silence


def test_a_clip_not_asked_for_sound_has_none(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    render_clip(RenderSpec(width=320, height=180, duration=1, prompt="x", seed=5), out)
    assert not probe_video(out).has_audio


# -- choosing the canvas ------------------------------------------------------------------

@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("parts")
    specs = {"loud": (320, 180, 24, True, 2), "tall": (180, 320, 25, False, 1),
             "wide": (320, 180, 16, False, 1.5), "quiet": (320, 180, 24, False, 1)}
    out = {}
    for name, (w, h, fps, sound, seconds) in specs.items():
        out[name] = folder / f"{name}.mp4"
        render_clip(RenderSpec(width=w, height=h, duration=seconds, prompt=name, seed=1,
                               fps=fps, sound=sound), out[name])
    return out


def canvas_of(paths: list[Path], **given: Any) -> tuple[int, int, Fraction]:
    with ExitStack() as stack:
        clips = [stack.enter_context(Clip.open(p)) for p in paths]
        canvas = choose_canvas(clips, **given)
        return canvas.width, canvas.height, canvas.fps


def test_the_canvas_is_what_most_clips_have_or_what_the_film_asks(parts: dict[str, Path]
                                                                  ) -> None:
    everything = [parts["tall"], parts["loud"], parts["wide"], parts["quiet"]]
    assert canvas_of(everything) == (320, 180, 24)
    assert canvas_of([parts["tall"], parts["wide"]]) == (180, 320, 25)  # a tie: the earliest
    assert canvas_of([parts["loud"]], size=(640, 360), fps=29.97) == (
        640, 360, Fraction(30000, 1001))


def test_a_mixed_film_has_one_size_and_rate_its_parts_length_and_sound_where_it_was(
        tmp_path: Path, parts: dict[str, Path]) -> None:
    order = [parts["loud"], parts["tall"], parts["wide"], parts["quiet"]]
    result = stitch_clips(order, tmp_path / "film.mp4")
    film = probe_video(result.path)
    assert (film.width, film.height, film.fps) == (320, 180, 24)
    assert film.duration == pytest.approx(2 + 1 + 1.5 + 1, abs=1 / 24)
    _, seconds, samples = sound_of(result.path)
    assert seconds == pytest.approx(film.duration, abs=0.03)
    level = [float(np.sqrt((samples[:, int(a * 48000):int(b * 48000)] ** 2).mean()))
             for a, b in ((0.1, 1.9), (2.1, 5.4))]
    assert level[0] > 0.01 and level[1] < 1e-4  # sound under the first clip, silence after


def test_a_film_size_and_rate_that_the_clips_lack_re_encode_onto_them(
        tmp_path: Path, parts: dict[str, Path]) -> None:
    result = stitch_clips([parts["loud"], parts["quiet"]], tmp_path / "film.webm",
                          size=(640, 360), fps=30)
    film = probe_video(result.path)
    assert (result.method, film.width, film.height, film.fps) == ("reencode", 640, 360, 30)
    assert film.frames == 90
    name, seconds, _ = sound_of(result.path)
    assert (name, seconds) == ("opus", pytest.approx(3.0, abs=0.03))


# -- a chain across models, end to end ------------------------------------------------------

CHAIN = """\
version: 1
name: relay
shots:
  kite:
    model: pixverse:1@5
    positivePrompt: a red kite over dunes, wind in the grass
    width: 640
    height: 360
    duration: 5
    providerSettings: {pixverse: {soundEffectSwitch: true, soundEffectContent: wind}}
  gust:
    model: bytedance:2@2
    from: kite
    positivePrompt: a gust tears the kite loose
    resolution: 480p
    duration: 2.5
  fall:
    model: klingai:5@1
    from: gust
    width: 1280
    height: 720
    duration: 5
"""


@pytest.mark.slow
def test_a_chain_across_three_models_runs_into_one_film(tmp_path: Path) -> None:
    story = tmp_path / "relay.yaml"
    story.write_text(CHAIN, encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(story), "--sim-latency", "0,0.05", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    clips = {s["id"]: probe_video(Path(s["path"])) for s in summary["shots"]}
    assert {k: (c.width, c.height, c.fps, c.has_audio) for k, c in clips.items()} == {
        "kite": (640, 360, 16, True), "gust": (864, 480, 24, False),
        "fall": (1280, 720, 24, False)}
    film = probe_video(Path(summary["films"][0]["path"]))
    # every size once: the earliest clip's; the frame rate most clips have
    assert (film.width, film.height, film.fps) == (640, 360, 24)
    # kite and gust each stop just before the frame the next continues from
    assert film.duration == pytest.approx(5 - 1 / 16 + 2.5 - 1 / 24 + 5, abs=1 / 24)
    _, seconds, samples = sound_of(Path(summary["films"][0]["path"]))
    assert seconds == pytest.approx(film.duration, abs=0.03)
    loud = float(np.sqrt((samples[:, 48000:4 * 48000] ** 2).mean()))
    quiet = float(np.sqrt((samples[:, 6 * 48000:12 * 48000] ** 2).mean()))
    assert loud > 0.01 and quiet < 1e-4
    lock = read_lock(tmp_path / "relay.lock")
    assert set(lock.shots) == {"kite", "gust", "fall"}


def png_uri(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_each_model_takes_frame_images_within_its_own_limits(app: SimulatorApp) -> None:
    image = png_uri(2400, 1350)  # within PixVerse's 4000 px, past Kling's 2048
    status, _ = post(app, [task("pixverse:1@5", {
        "positivePrompt": "a kite", "inputs": {"frameImages": [image]}})])
    assert status == 200
    status, body = post(app, [task("klingai:5@3", {
        "positivePrompt": "a kite", "inputs": {"frameImages": [image]}})])
    assert status == 400
    assert body["errors"][0]["message"] == (
        "frame image: 2400x1350 is outside 300-2048 px per side")
