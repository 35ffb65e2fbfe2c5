"""The simulator on the wire: validation, envelopes, statuses, images, state and stats.

Requests are raw HTTP through `httpx.ASGITransport`, so these tests see exactly what a
client of the real service would see.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pipeline.language.catalog import load_catalog
from pipeline.simulator.app import SimulatorApp, SimulatorConfig, create_app
from pipeline.simulator.asgi import Receive, Scope, Send
from pipeline.simulator.serve import running

DATA = Path(__file__).parent / "data"
SPEC = load_catalog().get("pixverse:1@3")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sim:
    """An app with a fake clock, and blocking helpers to talk HTTP to it."""

    def __init__(self, config: SimulatorConfig | None = None, clock: Clock | None = None
                 ) -> None:
        self.clock = clock or Clock()
        self.app: SimulatorApp = create_app(config or SimulatorConfig(latency=(0, 0)),
                                            clock=self.clock)

    def request(self, method: str, path: str, *, key: str | None = "k",
                **options: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport,
                                         base_url="http://127.0.0.1") as client:
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                return await client.request(method, path, headers=headers, **options)

        return asyncio.run(go())

    def post(self, tasks: Any, **options: Any) -> tuple[int, dict[str, Any]]:
        answer = self.request("POST", "/v1", json=tasks, **options)
        return answer.status_code, answer.json()

    def submit(self, **fields: Any) -> tuple[int, dict[str, Any]]:
        return self.post([task(**fields)])

    def poll(self, *uuids: str) -> dict[str, Any]:
        status, body = self.post([{"taskType": "getResponse", "taskUUID": u} for u in uuids])
        assert status == 200
        return body


@pytest.fixture
def sims() -> Iterator[list[Sim]]:
    made: list[Sim] = []
    yield made
    for sim in made:
        sim.app.close()


@pytest.fixture
def sim(sims: list[Sim]) -> Sim:
    sims.append(Sim())
    return sims[-1]


def task(**fields: Any) -> dict[str, Any]:
    base = {"taskType": "videoInference", "taskUUID": str(uuid.uuid4()),
            "model": "pixverse:1@3", "positivePrompt": "a red kite over dunes",
            "resolution": "360p", "deliveryMethod": "async", "includeCost": True}
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


def png(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(buffer, format=fmt)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# -- the same verdicts as the catalog ----------------------------------------------------

CASES: list[dict[str, Any]] = [
    {},
    {"duration": 7},
    {"duration": 8},
    {"positivePrompt": "a"},
    {"positivePrompt": "x" * 2049},
    {"negativePrompt": "x"},
    {"providerSettings": {"pixverse": {"cameraMovement": "crane-up"}}},
    {"providerSettings": {"pixverse": {"effect": "boom drop", "cameraMovement": "zoom_in"}}},
    {"providerSettings": {"pixverse": {"effect": "boom drop", "style": "anime"}}},
    {"providerSettings": {"pixverse": {"motionMode": "fast"}, "duration": 8}},
    {"providerSettings": {"pixverse": {"motionMode": "fast"}}, "duration": 8},
    {"providerSettings": {"pixverse": {"motionMode": "fast"}}, "resolution": "1080p"},
    {"resolution": None, "width": 640, "height": 360},
    {"width": 640, "height": 360},
    {"resolution": None, "width": 640},
    {"resolution": None, "width": 1000, "height": 1000},
    {"resolution": "1080p", "duration": 8},
    {"resolution": "4k"},
    {"seed": -1},
    {"seed": 2147483648},
    {"numberResults": 5},
    {"outputFormat": "GIF"},
    {"outputQuality": 10},
    {"deliveryMethod": "sync"},
    {"ttl": 30},
    {"safety": {"checkContent": True, "mode": "full"}},
    {"guidance": 7},
]


@pytest.mark.parametrize("fields", CASES, ids=[json.dumps(c)[:60] for c in CASES])
def test_refuses_exactly_what_the_catalog_refuses(sim: Sim, fields: dict[str, Any]) -> None:
    request = task(**fields)
    errors = [v for v in SPEC.check_request(request) if not v.warning]
    status, body = sim.post([request])
    if not errors:
        assert (status, body) == (200, {"data": [
            {"taskType": "videoInference", "taskUUID": request["taskUUID"]}]})
        return
    assert status == 400 and "data" not in body
    assert [e["code"] for e in body["errors"]] == [v.code for v in errors]
    assert all(e["taskUUID"] == request["taskUUID"] for e in body["errors"])
    assert all(e.get("parameter") == v.parameter for e, v in zip(body["errors"], errors,
                                                                 strict=True))


def test_a_refusal_lists_allowed_values(sim: Sim) -> None:
    status, body = sim.submit(duration=7)
    [error] = body["errors"]
    assert (status, error["code"], error["parameter"]) == (400, "unsupportedDuration",
                                                          "duration")
    assert error["allowedValues"] == [5, 8]


def test_the_model_pages_requests_get_the_model_pages_answers(sim: Sim) -> None:
    pairs = json.loads((DATA / "seed_requests.json").read_text("utf-8"))
    for pair in pairs:
        request = {**pair["request"], "deliveryMethod": "async", "includeCost": True}
        status, body = sim.post([request])
        assert status == 200, body
    answers = sim.poll(*(p["request"]["taskUUID"] for p in pairs))["data"]
    for pair, item in zip(pairs, answers, strict=True):
        expected = pair["response"]
        assert item["taskUUID"] == expected["taskUUID"] and item["status"] == "success"
        assert (item["seed"], item["cost"]) == (expected["seed"], expected["cost"])
        assert item["videoURL"].endswith(f"/{item['videoUUID']}.mp4")
        record = sim.app.state.tasks[item["taskUUID"]]
        assert (record.width, record.height) == (1280, 720)


# -- server-side checks ------------------------------------------------------------------


@pytest.mark.parametrize("uuid_value,code", [
    (None, "missingTaskUUID"), ("not-a-uuid", "invalidTaskUUID"),
    (str(uuid.uuid1()), "invalidTaskUUID")])
def test_task_uuid_is_required_and_a_uuid_v4(sim: Sim, uuid_value: str | None, code: str
                                             ) -> None:
    status, body = sim.submit(taskUUID=uuid_value)
    assert (status, body["errors"][0]["code"]) == (400, code)
    assert body["errors"][0]["parameter"] == "taskUUID"


def test_resubmitting_a_task_uuid_is_a_conflict(sim: Sim) -> None:
    request = task()
    assert sim.post([request])[0] == 200
    status, body = sim.post([{**request, "positivePrompt": "something else entirely"}])
    assert status == 400
    assert body["errors"][0]["code"] == "conflictTaskUUID"
    assert sim.app.stats.conflicts == 1 and sim.app.stats.tasks_accepted == 1


def test_a_resubmission_racing_the_original_is_a_conflict(sim: Sim) -> None:
    request = task(**frames(data_uri(png(640, 360))))  # decoding the image takes a moment

    async def both() -> list[int]:
        transport = httpx.ASGITransport(app=sim.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                     headers={"Authorization": "Bearer k"}) as client:
            answers = await asyncio.gather(*(client.post("/v1", json=[request])
                                             for _ in range(2)))
        return sorted(a.status_code for a in answers)

    assert asyncio.run(both()) == [200, 400]
    assert (sim.app.stats.tasks_accepted, sim.app.stats.conflicts) == (1, 1)


def test_unknown_model(sim: Sim) -> None:
    status, body = sim.submit(model="runware:101@1")
    assert status == 400
    assert (body["errors"][0]["code"], body["errors"][0]["parameter"]) == ("unknownModel",
                                                                           "model")


def test_one_bad_task_does_not_fail_the_others(sim: Sim) -> None:
    good, bad = task(), task(duration=9)
    status, body = sim.post([good, bad, {"taskType": "getResponse", "taskUUID": good["taskUUID"]}])
    assert status == 200
    assert [i["taskUUID"] for i in body["data"]] == [good["taskUUID"], good["taskUUID"]]
    assert [e["taskUUID"] for e in body["errors"]] == [bad["taskUUID"]]


def test_unknown_task_type(sim: Sim) -> None:
    status, body = sim.post([{"taskType": "imageInference", "taskUUID": str(uuid.uuid4())}])
    assert (status, body["errors"][0]["code"]) == (400, "unsupportedTaskType")


# -- authentication ----------------------------------------------------------------------


def test_missing_key_is_401_missing_api_key(sim: Sim) -> None:
    status, body = sim.post([task()], key=None)
    assert (status, body["errors"][0]["code"]) == (401, "missingApiKey")
    assert sim.app.stats.tasks_accepted == 0


def test_any_key_unless_one_is_configured(sims: list[Sim]) -> None:
    sims.append(Sim(SimulatorConfig(api_key="right", latency=(0, 0))))
    strict = sims[-1]
    assert strict.post([task()], key="wrong")[0] == 401
    assert strict.post([task()], key="wrong")[1]["errors"][0]["code"] == "invalidApiKey"
    assert strict.post([task()], key="right")[0] == 200


def test_an_authentication_task_first_stands_for_the_header(sims: list[Sim]) -> None:
    sims.append(Sim(SimulatorConfig(api_key="right", latency=(0, 0))))
    strict = sims[-1]
    request = task()
    status, body = strict.post([{"taskType": "authentication", "apiKey": "right"}, request],
                               key=None)
    assert status == 200
    assert body["data"][0]["taskType"] == "authentication"
    assert uuid.UUID(body["data"][0]["connectionSessionUUID"])
    assert body["data"][1]["taskUUID"] == request["taskUUID"]


# -- bounded, and never a traceback ------------------------------------------------------


@pytest.mark.parametrize("content,code", [
    (b"{not json", "invalidJson"), (b'{"taskType": "ping"}', "invalidRequestBody"),
    (b"[]", "invalidRequestBody"), (b"[1, 2]", "invalidRequestBody"),
    (b"\xff\xfe", "invalidJson")])
def test_bad_bodies_get_the_error_envelope(sim: Sim, content: bytes, code: str) -> None:
    answer = sim.request("POST", "/v1", content=content)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [{"code": code, "message": answer.json()["errors"][0][
        "message"]}]}


def test_limits_on_body_size_and_tasks_per_request(sims: list[Sim]) -> None:
    sims.append(Sim(SimulatorConfig(max_body=2000, max_tasks=3)))
    small = sims[-1]
    answer = small.request("POST", "/v1", content=b"[" + b" " * 3000 + b"]")
    assert (answer.status_code, answer.json()["errors"][0]["code"]) == (413, "payloadTooLarge")
    status, body = small.post([{"taskType": "ping"}] * 4)
    assert (status, body["errors"][0]["code"]) == (400, "tooManyTasks")
    assert small.post([{"taskType": "ping"}] * 3)[0] == 200


def test_other_paths_and_methods(sim: Sim) -> None:
    assert sim.request("GET", "/v1").status_code == 405
    missing = sim.request("GET", "/v2/whatever")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "notFound"


# -- frame images and uploads ------------------------------------------------------------


def frames(*items: Any) -> dict[str, Any]:
    return {"inputs": {"frameImages": list(items)}}


def test_frame_images_by_upload_data_uri_base64_and_url(sim: Sim) -> None:
    status, body = sim.post([{"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()),
                              "image": data_uri(png(640, 360))}])
    assert status == 200
    upload = body["data"][0]
    assert upload["imageURL"].endswith(f"/{upload['imageUUID']}.png")
    raw = base64.b64encode(png(480, 360, "JPEG")).decode()
    cases = [
        frames(upload["imageUUID"]),
        frames(upload["imageURL"]),
        frames(data_uri(png(640, 360, "WEBP"), "image/webp")),
        frames({"image": raw, "frame": "last"}),
        frames("https://assets.runware.ai/assets/inputs/b6bebef1.jpg",
               {"image": upload["imageUUID"], "frame": -1}),
    ]
    for fields in cases:
        request = task(**fields)
        status, body = sim.post([request])
        assert status == 200, body
    record = sim.app.state.tasks[request["taskUUID"]]
    assert record.frames["first"].startswith("placeholder:https://assets.runware.ai/")
    assert record.frames["last"] == upload["imageUUID"]


@pytest.mark.parametrize("image,why", [
    (str(uuid.uuid4()), "no uploaded image"),
    ("bm90IGFuIGltYWdl", "cannot be decoded"),
    ("%%%", "not an imageUUID"),
    (data_uri(png(200, 200)), "outside 300-4000"),
    (data_uri(png(640, 360, "GIF"), "image/gif"), "not PNG, JPEG or WEBP"),
])
def test_unusable_frame_images_are_refused(sim: Sim, image: str, why: str) -> None:
    status, body = sim.submit(**frames(image))
    [error] = body["errors"]
    assert (status, error["code"], error["parameter"]) == (400, "invalidFrameImages",
                                                          "inputs.frameImages")
    assert why in error["message"]


def test_frame_images_from_this_machine_are_fetched_but_not_redirects(sim: Sim) -> None:
    image = png(480, 360)

    async def images(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        moved = scope["path"] == "/moved.png"
        headers = [(b"location", b"http://example.com/x.png")] if moved else [
            (b"content-type", b"image/png")]
        await send({"type": "http.response.start", "status": 302 if moved else 200,
                    "headers": headers})
        await send({"type": "http.response.body", "body": b"" if moved else image})

    with running(lambda origin: images) as served:
        fetched = task(**frames(f"{served.origin}/frame.png"))
        assert sim.post([fetched])[0] == 200
        status, body = sim.submit(**frames(f"{served.origin}/moved.png"))
    assert status == 400 and "cannot fetch" in body["errors"][0]["message"]
    ref = sim.app.state.tasks[fetched["taskUUID"]].frames["first"]
    assert sim.app.state.image_size(ref) == (480, 360)


def test_two_images_for_one_frame_are_refused(sim: Sim) -> None:
    image = data_uri(png(640, 360))
    status, body = sim.submit(**frames({"image": image, "frame": "first"},
                                       {"image": image, "frame": 0}))
    assert status == 400 and "two frame images" in body["errors"][0]["message"]


def test_uploads_are_stored_at_most_2048_on_the_long_side(sim: Sim) -> None:
    status, body = sim.post([{"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()),
                              "image": data_uri(png(3000, 1000))}])
    answer = sim.request("GET", body["data"][0]["imageURL"])
    assert answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (2048, 683)


def test_the_output_size_follows_the_first_frame_aspect(sim: Sim) -> None:
    request = task(resolution="540p", **frames(data_uri(png(400, 700))))
    assert sim.post([request])[0] == 200
    record = sim.app.state.tasks[request["taskUUID"]]
    assert (record.width, record.height) == (540, 960)


# -- polling, seeds, costs ---------------------------------------------------------------


def test_tasks_finish_after_their_latency(sims: list[Sim]) -> None:
    sims.append(Sim(SimulatorConfig(latency=(2.0, 3.0))))
    slow = sims[-1]
    request = task(numberResults=2)
    slow.post([request])
    assert slow.poll(request["taskUUID"])["data"] == [
        {"taskType": "videoInference", "taskUUID": request["taskUUID"], "status": "processing"}]
    slow.clock.now += 3.0
    items = slow.poll(request["taskUUID"])["data"]
    assert [i["status"] for i in items] == ["success", "success"]
    assert slow.poll(str(uuid.uuid4())) == {"data": []}


def test_seeds_given_and_derived(sims: list[Sim]) -> None:
    given = task(seed=2147483647, numberResults=2)
    free = task(numberResults=3)
    for _ in range(2):
        sims.append(Sim())
        sims[-1].post([given, free])
    seeds = [[i["seed"] for i in s.poll(given["taskUUID"], free["taskUUID"])["data"]]
             for s in sims]
    assert seeds[0] == seeds[1]  # deterministic from the taskUUID and the simulator seed
    assert seeds[0][:2] == [2147483647, 0]
    assert len(set(seeds[0][2:])) == 3 and all(0 <= s < 2**32 for s in seeds[0][2:])


@pytest.mark.parametrize("fields,cost", [
    ({"resolution": "1080p"}, 0.299), ({"resolution": "720p", "duration": 8}, 0.299),
    ({"resolution": "720p"}, 0.15), ({"resolution": "360p"}, 0.15),
    ({"resolution": "1080p", "duration": 8}, 0.4784)])
def test_costs_follow_the_published_prices(sim: Sim, fields: dict[str, Any], cost: float
                                          ) -> None:
    request = task(**fields)
    sim.post([request])
    [item] = sim.poll(request["taskUUID"])["data"]
    assert item["cost"] == cost


def test_no_cost_unless_asked(sim: Sim) -> None:
    request = task(includeCost=None)
    sim.post([request])
    assert "cost" not in sim.poll(request["taskUUID"])["data"][0]


# -- video URLs --------------------------------------------------------------------------


def test_video_urls_exist_only_once_ready_and_until_their_ttl(sims: list[Sim]) -> None:
    sims.append(Sim(SimulatorConfig(latency=(1.0, 1.0))))
    s = sims[-1]
    request = task(ttl=60)
    s.post([request])
    video_uuid = s.app.state.tasks[request["taskUUID"]].results[0].video_uuid
    path = f"/_simulator/videos/{video_uuid}.mp4"
    assert s.request("GET", path).status_code == 404  # not ready yet
    s.clock.now += 62
    assert s.request("GET", path).status_code == 410
    assert s.request("GET", f"/_simulator/videos/{video_uuid}.webm").status_code == 404
    assert s.app.stats.generations == 0


# -- stats and state ---------------------------------------------------------------------


def test_stats_endpoint(sim: Sim) -> None:
    request = task()
    sim.post([request])
    sim.post([request])
    sim.poll(request["taskUUID"])
    stats = sim.request("GET", "/_simulator/stats").json()
    assert stats["simulator"] is True
    assert stats["requests"] == {"videoInference": 2, "getResponse": 1}
    assert (stats["tasks_accepted"], stats["conflicts"], stats["generations"]) == (1, 1, 0)
    assert stats["http_requests"] == 3
    tasks = sim.request("GET", "/_simulator/tasks").json()["tasks"]
    assert [t["taskUUID"] for t in tasks] == [request["taskUUID"]]


def test_faults_repeat_with_the_same_seed(sims: list[Sim]) -> None:
    config = SimulatorConfig(rate_429=0.2, rate_500=0.1, rate_503=0.1, seed=42)
    runs = []
    for _ in range(2):
        sims.append(Sim(config))
        runs.append([sims[-1].post([{"taskType": "ping"}])[0] for _ in range(30)])
    assert runs[0] == runs[1]
    assert {200, 429, 500, 503} <= set(runs[0])
    answer = sims[-1].request("POST", "/v1", json=[{"taskType": "ping"}])
    while answer.status_code != 429:
        answer = sims[-1].request("POST", "/v1", json=[{"taskType": "ping"}])
    assert answer.headers["retry-after"] == "1"


def test_state_survives_a_restart(tmp_path: Path, sims: list[Sim]) -> None:
    config = SimulatorConfig(latency=(5.0, 5.0), state_dir=tmp_path)
    sims.append(Sim(config))
    first = sims[-1]
    request = task(numberResults=2)
    first.post([request])
    status, body = first.post([{"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()),
                                "image": data_uri(png(640, 360))}])
    image_uuid = body["data"][0]["imageUUID"]
    assert first.poll(request["taskUUID"])["data"][0]["status"] == "processing"

    sims.append(Sim(config, Clock(first.clock.now + 10)))  # a later process, same folder
    later = sims[-1]
    items = later.poll(request["taskUUID"])["data"]
    assert [i["status"] for i in items] == ["success", "success"]
    assert later.post([request])[1]["errors"][0]["code"] == "conflictTaskUUID"
    assert later.submit(**frames(image_uuid))[0] == 200
    path = "/" + items[0]["videoURL"].split("/", 3)[3]
    assert later.request("GET", path).status_code == 200
    assert later.app.stats.generations == 1

    sims.append(Sim(config, Clock(later.clock.now + 1)))  # and another, after the render
    again = sims[-1].request("GET", path)
    assert again.status_code == 200 and int(again.headers["content-length"]) > 1000
    assert sims[-1].app.stats.generations == 0
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]
