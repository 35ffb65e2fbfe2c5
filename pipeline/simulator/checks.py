"""Request checks in Runware's terms: request bodies and task objects in; the tasks, or a
`TaskError` carrying Runware's error envelope and HTTP status, out.

A videoInference task is checked by the same model catalog as the planner, so the simulator
refuses exactly what a plan refuses, with the catalog's code, parameter and allowed values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..language.catalog import ModelSpec

UUID_V4 = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)

class TaskError(Exception):
    """Errors about one task (or a whole request), with the HTTP status they call for."""

    def __init__(self, status: int, problems: list[dict[str, Any]]) -> None:
        super().__init__(problems[0]["message"] if problems else "error")
        self.status = status
        self.problems = problems


def problem(code: str, message: str, task: Mapping[str, Any] | None = None,
            **extra: Any) -> dict[str, Any]:
    """One item of Runware's `errors` array."""
    item: dict[str, Any] = {"code": code, "message": message}
    item.update({k: v for k, v in extra.items() if v is not None})
    if task is not None:
        for key in ("taskType", "taskUUID"):
            if isinstance(task.get(key), str):
                item[key] = task[key]
    return item


def refuse(status: int, code: str, message: str, task: Mapping[str, Any] | None = None,
           **extra: Any) -> TaskError:
    return TaskError(status, [problem(code, message, task, **extra)])



def parse_tasks(body: bytes, max_tasks: int) -> list[dict[str, Any]]:
    """The task objects of a request body, or the error envelope's reason why not."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise refuse(400, "invalidJson", "the request body is not valid JSON") from None
    if not isinstance(payload, list) or not all(isinstance(t, dict) for t in payload):
        raise refuse(400, "invalidRequestBody", "the body must be a JSON array of task objects")
    if not payload:
        raise refuse(400, "invalidRequestBody", "the task array is empty")
    if len(payload) > max_tasks:
        raise refuse(400, "tooManyTasks", f"{len(payload)} tasks in one request; at most "
                     f"{max_tasks}")
    return payload


def require_task_uuid(task: Mapping[str, Any]) -> str:
    value = task.get("taskUUID")
    if not isinstance(value, str) or not value:
        raise refuse(400, "missingTaskUUID", "taskUUID is required (a UUID v4)", task,
                     parameter="taskUUID")
    if not UUID_V4.match(value):
        raise refuse(400, "invalidTaskUUID", f"taskUUID {value!r} is not a UUID v4", task,
                     parameter="taskUUID")
    return value


def check_request(spec: ModelSpec, task: Mapping[str, Any]) -> None:
    """The catalog's verdict, as Runware error items (warnings are not refusals)."""
    found = [v for v in spec.check_request(task) if not v.warning]
    if found:
        raise TaskError(400, [
            problem(v.code, f"{v.parameter}: {v.message}" if v.parameter else v.message, task,
                    parameter=v.parameter or None,
                    allowedValues=list(v.allowed) if v.allowed else None)
            for v in found])
