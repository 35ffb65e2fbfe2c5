"""The client over a real socket (uvicorn on 127.0.0.1, a free port, in a thread):
timeouts, dropped connections and streamed downloads with a size limit and a time limit."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from pipeline.api import RunwareClient, SubmitStatus, TaskStatus
from pipeline.api.polling import RetryPolicy
from pipeline.errors import ApiError
from pipeline.simulator.app import SimulatorConfig
from pipeline.simulator.faults import Fault, request_fault
from pipeline.simulator.serve import Receive, Scope, Send, running, serving

BLOCK = bytes(range(256)) * 256  # 64 KiB


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def files_app(scope: Scope, receive: Receive, send: Send) -> None:
    """/sized/N: N bytes with Content-Length; /chunked/N: N bytes without it;
    /trickle: a block every 0.1 s; POST /v1: answers after 0.5 s."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/v1":
        await asyncio.sleep(0.5)
        await _send(send, 200, [b'{"data": []}'], [(b"content-type", b"application/json")])
    elif path.startswith("/sized/"):
        size = int(path.rsplit("/", 1)[1])
        await _send(send, 200, _blocks(size), [(b"content-length", str(size).encode())])
    elif path.startswith("/chunked/"):
        await _send(send, 200, _blocks(int(path.rsplit("/", 1)[1])), [])
    elif path == "/trickle":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(8):
            await send({"type": "http.response.body", "body": BLOCK, "more_body": True})
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": b""})


def _blocks(size: int) -> list[bytes]:
    full, rest = divmod(size, len(BLOCK))
    return [BLOCK] * full + ([BLOCK[:rest]] if rest else [])


async def _send(send: Send, status: int, parts: list[bytes],
                headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    for part in parts:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def with_files(test: Callable[[RunwareClient, str], Coroutine[Any, Any, None]],
               **client_options: Any) -> None:
    with running(lambda origin: files_app) as served:
        async def main() -> None:
            async with RunwareClient("k", base_url=served.url, sleep=Sleeps(),
                                     **client_options) as client:
                await test(client, served.origin)

        asyncio.run(main())


def test_a_request_that_times_out_is_retried_then_reported() -> None:
    async def test(client: RunwareClient, origin: str) -> None:
        with pytest.raises(ApiError) as caught:
            await client.poll([str(uuid.uuid4())])
        assert caught.value.code == "timeout" and caught.value.transient
        assert "0.1 s" in caught.value.message
        assert client.request_counts["getResponse"] == 2

    with_files(test, timeout=0.1, retry=RetryPolicy(attempts=2))


def test_a_download_streams_to_disk_with_its_sha256(tmp_path: Path) -> None:
    size = 1_000_003

    async def test(client: RunwareClient, origin: str) -> None:
        for kind in ("sized", "chunked"):
            done = await client.download(f"{origin}/{kind}/{size}", tmp_path / f"{kind}.bin",
                                         max_bytes=size, timeout=10)
            data = (tmp_path / f"{kind}.bin").read_bytes()
            assert done.size == len(data) == size
            assert done.sha256 == hashlib.sha256(data).hexdigest()

    with_files(test)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.bin", "sized.bin"]


@pytest.mark.parametrize("kind", ["sized", "chunked"])
def test_a_download_past_the_size_limit_is_aborted_and_deleted(kind: str, tmp_path: Path
                                                                ) -> None:
    async def test(client: RunwareClient, origin: str) -> None:
        with pytest.raises(ApiError) as caught:
            await client.download(f"{origin}/{kind}/3000000", tmp_path / "big.bin",
                                  max_bytes=1_000_000, timeout=10)
        assert caught.value.code == "downloadTooLarge" and not caught.value.transient

    with_files(test)
    assert list(tmp_path.iterdir()) == []


def test_a_download_past_its_time_limit_is_aborted_and_deleted(tmp_path: Path) -> None:
    async def test(client: RunwareClient, origin: str) -> None:
        with pytest.raises(ApiError) as caught:
            await client.download(f"{origin}/trickle", tmp_path / "slow.bin",
                                  max_bytes=10**9, timeout=0.25)
        assert caught.value.code == "downloadTimeout"

    with_files(test)
    assert list(tmp_path.iterdir()) == []


def test_a_dropped_connection_over_a_socket_is_retried_into_a_conflict() -> None:
    rates = [(Fault.DROP, 0.5)]
    seed = next(s for s in range(10_000) if request_fault(s, 1, rates) is Fault.DROP
                and request_fault(s, 2, rates) is Fault.NONE)
    config = SimulatorConfig(latency=(0, 0), rate_drop=0.5, seed=seed)
    with serving(config) as served:
        async def main() -> None:
            sleeps = Sleeps()
            async with RunwareClient("k", base_url=served.url, sleep=sleeps) as client:
                [outcome] = await client.submit([{
                    "taskUUID": str(uuid.uuid4()), "model": "pixverse:1@3",
                    "positivePrompt": "a gull over the pier", "resolution": "360p"}])
            assert outcome.status is SubmitStatus.CONFLICT
            assert len(sleeps.delays) == 1

        asyncio.run(main())
        assert served.app.stats.faults == {"drop": 1}
        assert served.app.stats.tasks_accepted == 1


def test_the_simulator_over_a_socket_end_to_end(tmp_path: Path) -> None:
    with serving(SimulatorConfig(latency=(0.05, 0.1))) as served:
        async def main() -> None:
            async with RunwareClient("k", base_url=served.url) as client:
                task_uuid = str(uuid.uuid4())
                await client.submit([{
                    "taskUUID": task_uuid, "model": "pixverse:1@3",
                    "positivePrompt": "fog rolling over a harbour", "width": 360,
                    "height": 360, "duration": 5, "outputFormat": "WEBM"}])
                await asyncio.sleep(0.15)
                state = (await client.poll([task_uuid]))[task_uuid]
                assert state.status is TaskStatus.SUCCESS
                url = state.results[0].video_url
                assert url.startswith(served.origin) and url.endswith(".webm")
                done = await client.download(url, tmp_path / "clip.webm", max_bytes=10**8,
                                             timeout=30)
                assert done.content_type == "video/webm" and done.size > 1000

        asyncio.run(main())
