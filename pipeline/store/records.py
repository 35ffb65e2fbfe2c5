"""The records that index the cache: small JSON files, each naming objects by their hash.

Input: a shot's takes, a frame's PNG, an upload's imageUUID, a film's stamp.
Output: `ShotRecord` and `Take` (what one shot identity produced) and the reading and writing
of any record: written atomically, read with every shape mismatch turned into a
`CacheError` that names the file and says what to do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoryreelError
from .atomic import write_atomic
from .layout import checked_sha

RECORD_FORMAT = 1
DELETE_HINT = "delete the file; the shot is then treated as not cached"

T = TypeVar("T")


class CacheError(StoryreelError):
    """The cache folder holds something storyreel cannot use, or another run holds it."""


@dataclass(frozen=True)
class Take:
    """One video a task produced; `index` is 1-based, as `pick` counts."""

    index: int
    video_uuid: str
    sha256: str
    ext: str
    size: int
    probe: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Take:
        return cls(
            index=int(data["index"]),
            video_uuid=str(data["video_uuid"]),
            sha256=checked_sha(str(data["sha256"])),
            ext=str(data["ext"]),
            size=int(data["size"]),
            probe=dict(data["probe"]),
        )


@dataclass(frozen=True)
class ShotRecord:
    """What one shot identity produced: the task, its seed, every take and what it cost."""

    identity: str
    task_uuid: str
    seed: int
    takes: tuple[Take, ...]
    cost: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "identity": self.identity,
            "task_uuid": self.task_uuid,
            "seed": self.seed,
            "cost": self.cost,
            "takes": [take.to_json() for take in self.takes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShotRecord:
        if data["format"] != RECORD_FORMAT:
            raise ValueError(f"unknown record format {data['format']!r}")
        cost = data["cost"]
        return cls(
            identity=str(data["identity"]),
            task_uuid=str(data["task_uuid"]),
            seed=int(data["seed"]),
            takes=tuple(Take.from_json(take) for take in data["takes"]),
            cost=None if cost is None else float(cost),
        )


def write_record(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode())


def read_record(path: Path) -> Any:
    """The JSON in `path`, or None if there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # nothing there, or no store at all
        return None
    except UnicodeDecodeError as exc:
        raise CacheError(f"{path}: not a text file ({exc})", hint=DELETE_HINT) from None
    except IsADirectoryError:
        raise CacheError(f"{path}: a folder where a record should be",
                         hint="remove the folder; the cache rebuilds what it held") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"{path}:{exc.lineno}: invalid JSON: {exc.msg}"
        raise CacheError(message, hint=DELETE_HINT) from None


def parse_record(build: Callable[[Any], T], data: Any, path: Path) -> T:
    """Build a value from a record, turning any shape mismatch into a `CacheError`."""
    try:
        return build(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CacheError(f"{path}: unexpected record ({exc!r})", hint=DELETE_HINT) from None


def upload_fields(data: Mapping[str, Any]) -> tuple[str, datetime]:
    return str(data["image_uuid"]), aware(datetime.fromisoformat(data["uploaded"]))


def aware(moment: datetime | None) -> datetime:
    """`moment`, or now; a naive time is a bug (the cache compares across time zones)."""
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment
