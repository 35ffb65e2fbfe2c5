"""Activity: what the runs on a storyboard folder are doing, read from outside them.

Input: a store (`<storyboard folder>/.storyreel/`), read-only.
Output: a `Stamp` that changes whenever a run moves (the journal, the shot records, the run
lock), the latest task of each shot identity in the journal, and whether a live process
holds the folder. The journal is read with its read-only reader (SQLite's own URI flag): a watcher
never creates, migrates or locks it, so a run in another process is never held up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .folder import read_holder
from .journal import JournalTask, TaskPhase, read_tasks
from .objects import ObjectStore

Stamp = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class TaskActivity:
    """The latest task the journal holds for a shot identity."""

    identity: str
    shot_key: str
    state: TaskPhase
    error: str | None


def stamp_of(paths: Iterable[Path]) -> Stamp:
    """(name, inode, size, mtime in ns) of each path that exists: equal stamps, nothing
    moved. The inode tells a file replaced by a rename within one clock tick."""
    out = []
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        out.append((str(path), info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(out)


def store_stamp(store: ObjectStore) -> Stamp:
    """Changes when a run writes a task, finishes a shot, takes or gives back the folder.

    An empty write-ahead log is left out: SQLite makes one for a reader of a WAL journal,
    and a look at the journal must not read as a change of it."""
    journal = store.journal_path
    wal = journal.with_name(journal.name + "-wal")
    stamp = stamp_of([journal, wal, store.shots_dir, store.run_lock_path, store.films_dir])
    return tuple(entry for entry in stamp if entry[0] != str(wal) or entry[2] > 0)


def latest_tasks(store: ObjectStore) -> dict[str, TaskActivity]:
    """Identity -> its latest task in the journal; empty when there is no journal yet (or a
    run is creating it). Read through the journal's read-only reader: nothing is written."""
    return {task.identity: _activity(task) for task in read_tasks(store.journal_path)}


def _activity(task: JournalTask) -> TaskActivity:
    return TaskActivity(task.identity, task.shot_key, task.state, _error_text(task.error))


def _error_text(error: Mapping[str, object] | None) -> str | None:
    if not error:
        return None
    code, message = error.get("code"), error.get("message")
    return f"{message} ({code})" if code and message else str(message or code)


def run_holder(store: ObjectStore) -> int | None:
    """The pid of a live process that holds the folder for a run, if any.

    The run writes its pid into `run.lock` when it takes the folder; the file stays after it
    ends, so the pid is checked for life. Testing the lock itself would take it, however
    briefly, and a run starting that instant would be refused.
    """
    try:
        holder = read_holder(store.run_lock_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if holder is None:
        return None
    pid = holder[0]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
