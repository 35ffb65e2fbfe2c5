"""The task journal: every task written down before it is sent, and what became of it.

Input: the scheduler's task lifecycle (prepare, submitted, done, failed, abandoned).
Output: `.storyreel/journal.sqlite`, SQLite in WAL mode. Every call commits before it returns,
so a run killed at any instant leaves a journal that tells the next run which tasks may be on
the server (poll them, nothing is paid twice) and which never left (submit them).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import StoryreelError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_uuid TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    shot_key TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    results TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS tasks_identity ON tasks (identity);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state);
"""

_COLUMNS = "task_uuid, identity, shot_key, request, state, attempt, created, updated, results, error"
_SECRET_KEYS = frozenset({"apikey", "api_key", "authorization"})


class TaskPhase(StrEnum):
    PREPARED = "prepared"  # written, maybe not sent: the server may or may not have it
    SUBMITTED = "submitted"  # the server acknowledged it
    DONE = "done"
    FAILED = "failed"
    ABANDONED = "abandoned"  # given up on without an answer (e.g. deadline passed)


OPEN_PHASES = (TaskPhase.PREPARED, TaskPhase.SUBMITTED)


class JournalError(StoryreelError):
    """The journal file cannot be read or written."""


@dataclass(frozen=True)
class JournalTask:
    task_uuid: str
    identity: str
    shot_key: str
    request: dict[str, Any]
    state: TaskPhase
    attempt: int
    created: datetime
    updated: datetime
    results: tuple[dict[str, Any], ...] = ()
    error: dict[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_PHASES


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Journal:
    """The task journal at `path`; usable as a context manager that closes it."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = _utc_now,
                 readonly: bool = False) -> None:
        self.path = Path(path)
        self._clock = clock
        if readonly:
            self._db = self._connect_readonly()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._connect()

    @classmethod
    def reader(cls, path: Path) -> Journal | None:
        """The journal at `path` opened to read only, creating nothing; None when there is
        none yet (or it is still being created by the run that will write it)."""
        try:
            return cls(path, readonly=True) if Path(path).is_file() else None
        except JournalError:
            return None

    def _connect_readonly(self) -> sqlite3.Connection:
        db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True,
                             isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            db.execute("SELECT count(*) FROM tasks").fetchone()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise self._broken(exc) from None
        return db

    def _connect(self) -> sqlite3.Connection:
        # Autocommit: each statement is its own transaction, committed before execute returns.
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL survives a killed process but may drop the last commits on a power
            # cut. A dropped "prepared" row is a task the server may have, and bill, that the
            # next run would not know to poll: it would pay for the shot twice. FULL syncs
            # every commit; a few milliseconds per task is cheap next to a video.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            self._migrate(db)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise self._broken(exc) from None
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise JournalError(
                f"{self.path}: journal version {version} is newer than this storyreel reads "
                f"({SCHEMA_VERSION})",
                hint="upgrade storyreel",
            )
        db.executescript(_SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")

    def _broken(self, exc: sqlite3.DatabaseError) -> JournalError:
        return JournalError(
            f"{self.path}: cannot use the task journal ({exc})",
            hint="move the file aside and run again; tasks that were in flight will then be "
            "submitted again, and may be paid for twice",
        )

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            raise self._broken(exc) from None

    def _now(self) -> str:
        return self._clock().isoformat()

    # Writes

    def prepare(
        self,
        task_uuid: str,
        identity: str,
        shot_key: str,
        request: Mapping[str, Any],
        attempt: int = 1,
    ) -> None:
        """Record a task about to be sent; call before the request leaves the process."""
        _refuse_secrets(request)
        now = self._now()
        row = (task_uuid, identity, shot_key, json.dumps(request), TaskPhase.PREPARED.value)
        try:
            self._execute(
                f"INSERT INTO tasks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                (*row, attempt, now, now),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"task {task_uuid} is already in the journal") from None

    def mark_submitted(self, task_uuid: str) -> None:
        """The server has the task. Repeating it is harmless: a resend with the same UUID."""
        self._move(task_uuid, TaskPhase.SUBMITTED)

    def mark_done(self, task_uuid: str, results: Sequence[Mapping[str, Any]]) -> None:
        self._move(task_uuid, TaskPhase.DONE, results=json.dumps(list(results)))

    def mark_failed(self, task_uuid: str, error: Mapping[str, Any]) -> None:
        self._move(task_uuid, TaskPhase.FAILED, error=json.dumps(error))

    def abandon(self, task_uuid: str) -> None:
        self._move(task_uuid, TaskPhase.ABANDONED)

    def _move(
        self, task_uuid: str, to: TaskPhase, *, results: str | None = None, error: str | None = None
    ) -> None:
        # Only open tasks move: an answer arriving for a finished task is a bug upstream.
        cursor = self._execute(
            "UPDATE tasks SET state = ?, updated = ?, results = coalesce(?, results),"
            " error = coalesce(?, error) WHERE task_uuid = ? AND state IN (?, ?)",
            (to.value, self._now(), results, error, task_uuid, *OPEN_PHASES),
        )
        if cursor.rowcount == 0:
            task = self.get(task_uuid)
            where = "not in the journal" if task is None else f"already {task.state}"
            raise ValueError(f"cannot mark task {task_uuid} {to}: it is {where}")

    # Reads

    def get(self, task_uuid: str) -> JournalTask | None:
        rows = self._select("WHERE task_uuid = ?", (task_uuid,))
        return rows[0] if rows else None

    def open_tasks(self) -> list[JournalTask]:
        """Tasks that may still be running on the server, oldest first."""
        return self._select("WHERE state IN (?, ?) ORDER BY rowid", OPEN_PHASES)

    def tasks_for(self, identity: str) -> list[JournalTask]:
        """Every task made for a shot identity, in the order they were prepared."""
        return self._select("WHERE identity = ? ORDER BY rowid", (identity,))

    def all_tasks(self, state: TaskPhase | None = None) -> list[JournalTask]:
        """Every task (or every task in `state`), in the order they were prepared."""
        if state is None:
            return self._select("ORDER BY rowid", ())
        return self._select("WHERE state = ? ORDER BY rowid", (state.value,))

    def last_done(self, identity: str) -> JournalTask | None:
        """The latest finished task of a shot identity: its answer names the videos, which
        the service keeps for a while, so a lost take can be downloaded again."""
        rows = self._select("WHERE identity = ? AND state = ? ORDER BY rowid DESC LIMIT 1",
                            (identity, TaskPhase.DONE.value))
        return rows[0] if rows else None

    def _select(self, where: str, params: Sequence[Any]) -> list[JournalTask]:
        rows = self._execute(f"SELECT {_COLUMNS} FROM tasks {where}", params).fetchall()
        return [self._task_from(row) for row in rows]

    def _task_from(self, row: tuple[Any, ...]) -> JournalTask:
        try:
            return _task_from_row(row)
        except (ValueError, TypeError) as exc:
            raise JournalError(f"{self.path}: unreadable task {row[0]!r} ({exc})") from None

    # The file itself

    @property
    def mode(self) -> str:
        """SQLite's journal mode: `wal` (set on opening)."""
        return str(self._execute("PRAGMA journal_mode").fetchone()[0])

    def problems(self) -> list[str]:
        """What SQLite's integrity check finds wrong with the file; none when it is sound."""
        rows = self._execute("PRAGMA integrity_check").fetchall()
        return [str(row[0]) for row in rows if row[0] != "ok"]

    # Lifetime

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def read_tasks(path: Path, state: TaskPhase | None = None) -> list[JournalTask]:
    """Every task of the journal at `path` (or those in `state`), read without writing
    anything; none when there is no journal yet. For looking at a run from outside."""
    journal = Journal.reader(path)
    if journal is None:
        return []
    with journal:
        return journal.all_tasks(state)


def _task_from_row(row: tuple[Any, ...]) -> JournalTask:
    uuid, identity, shot_key, request, state, attempt, created, updated, results, error = row
    return JournalTask(
        task_uuid=uuid,
        identity=identity,
        shot_key=shot_key,
        request=json.loads(request),
        state=TaskPhase(state),
        attempt=int(attempt),
        created=datetime.fromisoformat(created),
        updated=datetime.fromisoformat(updated),
        results=tuple(json.loads(results)) if results else (),
        error=json.loads(error) if error else None,
    )


def _refuse_secrets(value: Any) -> None:
    """The journal is a plain file next to the storyboard: an API key must never reach it."""
    if isinstance(value, Mapping):
        if any(str(key).lower() in _SECRET_KEYS for key in value):
            raise ValueError("a request written to the journal must not carry an API key")
        for item in value.values():
            _refuse_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_secrets(item)
