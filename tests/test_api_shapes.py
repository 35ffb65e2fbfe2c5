"""Every answer shape in the protocol reference, read by the client.

Shapes the simulator does not produce (it picks one variant of each unsettled point) are
served here by `httpx.MockTransport` with hand-written answers; the simulator's own shapes
are covered in test_api_client.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from pipeline.api import RunwareClient, SubmitStatus, TaskStatus, parse_retry_after
from pipeline.api.polling import RetryPolicy
from pipeline.errors import ApiError

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
URL = "https://vm.runware.ai/video/os/a1/ws/5/vi/{}.mp4"


class Script:
    """Answers requests in order from a list; remembers what was asked."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.bodies: list[Any] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content) if request.content else None)
        self.headers.append(request.headers)
        return self.answers.pop(0)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def video(task: str, n: int, **extra: Any) -> dict[str, Any]:
    uuid = f"{n:08d}-0000-4000-8000-000000000000"
    return {"taskType": "videoInference", "taskUUID": task, "status": "success",
            "videoUUID": uuid, "videoURL": URL.format(uuid), "seed": 40 + n, "cost": 0.15,
            **extra}


def with_client(script: Script, test: Callable[[RunwareClient], Coroutine[Any, Any, None]],
                sleeps: Sleeps | None = None) -> None:
    async def main() -> None:
        client = RunwareClient("test-key", transport=httpx.MockTransport(script),
                               sleep=sleeps or Sleeps(), retry=RetryPolicy(attempts=3))
        async with client:
            await test(client)

    asyncio.run(main())


def test_data_and_errors_in_one_answer() -> None:
    script = Script(answer(200, {
        "data": [video(A, 1)],
        "errors": [{"code": "timeoutProvider", "message": "provider timed out",
                    "taskUUID": B, "status": "error"}]}))

    async def test(client: RunwareClient) -> None:
        states = await client.poll([A, B])
        assert states[A].status is TaskStatus.SUCCESS
        assert states[A].results[0].seed == 41
        assert states[B].status is TaskStatus.ERROR
        error = states[B].error
        assert error is not None and error.code == "timeoutProvider" and error.transient

    with_client(script, test)
    assert script.bodies == [[{"taskType": "getResponse", "taskUUID": A},
                              {"taskType": "getResponse", "taskUUID": B}]]


def test_error_inside_data() -> None:
    script = Script(answer(200, {"data": [
        {"taskUUID": A, "status": "error",
         "error": {"code": "contentPolicyViolation", "message": "refused by the provider"}}]}))

    async def test(client: RunwareClient) -> None:
        state = (await client.poll([A]))[A]
        assert state.status is TaskStatus.ERROR
        assert state.error is not None
        assert (state.error.code, state.error.task_uuid) == ("contentPolicyViolation", A)
        assert not state.error.transient

    with_client(script, test)


def test_cumulative_results_are_deduplicated_by_video_uuid() -> None:
    processing = {"taskType": "videoInference", "taskUUID": A, "status": "processing"}
    script = Script(
        answer(200, {"data": [{"taskType": "videoInference", "taskUUID": A}]}),
        answer(200, {"data": [processing]}),
        answer(200, {"data": [video(A, 1), processing]}),
        answer(200, {"data": [video(A, 1), video(A, 2)]}),
        answer(200, {"data": [video(A, 1), video(A, 2)]}),
    )

    async def test(client: RunwareClient) -> None:
        await client.submit([{"taskUUID": A, "model": "pixverse:1@3",
                              "positivePrompt": "two takes", "numberResults": 2}])
        seen = [await client.poll([A]) for _ in range(4)]
        assert [s[A].status for s in seen] == [TaskStatus.PROCESSING, TaskStatus.PROCESSING,
                                              TaskStatus.SUCCESS, TaskStatus.SUCCESS]
        assert [len(s[A].results) for s in seen] == [0, 1, 2, 2]
        assert seen[3][A].expected == 2

    with_client(script, test)


def test_results_accumulate_when_a_server_repeats_only_new_items() -> None:
    script = Script(
        answer(200, {"data": [video(A, 1), {"taskUUID": A, "status": "processing"}]}),
        answer(200, {"data": [video(A, 2)]}),
    )

    async def test(client: RunwareClient) -> None:
        outcomes = await client.submit([{"taskUUID": A, "model": "pixverse:1@3",
                                         "positivePrompt": "two takes", "numberResults": 2}])
        assert outcomes[0].status is SubmitStatus.ACCEPTED
        await client.poll([A])
        last = (await client.poll([A]))[A]
        assert last.status is TaskStatus.SUCCESS
        assert [r.seed for r in last.results] == [41, 42]

    script.answers.insert(0, answer(200, {"data": [{"taskType": "videoInference",
                                                    "taskUUID": A}]}))
    with_client(script, test)


def test_data_as_an_object_instead_of_an_array() -> None:
    script = Script(
        answer(200, {"data": video(A, 1)}),
        answer(200, {"data": {"taskType": "imageUpload", "taskUUID": B,
                              "imageUUID": "989ba605-1449-4e1e-b462-cd83ec9c1a67",
                              "imageURL": "https://im.runware.ai/image/ws/0.5/ii/x.jpg"}}),
    )

    async def test(client: RunwareClient) -> None:
        assert (await client.poll([A]))[A].status is TaskStatus.SUCCESS
        assert await client.upload_image(b"\x89PNG...") == "989ba605-1449-4e1e-b462-cd83ec9c1a67"

    with_client(script, test)
    assert script.bodies[1][0]["image"].startswith("data:image/png;base64,")


