"""Reading the lock file: `<storyboard>.lock` text in, a `Lock` out, or every problem in it.

The lock is input like the storyboard, and is read as carefully: each problem is reported
at its `file:line:col` with the line and a caret, all of them at once (one per shot entry),
and exits 2. Nothing in it can exhaust the machine: text that is not UTF-8 or holds control
characters is refused at its position, nesting is bounded, an alias is never expanded (each
value is visited once), and every field has a plain shape (`probe` holds flat values only),
so no later write or comparison can expand one either. A shot's entry remembers where each
of its fields was written (`LockEntry.spots`), so that the plan can point at the lock's line
when a value is wrong for the shot's model (a seed out of range).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import Location, Problem, StoryboardError, os_reason, text_position, undecodable
from .lock import DATA_FIELDS, LOCK_VERSION, Lock, LockEntry, Spot

JsonPath = tuple[str | int, ...]

_CONFLICT = re.compile(r"^(<{7}|={7}|>{7}|\|{7})( |$)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REGENERATE = "the lock file is generated: delete the broken shot entry and run again to rewrite it"
_NEWER = "it was written by a newer storyreel: upgrade, or delete the lock file to start afresh"
_CONFLICT_HINT = (
    "keep one side of each conflict, or delete the conflicting shots: the next run renders "
    "them (or finds them in the cache) and writes them back"
)
_KIND_NAMES = {int: "an integer", str: "a string", list: "a list"}
_SCALARS = (str, int, float, bool, type(None))
MAX_DEPTH = 20
# libyaml when PyYAML has it: the same documents and marks, about five times faster; a no-op
# run reads the lock of every shot.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LockFileError(StoryboardError):
    """The lock file cannot be read: every problem in it, located (exit 2)."""


class _Text:
    """The lock file's name and lines, to locate a problem and show its line."""

    def __init__(self, path: Path, text: str) -> None:
        self.file = str(path)
        self.lines = text.splitlines()

    def problem(self, message: str, line: int, col: int, hint: str | None = _REGENERATE
                ) -> Problem:
        loc = Location(self.file, line, col)
        return Problem(message, loc, hint, self.line(line))

    def spot(self, node: yaml.Node) -> Spot:
        mark = node.start_mark
        return Spot(Location(self.file, mark.line + 1, mark.column + 1), self.line(mark.line + 1))

    def line(self, number: int) -> str | None:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else None


