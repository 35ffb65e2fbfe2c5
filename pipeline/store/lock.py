"""The lock file: what each shot was rendered from, and what it produced.

Input: a `Lock` the run builds from its results, or the text of `<storyboard>.lock`.
Output: `<storyboard>.lock` next to the storyboard, deterministic YAML meant for git: the same
content always gives the same bytes, so a run that changes nothing leaves the file alone and
a diff shows exactly which shots moved. `diff_locks` says in words what a run would change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import ExitCode, Location, StoryreelError
from .atomic import write_atomic

LOCK_VERSION = 1
HEADER = "# storyreel lock file: generated, commit it with the storyboard\n"

_CONFLICT = re.compile(r"^(<{7}|={7}|>{7}|\|{7})( |$)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REGENERATE = "the lock file is generated: delete the broken shot entry and run again to rewrite it"
_NEWER = "it was written by a newer storyreel: upgrade, or delete the lock file to start afresh"
_CONFLICT_HINT = (
    "keep one side of each conflict, or delete the conflicting shots: the next run renders "
    "them (or finds them in the cache) and writes them back"
)

JsonPath = tuple[str | int, ...]
_KIND_NAMES = {int: "an integer", str: "a string", list: "a list"}
# libyaml when PyYAML has it: the same documents and marks, and the same text out, about five
# times faster; a no-op run reads and writes the lock of every shot.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class LockFileError(StoryreelError):
    """The lock file cannot be read: a syntax error, a merge conflict, an unknown version."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class LockEntry:
    """One shot key's facts; `sha256` and `probe` are the picked take's."""

    identity: str
    seed: int
    task_uuid: str
    video_uuids: tuple[str, ...]
    cost: float | None
    pick: int
    sha256: str
    probe: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        data = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        # 3 and 3.0 are the same cost; one spelling keeps equal locks byte-identical.
        data["cost"] = None if self.cost is None else float(self.cost)
        return data


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
    """`lighthouse.yaml` -> `lighthouse.lock`, next to it."""
    return Path(storyboard).with_suffix(".lock")


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


# Reading


class _Invalid(Exception):
    """A lock file value of the wrong shape, at a path into the document."""

    def __init__(self, path: JsonPath, message: str, hint: str = _REGENERATE) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint


def read_lock(path: Path) -> Lock:
    """The lock at `path`; an empty `Lock` if there is none yet."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lock()
    except UnicodeDecodeError as exc:
        raise LockFileError(f"{path}: lock file is not UTF-8 text ({exc.reason})") from None
    _refuse_conflicts(text, path)
    node, data = _parse_yaml(text, path)
    if node is None:
        return Lock()
    _refuse_duplicates(node, path)
    try:
        return _lock_from(data)
    except _Invalid as exc:
        where = _locate(node, exc.path, path)
        raise LockFileError(exc.message, location=where, hint=exc.hint) from None


def _refuse_conflicts(text: str, path: Path) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if _CONFLICT.match(line):
            where = Location(str(path), number, 1)
            message = "merge conflict marker in the lock file"
            raise LockFileError(message, location=where, hint=_CONFLICT_HINT)


def _parse_yaml(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(str(path), mark.line + 1, mark.column + 1) if mark else None
        message = f"lock file is not valid YAML: {exc.problem or exc.context}"
        raise LockFileError(message, location=where, hint=_REGENERATE) from None
    except yaml.YAMLError as exc:
        raise LockFileError(f"{path}: lock file is not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _refuse_duplicates(node: yaml.Node, path: Path) -> None:
    """A hand-resolved merge can leave a shot twice; YAML would silently keep the last one."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(item, path)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key, value in node.value:
        _refuse_duplicates(value, path)
        if not isinstance(key, yaml.ScalarNode):
            continue
        if key.value in seen:
            mark = key.start_mark
            where = Location(str(path), mark.line + 1, mark.column + 1)
            raise LockFileError(f"{key.value!r} appears twice", location=where, hint=_REGENERATE)
        seen.add(key.value)


def _locate(root: yaml.Node, at: JsonPath, path: Path) -> Location:
    """The line of the deepest node on `at` that exists, to point at the offending value."""
    node = root
    for step in at:
        child = _child(node, step)
        if child is None:
            break
        node = child
    return Location(str(path), node.start_mark.line + 1, node.start_mark.column + 1)


