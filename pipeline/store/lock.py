"""The lock file: what each shot was rendered from, and what it produced.

Input: a `Lock` the run builds from its results.
Output: `<storyboard>.lock` next to the storyboard, deterministic YAML meant for git: the same
content always gives the same bytes, so a run that changes nothing leaves the file alone and
a diff shows exactly which shots moved. `diff_locks` says in words what a run would change.
Reading the file back is `lock_reader`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import Location
from .atomic import write_atomic
from .layout import real_storyboard

LOCK_VERSION = 1
HEADER = "# storyreel lock file: generated, commit it with the storyboard\n"


# libyaml when PyYAML has it: the same text out, about five times faster; a no-op run
# writes the lock of every shot.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class Spot:
    """Where a value was written in the lock file, and that line, to point at it."""

    location: Location
    source_line: str | None = None


@dataclass(frozen=True)
class LockEntry:
    """One shot key's facts; `sha256` and `probe` are the picked take's.

    Shot keys that share a request share its task: the first of them carries the `cost`,
    the others name it in `paid_by` and carry none, so the costs add up to what was paid.
    """

    identity: str
    seed: int
    task_uuid: str
    video_uuids: tuple[str, ...]
    cost: float | None
    pick: int
    sha256: str
    probe: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    paid_by: str | None = None
    # Where each field stands in the lock file it was read from ('' is the entry); not data.
    spots: Mapping[str, Spot] = field(default_factory=dict, compare=False, repr=False)

    def to_data(self) -> dict[str, Any]:
        data = {name: _plain(getattr(self, name)) for name in DATA_FIELDS}
        # 3 and 3.0 are the same cost; one spelling keeps equal locks byte-identical.
        data["cost"] = None if self.cost is None else float(self.cost)
        if self.paid_by is None:
            del data["paid_by"]  # most shots pay for themselves; their entries stay short
        return data


DATA_FIELDS = tuple(f.name for f in fields(LockEntry) if f.name != "spots")


@dataclass(frozen=True)
class Lock:
    version: int = LOCK_VERSION
    shots: Mapping[str, LockEntry] = field(default_factory=dict)

    def with_entry(self, key: str, entry: LockEntry) -> Lock:
        return replace(self, shots={**self.shots, key: entry})

    def without(self, keys: Iterable[str]) -> Lock:
        drop = set(keys)
        return replace(self, shots={k: v for k, v in self.shots.items() if k not in drop})


def lock_path_for(storyboard: Path) -> Path:
    """`lighthouse.yaml` -> `lighthouse.lock`, next to it (next to the real file, when the
    storyboard is a symlink)."""
    return real_storyboard(storyboard).with_suffix(".lock")


# Writing


def render_lock(lock: Lock) -> str:
    """The lock file's text; the version goes first, everything else in sorted order."""
    shots = {key: entry.to_data() for key, entry in lock.shots.items()}
    body = yaml.dump(
        {"shots": shots},
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return f"{HEADER}version: {lock.version}\n{body}"


def write_lock(path: Path, lock: Lock) -> bool:
    """Write `lock` to `path` atomically; return False, writing nothing, if it is unchanged."""
    data = render_lock(lock).encode("utf-8")
    try:
        if Path(path).read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(Path(path), data)
    return True


def _plain(value: Any) -> Any:
    """Mappings to dicts and tuples to lists: the YAML safe dumper knows only those."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# Comparing


def diff_locks(old: Lock, new: Lock) -> list[str]:
    """What writing `new` over `old` would change, one line per shot key and field."""
    lines = [f"lock version: {old.version} -> {new.version}"] if old.version != new.version else []
    for key in sorted(old.shots.keys() | new.shots.keys()):
        before, after = old.shots.get(key), new.shots.get(key)
        if before is None:
            lines.append(f"{key}: added")
        elif after is None:
            lines.append(f"{key}: removed")
        else:
            lines.extend(f"{key}: {change}" for change in _changes(before, after))
    return lines


def _changes(before: LockEntry, after: LockEntry) -> list[str]:
    changes = []
    for name in DATA_FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changes.append(f"{name} changed ({'; '.join(_mapping_changes(old, new))})")
        else:
            changes.append(f"{name} changed ({_short(old)} -> {_short(new)})")
    return changes


def _mapping_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = []
    for name in sorted(old.keys() | new.keys(), key=str):
        if name not in new:
            lines.append(f"{name} removed")
        elif name not in old:
            lines.append(f"{name} added")
        elif old[name] != new[name]:
            lines.append(f"{name}: {_short(old[name])} -> {_short(new[name])}")
    return lines


def _short(value: Any) -> str:
    """Values as a reader scans them: hashes and UUIDs cut to a recognisable prefix."""
    if value is None:
        return "none"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_short(item) for item in value) + "]"
    text = str(value)
    return text if len(text) <= 16 else text[:12] + "..."
