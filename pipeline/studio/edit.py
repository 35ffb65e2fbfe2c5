"""Edit: a shot, a key (`pick`, `seed`) and a whole number in; the storyboard file that
defines the shot, with that one value written, out.

The edit is made in the text at the node's position, never by dumping the YAML again: every
other byte (comments, blank lines, quoting, flow mappings `{...}`, line endings) stays as it
was. A value already written is replaced where it stands; a missing key is added as the
shot's last entry (a new line in a block mapping, `, key: value` in a flow mapping). Shots of
an included scene file are edited in that file. The new text is parsed again before it is
written, and must hold the same data but for that one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ExitCode, StoryboardError, StoryreelError
from ..language.load import Path_, parse_document
from ..language.model import ShotDef, Storyboard
from ..store import write_atomic

_INT = "tag:yaml.org,2002:int"
_NULL = "tag:yaml.org,2002:null"


class EditError(StoryreelError):
    """The value cannot be written safely; nothing was changed."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Edit:
    """One value written into one file: the text before and after, and the line changed."""

    file: Path
    before: str
    after: str
    line: int

    def write(self) -> None:
        write_atomic(self.file, self.after.encode("utf-8"))


def edit_shot(board: Storyboard, shot_id: str, key: str, value: int) -> Edit:
    """The edit that sets `key: value` on shot `shot_id`, in the file that defines it."""
    shot = board.shot(shot_id)
    if shot is None:
        raise EditError(f"no shot {shot_id!r} in {board.doc.file}")
    file = file_of(board, shot)
    text = file.read_bytes().decode("utf-8")
    body = _node_at(yaml.compose(text, Loader=yaml.SafeLoader), shot.path, shot, file)
    after, at = _set_value(text, body, key, value, f"shots.{shot_id}.{key}")
    _check(text, after, shot.path + (key,), value, file)
    return Edit(file, text, after, text.count("\n", 0, at) + 1)


def file_of(board: Storyboard, shot: ShotDef) -> Path:
    """The file a shot is written in: the storyboard, or the scene file it includes."""
    if shot.doc is board.doc:
        return board.path
    scenes = board.doc.data.get("scenes") or []
    included = [board.path.parent / s["include"] for s in scenes if "include" in s]
    for path, doc in zip(included, board.documents[1:], strict=False):
        if doc is shot.doc:
            return Path(path)
    raise EditError(f"shots.{shot.id}: cannot tell which file defines it")


def _node_at(root: yaml.Node | None, path: Path_, shot: ShotDef, file: Path) -> yaml.Node:
    node = root
    for step in path:
        node = _child(node, step)
        if node is None:
            raise EditError(f"{file}: shots.{shot.id} is not where it was read; the file "
                            "changed on disk", hint="reload the page and try again")
    assert node is not None
    return node


def _child(node: yaml.Node | None, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
        items: list[yaml.Node] = node.value
        return items[step] if 0 <= step < len(items) else None
    if isinstance(node, yaml.MappingNode):
        pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
        for key, value in pairs:
            if isinstance(key, yaml.ScalarNode) and key.value == str(step):
                return value
    return None


def _set_value(text: str, body: yaml.Node, key: str, value: int, label: str
               ) -> tuple[str, int]:
    """The text with the value set, and the index the change starts at."""
    written = _child(body, key) if isinstance(body, yaml.MappingNode) else None
    if written is not None:
        return _replace(text, written, value, label)
    if isinstance(body, yaml.MappingNode):
        return _append(text, body, f"{key}: {value}")
    if isinstance(body, yaml.ScalarNode) and body.tag == _NULL:
        return _fill_empty(text, body, f"{{{key}: {value}}}")
    raise EditError(f"{label}: the shot is not a mapping; edit it by hand")


def _replace(text: str, node: yaml.Node, value: int, label: str) -> tuple[str, int]:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _INT or node.style:
        shown = node.value if isinstance(node, yaml.ScalarNode) else "a collection"
        raise EditError(f"{label} is written as {shown!r}, not a plain number",
                        hint="a templated value is the storyboard's to compute; edit it by hand")
    start, end = node.start_mark.index, node.end_mark.index
    return text[:start] + str(value) + text[end:], start


def _append(text: str, body: yaml.MappingNode, entry: str) -> tuple[str, int]:
    if body.flow_style:
        if not body.value:
            at = body.start_mark.index + 1  # just inside the `{`
            return text[:at] + entry + text[at:], at
        at = _content_end(body.value[-1][1])
        return text[:at] + ", " + entry + text[at:], at
    return _append_line(text, body, entry)


def _append_line(text: str, body: yaml.MappingNode, entry: str) -> tuple[str, int]:
    """A new line after the mapping's last entry (after a comment on that line too),
    indented like its first key."""
    newline = "\r\n" if "\r\n" in text else "\n"
    end = _content_end(body.value[-1][1])
    line_start = text.rfind("\n", 0, end) + 1
    if end == line_start and end > 0:  # a block scalar ends at the start of the next line
        at = end
    else:
        found = text.find("\n", end)
        at = len(text) if found < 0 else found + 1
    prefix = newline if at == len(text) and not text.endswith("\n") else ""
    indent = " " * body.value[0][0].start_mark.column
    return text[:at] + prefix + indent + entry + newline + text[at:], at


def _content_end(node: yaml.Node) -> int:
    """Where the last character written for `node` ends. A block collection's own end mark
    lies at the next token, past any comments and blank lines that follow it; its last
    scalar or flow collection does not."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        return int(node.end_mark.index)
    items: list[Any] = node.value
    if isinstance(node, yaml.MappingNode):
        items = [part for pair in node.value for part in pair]
    return max((_content_end(item) for item in items), default=int(node.start_mark.index))


def _fill_empty(text: str, node: yaml.ScalarNode, mapping: str) -> tuple[str, int]:
    start, end = node.start_mark.index, node.end_mark.index
    if start == end:  # nothing written after the key's colon
        return text[:start] + " " + mapping + text[start:], start
    return text[:start] + mapping + text[end:], start


def _check(before: str, after: str, at: Path_, value: int, file: Path) -> None:
    """The edited text must read as the same data with `at` set to `value`."""
    try:
        old = parse_document(before, str(file)).data
        new = parse_document(after, str(file)).data
    except StoryboardError as exc:
        raise EditError(f"{file}: the edit would not parse ({exc.message}); nothing was "
                        "written") from None
    _assign(old, at, value)
    if old != new:
        raise EditError(f"{file}: the edit would change more than {'.'.join(map(str, at))}; "
                        "nothing was written", hint="edit the file by hand")


def _assign(data: Any, at: Path_, value: int) -> None:
    for step in at[:-1]:
        if isinstance(data, dict) and data.get(step) is None:
            data[step] = {}
        data = data[step]
    data[at[-1]] = value