def _child(node: yaml.Node, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if k.value == str(step)), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        child: yaml.Node = node.value[step]
        return child
    return None


def _lock_from(data: Any) -> Lock:
    top = _mapping(data, (), "the lock file")
    _refuse_unknown(top, {"version", "shots"}, (), "the lock file")
    version = _typed(top, "version", int, (), "the lock file")
    if version != LOCK_VERSION:
        message = f"lock file version {version} is not one this storyreel reads ({LOCK_VERSION})"
        raise _Invalid(("version",), message, _NEWER)
    shots = _mapping(top.get("shots", {}), ("shots",), "shots")
    return Lock(version, {_key(key): _entry_from(value, key) for key, value in shots.items()})


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise _Invalid(("shots", str(key)), f"shot key {key!r} must be a string")
    return key


def _entry_from(value: Any, key: str) -> LockEntry:
    at: JsonPath = ("shots", key)
    what = f"shot {key!r}"
    entry = _mapping(value, at, what)
    _refuse_unknown(entry, {f.name for f in fields(LockEntry)}, at, what)
    uuids = _typed(entry, "video_uuids", list, at, what)
    result = LockEntry(
        identity=_typed(entry, "identity", str, at, what),
        seed=_typed(entry, "seed", int, at, what),
        task_uuid=_typed(entry, "task_uuid", str, at, what),
        video_uuids=tuple(_strings(uuids, (*at, "video_uuids"), what)),
        cost=_cost(entry, at, what),
        pick=_typed(entry, "pick", int, at, what),
        sha256=_typed(entry, "sha256", str, at, what),
        probe=dict(_mapping(entry.get("probe", {}), (*at, "probe"), what)),
        inputs=_string_map(entry.get("inputs", {}), (*at, "inputs"), what),
    )
    _check_entry(result, at, what)
    return result


def _check_entry(entry: LockEntry, at: JsonPath, what: str) -> None:
    if not _SHA256.fullmatch(entry.sha256):
        raise _Invalid((*at, "sha256"), f"{what}: sha256 is not a lowercase hex sha256")
    if entry.pick < 1 or (entry.video_uuids and entry.pick > len(entry.video_uuids)):
        message = f"{what}: pick {entry.pick} is not one of its {len(entry.video_uuids)} takes"
        raise _Invalid((*at, "pick"), message)


def _mapping(value: Any, at: JsonPath, what: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _Invalid(at, f"{what}: expected a mapping, found {type(value).__name__}")
    return value


def _refuse_unknown(data: Mapping[Any, Any], known: set[str], at: JsonPath, what: str) -> None:
    for name in data:
        if name not in known:
            raise _Invalid((*at, str(name)), f"{what}: unknown field {name!r}")


def _typed(data: Mapping[str, Any], name: str, kind: type[Any], at: JsonPath, what: str) -> Any:
    if name not in data:
        raise _Invalid(at, f"{what}: missing field {name!r}")
    value = data[name]
    # YAML booleans are ints to Python; a seed of `true` is still wrong.
    if not isinstance(value, kind) or isinstance(value, bool):
        message = f"{what}: {name} must be {_KIND_NAMES[kind]}, found {type(value).__name__}"
        raise _Invalid((*at, name), message)
    return value


def _cost(data: Mapping[str, Any], at: JsonPath, what: str) -> float | None:
    value = data.get("cost")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid((*at, "cost"), f"{what}: cost must be a number or null")
    return float(value)


def _strings(values: list[Any], at: JsonPath, what: str) -> list[str]:
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise _Invalid((*at, index), f"{what}: expected a string, found {value!r}")
    return values


def _string_map(value: Any, at: JsonPath, what: str) -> dict[str, str]:
    data = _mapping(value, at, what)
    for key, item in data.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise _Invalid((*at, str(key)), f"{what}: inputs must map names to sha256 strings")
    return data


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
    for f in fields(LockEntry):
        old, new = getattr(before, f.name), getattr(after, f.name)
        if old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changes.append(f"{f.name} changed ({'; '.join(_mapping_changes(old, new))})")
        else:
            changes.append(f"{f.name} changed ({_short(old)} -> {_short(new)})")
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