class _Invalid(Exception):
    """A lock file value of the wrong shape, at a path into the document."""

    def __init__(self, path: JsonPath, message: str, hint: str = _REGENERATE, *,
                 key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint
        self.key = key  # point at the key rather than its value


def read_lock(path: Path) -> Lock:
    """The lock at `path`; an empty `Lock` if there is none yet."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Lock()
    except OSError as exc:
        raise LockFileError([Problem(f"cannot read the lock file {path}: {os_reason(exc)}",
                                     hint="the lock file sits next to the storyboard; move "
                                          "whatever is in its place")]) from None
    text = _decode(data, path)
    lines = _Text(path, text)
    _refuse_conflicts(lines)
    node = _compose(text, lines)
    if node is None:
        return Lock()
    _check_nodes(node, lines)
    return _lock_from(_construct(text), node, lines)


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col, source = undecodable(data, exc)
        message = f"lock file is not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be read"
        problem = Problem(message, Location(str(path), line, col), _REGENERATE, source)
        raise LockFileError([problem]) from None


def _refuse_conflicts(lines: _Text) -> None:
    found = [lines.problem("merge conflict marker in the lock file", number, 1, _CONFLICT_HINT)
             for number, line in enumerate(lines.lines, start=1) if _CONFLICT.match(line)]
    if found:
        raise LockFileError(found)


def _compose(text: str, lines: _Text) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"lock file is not valid YAML: {exc.problem or exc.context}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise LockFileError([lines.problem(message, line, col)]) from None
    except yaml.reader.ReaderError as exc:
        index = exc.position
        if _Loader is not yaml.SafeLoader:  # libyaml counts bytes of the UTF-8 text
            index = len(text.encode("utf-8")[:exc.position].decode("utf-8", errors="ignore"))
        char = ord(text[index]) if index < len(text) else 0
        message = f"lock file is not valid YAML: character U+{char:04X} is not allowed"
        line, col = text_position(text, index)
        raise LockFileError([lines.problem(message, line, col)]) from None
    except yaml.YAMLError as exc:
        raise LockFileError([lines.problem(f"lock file is not valid YAML: {exc}", 1, 1)]
                            ) from None


def _construct(text: str) -> Any:
    """The plain values; only after `_check_nodes`, so no alias is met twice on the way."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, lines: _Text) -> None:
    """Refuse repeated keys (a hand-resolved merge can leave a shot twice; YAML would keep
    the last silently), values nested deeper than a lock ever is, and a value that contains
    itself. Each node is visited once, however many aliases name it."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen or isinstance(node, yaml.ScalarNode):
            continue
        seen.add(id(node))
        where = lines.spot(node).location
        if depth > MAX_DEPTH:
            raise LockFileError([lines.problem(f"values nest more than {MAX_DEPTH} deep",
                                               where.line, where.col)])
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)
            continue
        keys: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in keys:
                at = lines.spot(key).location
                raise LockFileError([lines.problem(f"{key.value!r} appears twice", at.line,
                                                   at.col)])
            keys.add(key.value if isinstance(key, yaml.ScalarNode) else "")
            stack.append((value, depth + 1))


def _locate(root: yaml.Node, at: JsonPath, lines: _Text, key: bool = False) -> Location:
    """The deepest node on `at` that exists, to point at the offending value (or its key);
    an alias's value stands where its anchor is, so for one the key naming it is shown."""
    node = root
    for i, step in enumerate(at):
        child = _child(node, step, key and i == len(at) - 1)
        if child is None:
            break
        node = child
    return lines.spot(node).location


def _child(node: yaml.Node, step: str | int, key: bool = False) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for name, value in node.value:
            if name.value == str(step):
                aliased = value.start_mark.index < name.start_mark.index
                result: yaml.Node = name if key or aliased else value
                return result
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        child: yaml.Node = node.value[step]
        return child
    return None


def _lock_from(data: Any, root: yaml.Node, lines: _Text) -> Lock:
    """The lock, or every problem: the file's own, else the first of each shot entry."""
    problems: list[Problem] = []

    def report(exc: _Invalid) -> None:
        where = _locate(root, exc.path, lines, exc.key)
        problems.append(lines.problem(exc.message, where.line, where.col, exc.hint))

    try:
        shots = _top(data)
    except _Invalid as exc:
        report(exc)
        raise LockFileError(problems) from None
    entries: dict[str, LockEntry] = {}
    for key, value in shots.items():
        try:
            entries[_key(key)] = _entry_from(value, key, _entry_node(root, key), lines)
        except _Invalid as exc:
            report(exc)
    if problems:
        raise LockFileError(problems)
    return Lock(LOCK_VERSION, entries)


def _top(data: Any) -> dict[Any, Any]:
    top = _mapping(data, (), "the lock file")
    _refuse_unknown(top, {"version", "shots"}, (), "the lock file")
    version = _typed(top, "version", int, (), "the lock file")
    if version != LOCK_VERSION:
        message = f"lock file version {version} is not one this storyreel reads ({LOCK_VERSION})"
        raise _Invalid(("version",), message, _NEWER)
    return _mapping(top.get("shots", {}), ("shots",), "shots")


def _entry_node(root: yaml.Node, key: Any) -> yaml.Node | None:
    shots = _child(root, "shots")
    return _child(shots, str(key)) if shots is not None else None


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise _Invalid(("shots", str(key)), f"shot key {key!r} must be a string")
    return key


def _entry_from(value: Any, key: str, node: yaml.Node | None, lines: _Text) -> LockEntry:
    at: JsonPath = ("shots", key)
    what = f"shot {key!r}"
    entry = _mapping(value, at, what)
    _refuse_unknown(entry, set(DATA_FIELDS), at, what)
    uuids = _typed(entry, "video_uuids", list, at, what)
    result = LockEntry(
        identity=_typed(entry, "identity", str, at, what),
        seed=_typed(entry, "seed", int, at, what),
        task_uuid=_typed(entry, "task_uuid", str, at, what),
        video_uuids=tuple(_strings(uuids, (*at, "video_uuids"), what)),
        cost=_cost(entry, at, what),
        pick=_typed(entry, "pick", int, at, what),
        sha256=_typed(entry, "sha256", str, at, what),
        probe=_flat_map(entry.get("probe", {}), (*at, "probe"), what),
        inputs=_string_map(entry.get("inputs", {}), (*at, "inputs"), what),
        paid_by=_optional_string(entry, "paid_by", at, what),
        spots=_spots(node, lines),
    )
    _check_entry(result, at, what)
    return result


def _spots(node: yaml.Node | None, lines: _Text) -> dict[str, Spot]:
    """Where each field of an entry was written; '' is the entry itself."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    spots = {"": lines.spot(node)}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode):
            aliased = value.start_mark.index < key.start_mark.index
            spots[str(key.value)] = lines.spot(key if aliased else value)
    return spots


def _check_entry(entry: LockEntry, at: JsonPath, what: str) -> None:
    if not _SHA256.fullmatch(entry.sha256):
        raise _Invalid((*at, "sha256"), f"{what}: sha256 is not a lowercase hex sha256")
    if entry.pick < 1 or (entry.video_uuids and entry.pick > len(entry.video_uuids)):
        message = f"{what}: pick {entry.pick} is not one of its {len(entry.video_uuids)} takes"
        raise _Invalid((*at, "pick"), message)
    if entry.cost is not None and entry.cost < 0:
        raise _Invalid((*at, "cost"), f"{what}: cost {entry.cost:g} is negative")


def _mapping(value: Any, at: JsonPath, what: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _Invalid(at, f"{what}: expected a mapping, found {_kind(value)}")
    return value


def _refuse_unknown(data: Mapping[Any, Any], known: set[str], at: JsonPath, what: str) -> None:
    for name in data:
        if name not in known:
            raise _Invalid((*at, str(name)), f"{what}: unknown field {name!r}", key=True)


def _typed(data: Mapping[str, Any], name: str, kind: type[Any], at: JsonPath, what: str) -> Any:
    if name not in data:
        raise _Invalid(at, f"{what}: missing field {name!r}")
    value = data[name]
    # YAML booleans are ints to Python; a seed of `true` is still wrong.
    if not isinstance(value, kind) or isinstance(value, bool):
        message = f"{what}: {name} must be {_KIND_NAMES[kind]}, found {_kind(value)}"
        raise _Invalid((*at, name), message)
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _cost(data: Mapping[str, Any], at: JsonPath, what: str) -> float | None:
    value = data.get("cost")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid((*at, "cost"), f"{what}: cost must be a number or null")
    return float(value)


def _optional_string(data: Mapping[str, Any], name: str, at: JsonPath, what: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _Invalid((*at, name), f"{what}: {name} must be a string, found {_kind(value)}")
    return value


def _strings(values: list[Any], at: JsonPath, what: str) -> list[str]:
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise _Invalid((*at, index), f"{what}: expected a string, found {_kind(value)}")
    return values


def _string_map(value: Any, at: JsonPath, what: str) -> dict[str, str]:
    data = _mapping(value, at, f"{what}: inputs")
    for key, item in data.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise _Invalid((*at, str(key)), f"{what}: inputs must map names to sha256 strings")
    return data


def _flat_map(value: Any, at: JsonPath, what: str) -> dict[str, Any]:
    """The probe: names to plain values (text, numbers, booleans), as the run records them."""
    data = _mapping(value, at, f"{what}: probe")
    for key, item in data.items():
        if not isinstance(key, str) or not isinstance(item, _SCALARS):
            message = f"{what}: probe values are plain text or numbers, found {_kind(item)}"
            raise _Invalid((*at, str(key)), message)
    return dict(data)
