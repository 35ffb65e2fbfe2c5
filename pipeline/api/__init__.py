"""The API stage: Runware tasks out, typed answers back.

Input: `videoInference` requests (from the planner), taskUUIDs to poll, images, video URLs.
Output: submit outcomes, cumulative task states, image UUIDs and downloaded files.
`wire` reads Runware's answer shapes (pure); `client` speaks REST over httpx, the only
place in the package, with the simulator's transport, that imports it.
"""

from .client import (
    DEFAULT_BASE_URL,
    MAX_TASKS_PER_REQUEST,
    Backend,
    RunwareClient,
    parse_retry_after,
)
from .wire import (
    Download,
    Envelope,
    SubmitOutcome,
    SubmitStatus,
    Task,
    TaskState,
    TaskStatus,
    VideoResult,
    read_envelope,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_TASKS_PER_REQUEST",
    "Backend",
    "Download",
    "Envelope",
    "RunwareClient",
    "SubmitOutcome",
    "SubmitStatus",
    "Task",
    "TaskState",
    "TaskStatus",
    "VideoResult",
    "parse_retry_after",
    "read_envelope",
]