def test_unknown_task_as_empty_data_or_task_not_found() -> None:
    script = Script(
        answer(200, {"data": []}),
        answer(400, {"errors": [{"code": "taskNotFound", "message": "no such task",
                                 "taskUUID": A}]}),
    )

    async def test(client: RunwareClient) -> None:
        assert (await client.poll([A]))[A].status is TaskStatus.UNKNOWN
        assert (await client.poll([A]))[A].status is TaskStatus.UNKNOWN

    with_client(script, test)


def test_conflict_task_uuid_means_already_there() -> None:
    script = Script(answer(400, {"errors": [
        {"code": "conflictTaskUUID", "message": "taskUUID already exists",
         "parameter": "taskUUID", "taskUUID": A}]}))

    async def test(client: RunwareClient) -> None:
        [outcome] = await client.submit([{"taskUUID": A, "model": "pixverse:1@3",
                                          "positivePrompt": "again"}])
        assert outcome.status is SubmitStatus.CONFLICT and outcome.ok

    with_client(script, test)


def test_submit_sends_async_delivery_with_cost_and_reads_each_outcome() -> None:
    script = Script(answer(200, {
        "data": [{"taskType": "videoInference", "taskUUID": A}],
        "errors": [{"code": "unsupportedDuration", "message": "Invalid value for duration",
                    "parameter": "duration", "type": "float", "taskUUID": B,
                    "allowedValues": [5, 8]}]}))

    async def test(client: RunwareClient) -> None:
        task = {"model": "pixverse:1@3", "positivePrompt": "a lighthouse"}
        outcomes = await client.submit([{**task, "taskUUID": A},
                                        {**task, "taskUUID": B, "duration": 7}])
        assert [o.status for o in outcomes] == [SubmitStatus.ACCEPTED, SubmitStatus.REFUSED]
        error = outcomes[1].error
        assert error is not None
        assert (error.code, error.parameter, error.status) == ("unsupportedDuration",
                                                               "duration", 200)

    with_client(script, test)
    sent = script.bodies[0]
    assert all(t["deliveryMethod"] == "async" and t["includeCost"] is True for t in sent)
    assert all(t["taskType"] == "videoInference" for t in sent)
    assert script.headers[0]["authorization"] == "Bearer test-key"


@pytest.mark.parametrize("status,code", [(400, "invalidPositivePrompt"), (401, "invalidApiKey"),
                                         (402, "insufficientCredits"), (403, "forbidden")])
def test_permanent_refusals_are_not_retried(status: int, code: str) -> None:
    script = Script(answer(status, {"errors": [{"code": code, "message": "no"}]}))
    sleeps = Sleeps()

    async def test(client: RunwareClient) -> None:
        with pytest.raises(ApiError) as caught:
            await client.poll([A])
        assert (caught.value.code, caught.value.status) == (code, status)
        assert not caught.value.transient
        assert client.request_counts["getResponse"] == 1

    with_client(script, test, sleeps)
    assert sleeps.delays == []


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    script = Script(answer(status, {"errors": [{"code": "busy", "message": "try later"}]}),
                    answer(200, {"data": [video(A, 1)]}))
    sleeps = Sleeps()

    async def test(client: RunwareClient) -> None:
        assert (await client.poll([A]))[A].status is TaskStatus.SUCCESS
        assert client.request_counts["getResponse"] == 2

    with_client(script, test, sleeps)
    assert len(sleeps.delays) == 1


def test_retry_after_is_honoured_and_attempts_are_bounded() -> None:
    busy = answer(429, {"errors": [{"code": "rateLimitExceeded", "message": "slow down"}]},
                  {"Retry-After": "7"})
    script = Script(busy, busy, busy)
    sleeps = Sleeps()

    async def test(client: RunwareClient) -> None:
        with pytest.raises(ApiError) as caught:
            await client.poll([A])
        assert caught.value.status == 429 and caught.value.transient
        assert caught.value.retry_after == 7.0

    with_client(script, test, sleeps)
    assert sleeps.delays == [7.0, 7.0]  # three attempts in all (RetryPolicy(attempts=3))


def test_a_server_error_that_names_failed_tasks_is_an_answer_not_a_retry() -> None:
    script = Script(answer(500, {"errors": [{"code": "timeoutProvider", "taskUUID": A,
                                             "message": "provider timed out"}]}))

    async def test(client: RunwareClient) -> None:
        state = (await client.poll([A]))[A]
        assert state.status is TaskStatus.ERROR and state.error is not None
        assert state.error.status == 500

    with_client(script, test)


def test_an_answer_that_is_not_json() -> None:
    script = Script(httpx.Response(502, text="<html>bad gateway</html>"),
                    httpx.Response(400, text="oops"))

    async def test(client: RunwareClient) -> None:
        with pytest.raises(ApiError) as caught:
            await client.poll([A])
        assert (caught.value.code, caught.value.status) == ("invalidResponse", 400)

    with_client(script, test)


def test_retry_after_as_an_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_polls_go_in_batches_of_at_most_max_batch() -> None:
    uuids = [f"{n:08d}-1111-4111-8111-111111111111" for n in range(250)]
    script = Script(*(answer(200, {"data": []}) for _ in range(3)))

    async def test(client: RunwareClient) -> None:
        states = await client.poll(uuids)
        assert len(states) == 250

    with_client(script, test)
    assert [len(b) for b in script.bodies] == [100, 100, 50]
