"""The store stage: results in, files out.

Input: the scheduler's tasks and results, downloaded takes and frames, the run's lock entries.
Output: the content-addressed cache and the task journal under `<storyboard folder>/.storyreel/`,
and `<storyboard>.lock` next to the storyboard. Every file is replaced atomically.
"""

from .atomic import atomic_path, atomic_writer, fsync_dir, remove_partials, write_atomic
from .journal import (
    OPEN_PHASES,
    Journal,
    JournalError,
    JournalTask,
    TaskPhase,
    read_tasks,
)
from .layout import Layout, real_storyboard, store_root_for
from .lock import (
    HEADER,
    LOCK_VERSION,
    Lock,
    LockEntry,
    Spot,
    diff_locks,
    lock_path_for,
    render_lock,
    write_lock,
)
from .lock_reader import LockFileError, read_lock
from .objects import ObjectStore, StoredObject, sha256_file
from .records import CacheError, ShotRecord, Take

__all__ = [
    "HEADER",
    "LOCK_VERSION",
    "OPEN_PHASES",
    "CacheError",
    "Journal",
    "JournalError",
    "JournalTask",
    "Layout",
    "Lock",
    "LockEntry",
    "LockFileError",
    "ObjectStore",
    "ShotRecord",
    "Spot",
    "StoredObject",
    "TaskPhase",
    "Take",
    "atomic_path",
    "atomic_writer",
    "diff_locks",
    "lock_path_for",
    "fsync_dir",
    "read_lock",
    "read_tasks",
    "real_storyboard",
    "remove_partials",
    "render_lock",
    "sha256_file",
    "store_root_for",
    "write_atomic",
    "write_lock",
]
