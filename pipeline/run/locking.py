"""The lock a run leaves: the lock it started from + what its shots produced -> the new lock;
and, for `--frozen`, every difference between the lock and the store.

An entry is written for every shot key with a finished record: the identity, seed, task,
every take's videoUUID, the picked take's sha256 and probe, and the images it was sent.
Shot keys sharing one request share its task and its cost: the first in plan order carries
the cost, the others name it in `paid_by`, so the lock's costs add up to what was paid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from itertools import groupby

from ..errors import ExitCode, StoryreelError
from ..language.compile import Compiled
from ..language.plan import PlannedShot
from ..store import Lock, LockEntry, ObjectStore, ShotRecord, diff_locks


def updated_lock(lock: Lock, shots: Sequence[PlannedShot], records: Mapping[str, ShotRecord],
                 inputs: Mapping[str, Mapping[str, str]], *, full: bool) -> Lock:
    """The lock with an entry per shot key whose identity has a record (`records` and
    `inputs` by identity); keys gone from a full run are dropped, others kept."""
    new = lock.without(lock.shots) if full else lock
    for shot in shots:
        record = records.get(shot.identity)
        old = lock.shots.get(shot.key)
        entry = _entry(shot, record, inputs.get(shot.identity), old) if record else None
        if entry is not None:
            new = new.with_entry(shot.key, entry)
        elif old is not None:
            new = new.with_entry(shot.key, old)
    return with_payers(new, [shot.key for shot in shots])


def _entry(shot: PlannedShot, record: ShotRecord, inputs: Mapping[str, str] | None,
           old: LockEntry | None) -> LockEntry | None:
    if not 1 <= shot.pick <= len(record.takes):
        return None
    take = record.takes[shot.pick - 1]
    if not inputs and old is not None and old.identity == shot.identity:
        inputs = old.inputs
    return LockEntry(identity=shot.identity, seed=shot.seed, task_uuid=record.task_uuid,
                     video_uuids=tuple(t.video_uuid for t in record.takes), cost=record.cost,
                     pick=shot.pick, sha256=take.sha256, probe=dict(take.probe),
                     inputs=dict(sorted((inputs or {}).items())))


def with_payers(lock: Lock, order: Iterable[str]) -> Lock:
    """Entries of one task: the first key in `order` (then by name) carries the cost."""
    rank = {key: i for i, key in enumerate(order)}

    def task_of(key: str) -> tuple[str, str]:
        return lock.shots[key].identity, lock.shots[key].task_uuid

    keys = sorted(lock.shots, key=lambda k: (task_of(k), rank.get(k, len(rank)), k))
    shots = dict(lock.shots)
    for _, group in groupby(keys, key=task_of):
        payer, *others = list(group)
        cost = next((shots[k].cost for k in (payer, *others) if shots[k].cost is not None),
                    None)
        shots[payer] = replace(shots[payer], cost=cost, paid_by=None)
        for key in others:
            shots[key] = replace(shots[key], cost=None, paid_by=payer)
    return replace(lock, shots={key: shots[key] for key in lock.shots})


def frozen_differences(compiled: Compiled, lock: Lock, store: ObjectStore) -> list[str]:
    """Everything a run would change in the lock, or that the store says differently."""
    shots = compiled.plan.shots
    lines = [f"{s.key}: would run ({s.reason})" for s in shots if not s.cached]
    records = {s.identity: r for s in shots if (r := store.find_shot(s.identity)) is not None}
    for shot in shots:
        record = records.get(shot.identity)
        take = record.takes[shot.pick - 1] if record and shot.pick <= len(record.takes) else None
        if take is not None and not store.verify(take.sha256, take.ext):
            lines.append(f"{shot.key}: the cached take's content no longer matches its "
                         f"sha256 {take.sha256[:12]}...")
    predicted = updated_lock(lock, shots, records, {}, full=True)
    return list(dict.fromkeys(lines + diff_locks(lock, predicted)))


def check_frozen(compiled: Compiled, lock: Lock, store: ObjectStore) -> None:
    """Refuse a run that would generate anything or change the lock file, or whose lock
    and store disagree; changing nothing."""
    changes = frozen_differences(compiled, lock, store)
    if changes:
        raise StoryreelError("--frozen: the run would change the lock file, or the lock and "
                             "the cache disagree:\n  "
                             + "\n  ".join(changes),
                             hint="run without --frozen, then commit the lock file",
                             exit_code=ExitCode.FAILED)
