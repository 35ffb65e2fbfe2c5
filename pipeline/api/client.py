"""The Runware REST client: requests out, typed answers back, over `httpx.AsyncClient`.

Input: `videoInference` task objects, taskUUIDs to poll, image bytes, video URLs.
Output: `SubmitOutcome`s, cumulative `TaskState`s, image UUIDs and `Download`s. Every failure
is an `ApiError`; transient ones (408, 429, 5xx, timeouts, dropped connections) are retried
with exponential backoff and full jitter, honouring `Retry-After`.

The transport is a parameter, so the same client runs against Runware, against the
simulator in process (`pipeline.simulator.app.simulator_transport`) or over a socket. The
API key goes into the `Authorization` header of API requests only: never into a video
download, a log line, an exception or a repr.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import logging
import random
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from ..errors import ApiError, UsageError
from ..store.atomic import atomic_path
from .polling import RetryPolicy, retries_left, retry_delay
from .wire import (
    TRANSIENT_STATUSES,
    Download,
    Envelope,
    SubmitOutcome,
    TaskState,
    is_request_failure,
    is_transient_failure,
    merge_state,
    read_envelope,
    request_error,
    submit_outcomes,
    task_states,
    to_api_error,
)

log = logging.getLogger("pipeline.api")

DEFAULT_BASE_URL = "https://api.runware.ai/v1"
# Tasks per HTTP request; the simulator refuses more, and Runware publishes no limit.
MAX_TASKS_PER_REQUEST = 100
CHUNK = 64 * 1024

T = TypeVar("T")


class Backend(Protocol):
    """What the scheduler talks to: Runware, or anything that answers like it."""

    async def submit(self, tasks: Sequence[Mapping[str, Any]]) -> list[SubmitOutcome]: ...

    async def poll(self, task_uuids: Sequence[str]) -> dict[str, TaskState]: ...

    async def upload_image(self, data: bytes, mime: str = "image/png") -> str: ...

    async def download(
        self, url: str, dest: Path, *, max_bytes: int, timeout: float
    ) -> Download: ...

    async def aclose(self) -> None: ...

    @property
    def request_counts(self) -> Mapping[str, int]:
        """HTTP requests sent so far, by task type (a batch of tasks counts once)."""
        ...


class RunwareClient:
    """`Backend` over Runware's REST API: one POST of a JSON array of tasks per request."""

    max_batch: int = MAX_TASKS_PER_REQUEST

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout: float = 30.0,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        check_api_key(api_key)
        self._api_key = api_key
        self.base_url = base_url
        self._retry = retry
        self._sleep = sleep
        self._timeout = timeout
        self._on_request = on_request
        self._rng = random.Random()
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._expected: dict[str, int] = {}
        self._states: dict[str, TaskState] = {}
        self.request_counts: Counter[str] = Counter()

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **kw: Any) -> RunwareClient:
        """A client from RUNWARE_API_KEY and (optionally) RUNWARE_BASE_URL."""
        key = environ.get("RUNWARE_API_KEY", "").strip()
        if not key:
            raise UsageError(
                "RUNWARE_API_KEY is not set: the Runware API needs your API key",
                hint="export RUNWARE_API_KEY=<your key> (runware.ai, API keys), "
                "or leave it unset and use the built-in simulator",
            )
        kw.setdefault("base_url", environ.get("RUNWARE_BASE_URL") or DEFAULT_BASE_URL)
        return cls(key, **kw)

    def __repr__(self) -> str:
        return f"RunwareClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> RunwareClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- operations ----------------------------------------------------------------------

    async def submit(self, tasks: Sequence[Mapping[str, Any]]) -> list[SubmitOutcome]:
        """Send `videoInference` tasks, up to `max_batch` per request, and say what became
        of each: accepted, already there (conflictTaskUUID) or refused with its error."""
        prepared = [self._prepare(task) for task in tasks]
        outcomes: list[SubmitOutcome] = []
        for batch in chunks(prepared, self.max_batch):
            envelope = await self._post(batch)
            if is_request_failure(envelope):
                raise request_error(envelope)
            outcomes += submit_outcomes(envelope, [str(t["taskUUID"]) for t in batch])
        return outcomes

    async def poll(self, task_uuids: Sequence[str]) -> dict[str, TaskState]:
        """The state of every task, one `getResponse` each, all in one request (per
        `max_batch` tasks); results accumulate across polls."""
        states: dict[str, TaskState] = {}
        for batch in chunks(list(dict.fromkeys(task_uuids)), self.max_batch):
            asks = [{"taskType": "getResponse", "taskUUID": uuid} for uuid in batch]
            envelope = await self._post(asks)
            if is_request_failure(envelope):
                raise request_error(envelope)
            for uuid, state in task_states(envelope, batch, self._expected).items():
                states[uuid] = self._states[uuid] = merge_state(self._states.get(uuid), state)
        return states

    async def upload_image(self, data: bytes, mime: str = "image/png") -> str:
        """Upload an image as a data URI; its imageUUID can stand in for it in requests."""
        task_uuid = str(uuidlib.uuid4())
        image = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        task = {"taskType": "imageUpload", "taskUUID": task_uuid, "image": image}
        envelope = await self._post([task])
        if envelope.errors:
            raise to_api_error(envelope.errors[0], envelope.status)
        for item in envelope.data:
            if item.get("imageUUID"):
                return str(item["imageUUID"])
        raise ApiError("imageUpload answered without an imageUUID", code="invalidResponse",
                       task_uuid=task_uuid, status=envelope.status)

    async def download(
        self, url: str, dest: Path, *, max_bytes: int, timeout: float
    ) -> Download:
        """Stream `url` into `dest` (through a temporary file beside it), at most
        `max_bytes` and `timeout` seconds in all, retrying transient failures."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            async with asyncio.timeout(timeout):
                return await self._retrying(lambda: self._download_once(url, dest, max_bytes))
        except TimeoutError:
            raise ApiError(f"download of {_short(url)} took longer than {timeout:g} s",
                           code="downloadTimeout", transient=True) from None

    # -- requests ------------------------------------------------------------------------

    def _prepare(self, task: Mapping[str, Any]) -> dict[str, Any]:
        prepared = dict(task)
        prepared.setdefault("taskType", "videoInference")
        prepared.setdefault("taskUUID", str(uuidlib.uuid4()))
        prepared.setdefault("deliveryMethod", "async")
        prepared.setdefault("includeCost", True)
        self._expected[str(prepared["taskUUID"])] = int(prepared.get("numberResults") or 1)
        return prepared

    async def _post(self, tasks: Sequence[Mapping[str, Any]]) -> Envelope:
        return await self._retrying(lambda: self._post_once(tasks))

    async def _retrying(self, attempt_once: Callable[[], Awaitable[T]]) -> T:
        """Run one request, again after each transient failure, while attempts remain."""
        attempt = 0
        while True:
            try:
                return await attempt_once()
            except ApiError as error:
                if not error.transient or not retries_left(self._retry, attempt):
                    raise
                delay = retry_delay(self._retry, attempt, self._rng, error.retry_after)
                log.warning("retrying in %.2f s (try %d of %d) after: %s",
                            delay, attempt + 2, self._retry.attempts, error.render())
            await self._sleep(delay)
            attempt += 1

    async def _post_once(self, tasks: Sequence[Mapping[str, Any]]) -> Envelope:
        self._count(tasks)
        try:
            response = await self._http.post(
                self.base_url, json=list(tasks), headers=self._auth_headers()
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, self.base_url, self._timeout) from exc
        envelope = _envelope_of(response)
        if is_transient_failure(envelope):
            raise request_error(envelope)
        return envelope

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    def _count(self, tasks: Sequence[Mapping[str, Any]]) -> None:
        for task_type in dict.fromkeys(str(t.get("taskType", "")) for t in tasks):
            self.request_counts[task_type] += 1
            if self._on_request is not None:
                self._on_request(task_type)

    async def _download_once(self, url: str, dest: Path, max_bytes: int) -> Download:
        try:
            with atomic_path(dest) as part:
                async with self._http.stream("GET", url, follow_redirects=True) as response:
                    _check_download(response, url, max_bytes)
                    size, digest = await _write_stream(response, part, url, max_bytes)
        except httpx.TransportError as exc:
            raise _transport_error(exc, url, self._timeout) from exc
        return Download(dest, size, digest, response.headers.get("content-type"))


def check_api_key(api_key: str) -> None:
    """Refuse keys that cannot go into a header (without ever echoing them)."""
    if not api_key:
        raise UsageError("the Runware API key is empty", hint="set RUNWARE_API_KEY")
    if not all(33 <= ord(c) < 127 for c in api_key):
        raise UsageError("the Runware API key contains spaces or characters a key cannot have",
                         hint="check RUNWARE_API_KEY for stray quotes or line breaks")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _envelope_of(response: httpx.Response) -> Envelope:
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        body: Any = response.json()
    except ValueError:
        body = {"errors": [{"code": "invalidResponse",
                            "message": f"HTTP {response.status_code}: the answer is not JSON"}]}
    return read_envelope(body, response.status_code, retry_after)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` in seconds: a number of seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now(), 0.0)


def _transport_error(exc: httpx.TransportError, url: str, timeout: float) -> ApiError:
    if isinstance(exc, httpx.TimeoutException):
        return ApiError(f"no answer from {_short(url)} within {timeout:g} s",
                        code="timeout", transient=True)
    reason = str(exc) or type(exc).__name__
    return ApiError(f"connection to {_short(url)} failed: {reason}",
                    code="connectionError", transient=True)


def _check_download(response: httpx.Response, url: str, max_bytes: int) -> None:
    status = response.status_code
    if status in (404, 410):
        raise ApiError(f"video {_short(url)} is gone (HTTP {status}); its URL may have expired",
                       code="videoExpired" if status == 410 else "videoNotFound", status=status)
    if status != 200:
        raise ApiError(f"download of {_short(url)} failed with HTTP {status}",
                       code="downloadFailed", status=status,
                       transient=status in TRANSIENT_STATUSES,
                       retry_after=parse_retry_after(response.headers.get("retry-after")))
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(url, max_bytes)


async def _write_stream(
    response: httpx.Response, part: Path, url: str, max_bytes: int
) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with part.open("wb") as out:
        async for chunk in response.aiter_bytes(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(url, max_bytes)
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def _too_large(url: str, max_bytes: int) -> ApiError:
    return ApiError(f"video {_short(url)} is larger than the {max_bytes} byte limit",
                    code="downloadTooLarge")


def _short(url: str) -> str:
    """A URL without its query string (presigned URLs carry credentials there)."""
    return url.split("?", 1)[0]
