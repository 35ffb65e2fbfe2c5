"""Runware's answer shapes, read into typed values: pure, no I/O.

Input: the decoded JSON body of an answer (and its HTTP status).
Output: `Envelope` (data items and error items, whatever the shape), `ApiError`s,
`SubmitOutcome`s for submitted tasks and `TaskState`s for polled ones.

Every shape the reference lists is read here: `data` and `errors` together; an error inside
`data` (`status: error` with an `error` object); `data` as one object instead of an array;
cumulative results for `numberResults` > 1 (de-duplicated by `videoUUID`); `{"data": []}`
or `taskNotFound` for a task the service does not know; `conflictTaskUUID` for a task it
already has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import ApiError

# JSON objects of the wire, in and out: their fields are the API's (a task's are checked
# against its model's schema before it is planned), their values any JSON; so Any.
Item = Mapping[str, Any]
Task = Mapping[str, Any]  # a task as sent: videoInference, getResponse, imageUpload

# HTTP statuses worth another try: the service was busy or broken, not the request.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Whole-request refusals: no task in the request can succeed, so they are raised.
REQUEST_FATAL_STATUSES = frozenset({401, 402, 403, 404, 405, 413})
# Task-level codes that describe a passing failure: the same request may work later.
TRANSIENT_CODES = frozenset(
    {"timeoutProvider", "internalServerError", "serviceUnavailable", "rateLimitExceeded"}
)
# Codes that describe the service, not a task, even when an error item names a task.
GENERIC_CODES = frozenset(
    {"", "internalServerError", "serviceUnavailable", "rateLimitExceeded", "timeout"}
)
UNKNOWN_TASK_CODES = frozenset({"taskNotFound", "taskExpired", "taskFailedOrNotFound"})
CONFLICT_CODE = "conflictTaskUUID"


class TaskStatus(StrEnum):
    PROCESSING = "processing"
    SUCCESS = "success"
    ERROR = "error"
    UNKNOWN = "unknown"  # the service does not know the task (`{"data": []}`, taskNotFound)


class SubmitStatus(StrEnum):
    ACCEPTED = "accepted"
    CONFLICT = "conflict"  # the service already has this taskUUID: poll it
    REFUSED = "refused"


@dataclass(frozen=True)
class VideoResult:
    video_uuid: str
    video_url: str
    seed: int | None = None
    cost: float | None = None


@dataclass(frozen=True)
class TaskState:
    """Cumulative state of one task, as far as the polls so far have told."""

    task_uuid: str
    status: TaskStatus
    results: tuple[VideoResult, ...] = ()
    error: ApiError | None = None
    expected: int = 0  # numberResults of the task if known, else 0


@dataclass(frozen=True)
class SubmitOutcome:
    task_uuid: str
    status: SubmitStatus
    error: ApiError | None = None

    @property
    def ok(self) -> bool:
        """Accepted now or earlier: either way the task is there to poll."""
        return self.status is not SubmitStatus.REFUSED


@dataclass(frozen=True)
class Download:
    path: Path
    size: int
    sha256: str
    content_type: str | None = None


@dataclass(frozen=True)
class Envelope:
    """One answer, normalised: data items and error items (errors from `data` included)."""

    status: int
    data: tuple[Item, ...] = ()
    errors: tuple[Item, ...] = ()
    retry_after: float | None = field(default=None, compare=False)


def read_envelope(body: Any, status: int, retry_after: float | None = None) -> Envelope:
    """Normalise any answer shape into data items and error items."""
    if isinstance(body, list):
        raw_data: list[Any] = body
        raw_errors: list[Any] = []
    elif isinstance(body, Mapping):
        raw_data = _as_list(body.get("data"))
        raw_errors = _as_list(body.get("errors")) + _as_list(body.get("error"))
    else:
        raw_data, raw_errors = [], [{"code": "invalidResponse", "message": "not a JSON object"}]
    data = [i for i in raw_data if isinstance(i, Mapping)]
    errors = [e if isinstance(e, Mapping) else {"message": str(e)} for e in raw_errors]
    inline = [_inline_error(i) for i in data if _is_error_item(i)]
    kept = [i for i in data if not _is_error_item(i)]
    return Envelope(status, tuple(kept), tuple(errors + inline), retry_after)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _is_error_item(item: Item) -> bool:
    return item.get("status") == "error" or isinstance(item.get("error"), Mapping)


def _inline_error(item: Item) -> Item:
    """`{"taskUUID", "status": "error", "error": {code, message}}` as a plain error item."""
    inner = item.get("error")
    merged = dict(inner) if isinstance(inner, Mapping) else {}
    for key in ("taskUUID", "taskType"):
        if key in item:
            merged.setdefault(key, item[key])
    return merged


def to_api_error(item: Item, status: int | None, retry_after: float | None = None) -> ApiError:
    """One error item as an `ApiError`, transient if its status or code says so."""
    code = str(item.get("code") or "")
    parameter = item.get("parameter")
    if isinstance(parameter, list):
        parameter = next((str(p) for p in parameter), None)
    message = str(item.get("message") or code or f"HTTP {status}")
    transient = (status in TRANSIENT_STATUSES) or code in TRANSIENT_CODES
    task_uuid = item.get("taskUUID")
    return ApiError(
        message,
        code=code,
        parameter=str(parameter) if parameter is not None else None,
        task_uuid=str(task_uuid) if task_uuid else None,
        status=status,
        transient=transient,
        retry_after=retry_after,
    )


def request_error(envelope: Envelope) -> ApiError:
    """The error that stands for a whole failed request."""
    first = next(iter(envelope.errors), {"code": "", "message": f"HTTP {envelope.status}"})
    return to_api_error(first, envelope.status, envelope.retry_after)


def is_transient_failure(envelope: Envelope) -> bool:
    """A busy or broken service: worth sending the same request again.

    A 5xx that still answers about named tasks (a task failure reported with a server
    status) is an answer, not a failure to retry; a 429 is always retried."""
    if envelope.status not in TRANSIENT_STATUSES:
        return False
    return envelope.status == 429 or not _answers_tasks(envelope)


def _answers_tasks(envelope: Envelope) -> bool:
    if envelope.data:
        return True
    return bool(envelope.errors) and all(
        e.get("taskUUID") and e.get("code") not in GENERIC_CODES for e in envelope.errors)


def is_request_failure(envelope: Envelope) -> bool:
    """A refusal of the request as a whole, rather than an answer about its tasks."""
    if envelope.status in REQUEST_FATAL_STATUSES or is_transient_failure(envelope):
        return True
    if envelope.status >= 400 and not envelope.data:
        return not any(e.get("taskUUID") for e in envelope.errors)
    return False


# -- submit ----------------------------------------------------------------------------


def submit_outcomes(envelope: Envelope, task_uuids: Sequence[str]) -> list[SubmitOutcome]:
    """One outcome per submitted task, in order.

    A task the answer does not mention counts as accepted when the request as a whole was:
    polling settles it (an unknown task can be submitted again safely, same taskUUID).
    """
    errors = _by_task(envelope.errors)
    general = [e for e in envelope.errors if not e.get("taskUUID")]
    return [_outcome(uuid, errors.get(uuid, []), general, envelope) for uuid in task_uuids]


def _outcome(
    uuid: str, errors: list[Item], general: list[Item], envelope: Envelope
) -> SubmitOutcome:
    if any(e.get("code") == CONFLICT_CODE for e in errors):
        return SubmitOutcome(uuid, SubmitStatus.CONFLICT)
    found = errors or (general if envelope.status >= 400 else [])
    if found:
        error = to_api_error({**found[0], "taskUUID": uuid}, envelope.status)
        return SubmitOutcome(uuid, SubmitStatus.REFUSED, error)
    return SubmitOutcome(uuid, SubmitStatus.ACCEPTED)


def _by_task(items: Iterable[Item]) -> dict[str, list[Item]]:
    found: dict[str, list[Item]] = {}
    for item in items:
        uuid = item.get("taskUUID")
        if uuid:
            found.setdefault(str(uuid), []).append(item)
    return found


# -- poll ------------------------------------------------------------------------------


def task_states(
    envelope: Envelope, task_uuids: Sequence[str], expected: Mapping[str, int]
) -> dict[str, TaskState]:
    """What one poll answer says about each polled task."""
    data = _by_task(envelope.data)
    if len(task_uuids) == 1 and not data:
        # An item without a taskUUID can only be about the one task asked for.
        data = {task_uuids[0]: [i for i in envelope.data if not i.get("taskUUID")]}
    errors = _by_task(envelope.errors)
    return {
        uuid: _state(uuid, data.get(uuid, []), errors.get(uuid, []), expected.get(uuid, 0),
                     envelope.status)
        for uuid in task_uuids
    }


def _state(
    uuid: str, items: list[Item], errors: list[Item], expected: int, status: int
) -> TaskState:
    results = dedupe_results(_result(i) for i in items)
    known_errors = [e for e in errors if e.get("code") not in UNKNOWN_TASK_CODES]
    if known_errors:
        error = to_api_error(known_errors[0], status)
        return TaskState(uuid, TaskStatus.ERROR, results, error, expected)
    processing = any(i.get("status") == "processing" for i in items)
    if not items:
        return TaskState(uuid, TaskStatus.UNKNOWN, (), None, expected)
    done = bool(results) and not processing and len(results) >= expected
    return TaskState(uuid, TaskStatus.SUCCESS if done else TaskStatus.PROCESSING,
                     results, None, expected)


def _result(item: Item) -> VideoResult | None:
    url = item.get("videoURL")
    if not url or item.get("status") == "processing":
        return None
    video_uuid = str(item.get("videoUUID") or url)
    seed = item.get("seed")
    cost = item.get("cost")
    return VideoResult(
        video_uuid=video_uuid,
        video_url=str(url),
        seed=int(seed) if isinstance(seed, (int, float)) else None,
        cost=float(cost) if isinstance(cost, (int, float)) else None,
    )


def dedupe_results(results: Iterable[VideoResult | None]) -> tuple[VideoResult, ...]:
    """Results in first-seen order, one per videoUUID."""
    seen: dict[str, VideoResult] = {}
    for result in results:
        if result is not None and result.video_uuid not in seen:
            seen[result.video_uuid] = result
    return tuple(seen.values())


def merge_state(old: TaskState | None, new: TaskState) -> TaskState:
    """Fold a new poll answer into what earlier polls said (results accumulate).

    When the new answer repeats every result seen so far, its order wins: a server that
    lists all it has gives every client the same order once all are in, whereas arrival
    order depends on when the polls fell, and a take's number (what `pick` names) must not.
    A server that lists only new items leaves arrival order as the only order there is."""
    if old is None:
        return new
    listed = {r.video_uuid for r in new.results}
    repeats_all = all(r.video_uuid in listed for r in old.results)
    ordered = [*new.results, *old.results] if repeats_all else [*old.results, *new.results]
    results = dedupe_results(ordered)
    if new.status is TaskStatus.UNKNOWN and old.status in (TaskStatus.SUCCESS, TaskStatus.ERROR):
        return replace(old, results=results)
    status = new.status
    if status is TaskStatus.PROCESSING and new.expected and len(results) >= new.expected:
        status = TaskStatus.SUCCESS
    return replace(new, status=status, results=results)
