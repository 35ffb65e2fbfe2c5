"""Plan state: a storyboard path in; what `plan` and `run` compile against, out.

The lock file, the cache next to the storyboard, and the journal, read without writing
anything: whether an identity is cached, and what the store knows better than the lock (a
lock entry whose task, videos or sha256 differ from the cache's record; a lost take that
the service can send again, because the journal kept the answer naming it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FileError
from ..language.compile import Compiled, compile_storyboard
from ..language.plan import Reason
from ..store import (
    Lock,
    LockEntry,
    ObjectStore,
    ShotRecord,
    TaskPhase,
    lock_path_for,
    read_lock,
    read_tasks,
    store_root_for,
)
from .continuity import best_frame_lookup


@dataclass
class PlanState:
    lock: Lock
    store: ObjectStore
    _records: dict[str, ShotRecord | None] = field(default_factory=dict)
    _answered: set[str] | None = None  # identities whose finished task named its videos

    def record(self, identity: str) -> ShotRecord | None:
        """The cache's record of `identity` if every take of it is there (looked up once)."""
        if identity not in self._records:
            self._records[identity] = self.store.find_shot(identity)
        return self._records[identity]

    def is_cached(self, identity: str) -> bool:
        return self.record(identity) is not None

    def reason(self, key: str, identity: str) -> Reason | None:
        """`lock mismatch`, `missing file: download again`, or None (the plan decides)."""
        record = self.record(identity)
        if record is not None:
            entry = self.lock.shots.get(key)
            disagrees = entry is not None and _disagrees(entry, identity, record)
            return Reason.LOCK_MISMATCH if disagrees else None
        return Reason.DOWNLOAD_AGAIN if self._downloadable(identity) else None

    def best_frame(self, identity: str, pick: int) -> int | None:
        """Which frame `frame: best` chose in a shot identity's take, once it is made."""
        if self.record(identity) is None:
            return None
        return best_frame_lookup(self.store)(identity, pick)

    def _downloadable(self, identity: str) -> bool:
        if self._answered is None:
            done = read_tasks(self.store.journal_path, TaskPhase.DONE)
            self._answered = {task.identity for task in done if task.results}
        return identity in self._answered


def _disagrees(entry: LockEntry, identity: str, record: ShotRecord) -> bool:
    if entry.identity != identity:
        return False  # another request now: the plan says why it changed
    if not 1 <= entry.pick <= len(record.takes):
        return True
    return (entry.task_uuid != record.task_uuid
            or entry.video_uuids != tuple(t.video_uuid for t in record.takes)
            or entry.sha256 != record.takes[entry.pick - 1].sha256)


def plan_state(path: Path) -> PlanState:
    """The lock entries and the cache lookups that `plan` and `run` compile against."""
    lock_path = lock_path_for(path)
    try:
        lock = read_lock(lock_path)
    except OSError as exc:
        raise FileError.from_os(exc, f"read the lock file {lock_path}") from None
    return PlanState(lock, ObjectStore(store_root_for(path)))


def compile_with_state(path: Path, display: str, *, allow_outside: bool = False) -> Compiled:
    """The storyboard compiled against its lock and cache: what `plan` shows."""
    state = plan_state(path)
    return compile_storyboard(path, display=display, lock=state.lock.shots,
                              is_cached=state.is_cached, store_reason=state.reason,
                              best_frame=state.best_frame, allow_outside=allow_outside)
