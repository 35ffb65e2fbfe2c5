"""Load stage: YAML text -> `Document` (plain data + the file:line:col of every node).

PyYAML composes the node tree (with the C parser when present); this module builds plain
Python values from it and records where each value and each mapping key was written, so every
later stage can point at the exact place. YAML 1.1 traps that silently change meaning
(`no` -> false, unquoted dates, sexagesimal `1:30` -> 90, duplicate keys) become problems.

No file can exhaust the machine: text that is not UTF-8 or holds control characters is a
problem at its line and column; aliases may expand to at most `ALIAS_BUDGET` values in all
(a "billion laughs" file is refused at the alias that passes it, having built no more than
that), and values nest at most `MAX_DEPTH` deep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from ..errors import Location, Problem, StoryboardError, text_position, undecodable

Path_ = tuple[str | int, ...]

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_TRUE_WORDS = {"true", "false"}
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")
_LEGACY_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")
_CONSTRUCTOR = SafeConstructor()
ALIAS_BUDGET = 50_000  # values built through aliases, per file
MAX_DEPTH = 50  # nested mappings and lists
_ALIAS_HINT = ("an alias (*name) copies everything its anchor (&name) holds, and aliases "
               "inside anchors multiply; write the values out, use defaults:, or fewer aliases")


class _Refused(Exception):
    """Building stops: the file asks for more than any storyboard needs."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class Document:
    """One YAML file: its data and where every value (and key) stands in it."""

    file: str
    data: Any
    lines: list[str]
    values: dict[Path_, Location] = field(default_factory=dict)
    keys: dict[Path_, Location] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> Location:
        """The location of `path`, or of its closest written ancestor."""
        table = self.keys if key else self.values
        loc = table.get(path) or self.values.get(path)
        if loc is not None:
            return loc
        # Not written (a missing field): point at the key of the closest written ancestor,
        # the mapping it is missing from, rather than at that mapping's first entry.
        for n in range(len(path) - 1, -1, -1):
            loc = self.keys.get(path[:n]) or self.values.get(path[:n])
            if loc is not None:
                return loc
        return Location(self.file, 1, 1)

    def source_line(self, loc: Location) -> str | None:
        return self.lines[loc.line - 1] if 0 < loc.line <= len(self.lines) else None

    def problem(self, path: Path_, message: str, *, hint: str | None = None,
                key: bool = False, warning: bool = False) -> Problem:
        loc = self.where(path, key=key)
        return Problem(message, loc, hint, self.source_line(loc), warning)


def load_document(path: Path, display: str | None = None) -> Document:
    """Read and parse one YAML file; raise StoryboardError listing every problem found."""
    name = display or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StoryboardError([Problem(f"file not found: {name}")]) from None
    except OSError as exc:
        raise StoryboardError([Problem(f"cannot read {name}: {exc.strerror or exc}")]) from None
    return parse_document(decode_text(data, name), name)


def decode_text(data: bytes, file: str) -> str:
    """UTF-8 text, or a problem at the line and column of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col, source = undecodable(data, exc)
        utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
        hint = ("it looks like UTF-16: save it as UTF-8" if utf16 else
                "a storyboard is UTF-8 text; save it as UTF-8, or check it is the right file")
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be read"
        problem = Problem(message, Location(file, line, col), hint, source)
        raise StoryboardError([problem]) from None


def parse_document(text: str, file: str) -> Document:
    """Parse YAML text into a Document; problems are collected, then raised together."""
    doc = Document(file=file, data=None, lines=text.splitlines())
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise StoryboardError([_syntax_problem(doc, exc)]) from None
    except yaml.reader.ReaderError as exc:
        raise StoryboardError([_reader_problem(doc, text, exc)]) from None
    except yaml.YAMLError as exc:
        raise StoryboardError([Problem(f"invalid YAML: {exc}", Location(file, 1, 1))]) from None
    builder = _Builder(doc, text)
    try:
        doc.data = builder.build(root, ()) if root is not None else None
    except _Refused as exc:
        raise StoryboardError([exc.problem]) from None
    if builder.problems:
        raise StoryboardError(list(dict.fromkeys(builder.problems)))
    return doc


def _reader_problem(doc: Document, text: str, exc: yaml.reader.ReaderError) -> Problem:
    """A character YAML does not allow (NUL, escape codes...), at its line and column."""
    index = exc.position
    if _Loader is not yaml.SafeLoader:  # libyaml counts bytes of the UTF-8 text
        index = len(text.encode("utf-8")[:exc.position].decode("utf-8", errors="ignore"))
    loc = Location(doc.file, *text_position(text, index))
    char = text[index] if index < len(text) else "?"
    return Problem(f"character U+{ord(char):04X} is not allowed in YAML", loc,
                   "a storyboard is text: remove the character, or check it is the right file",
                   doc.source_line(loc))


def _syntax_problem(doc: Document, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    hint = None
    if mark is not None and mark.line >= len(doc.lines) and exc.context_mark is not None:
        # The parser ran off the end of the file: the place to fix is where the unclosed
        # quote or bracket opened, not the end of the file.
        mark = exc.context_mark
        hint = "the quote or bracket that opens here is never closed"
    loc = Location(doc.file, mark.line + 1, mark.column + 1) if mark else Location(doc.file, 1, 1)
    what = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    line = doc.source_line(loc)
    if line is not None and "\t" in line[:loc.col]:
        hint = "YAML does not allow tabs for indentation; indent with spaces"
    return Problem(f"YAML syntax error: {what}{context}", loc, hint, line)


def _loc(doc: Document, node: yaml.Node) -> Location:
    return Location(doc.file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Builds plain values from composed nodes, recording positions and YAML traps.

    An alias is the very node its anchor names, so a collection met a second time is an
    alias being expanded: every value built inside one counts against `ALIAS_BUDGET`."""

    def __init__(self, doc: Document, text: str) -> None:
        self.doc = doc
        self.text = text
        self.problems: list[Problem] = []
        self.seen: set[int] = set()  # collections built at least once
        self.open: list[int] = []  # collections being built, outermost first
        self.aliased = 0  # how many of `open` are alias expansions
        self.expanded = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.doc.values[path] = _loc(self.doc, node)
        if self.aliased:
            self.expanded += 1
            if self.expanded > ALIAS_BUDGET:
                raise _Refused(self.alias_problem(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if node.tag not in (_MAP, _SEQ):
            self.unsupported_tag(node)
        return self.collection(node, path)

    def collection(self, node: yaml.Node, path: Path_) -> Any:
        key, seen = id(node), self.seen
        alias = key in seen
        if alias and key in self.open:  # only a node met before can be one being built
            raise _Refused(self.problem_at(node, "this anchor contains an alias of itself",
                                           "a storyboard cannot hold a value inside itself"))
        if len(self.open) >= MAX_DEPTH:
            raise _Refused(self.problem_at(node, f"values nest more than {MAX_DEPTH} deep",
                                           "a storyboard needs only a few levels"))
        seen.add(key)
        self.open.append(key)
        self.aliased += alias
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self.mapping(node, path)
        finally:
            self.open.pop()
            self.aliased -= alias

    def alias_problem(self, node: yaml.Node) -> Problem:
        found = _alias_past_budget(self.text)
        loc = Location(self.doc.file, *found) if found is not None else _loc(self.doc, node)
        return Problem(f"YAML aliases here expand to more than {ALIAS_BUDGET:,} values",
                       loc, _ALIAS_HINT, self.doc.source_line(loc))

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self.merge_source(value_node, path))
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in out:
                self.problems.append(self.problem_at(
                    key_node, f"duplicate key {key!r} (the first is on line "
                    f"{self.doc.keys[path + (key,)].line})",
                    "YAML keeps only the last value of a repeated key; remove one"))
                continue
            self.doc.keys[path + (key,)] = _loc(self.doc, key_node)
            out[key] = self.build(value_node, path + (key,))
        for key, value in merged.items():
            out.setdefault(key, value)
        return out

    def merge_source(self, node: yaml.Node, path: Path_) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if isinstance(source, yaml.MappingNode):
                merged.update(self.collection(source, path))
            else:
                self.problems.append(self.problem_at(source, "a merge key (<<) needs a mapping"))
        return merged

    def key(self, node: yaml.Node, path: Path_) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node, path)
            if isinstance(value, str):
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(node.value)
        self.problems.append(self.problem_at(
            node, f"mapping keys must be strings, not {_kind(node)}",
            "quote the key" if isinstance(node, yaml.ScalarNode) else None))
        return None

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        if node.tag == _STR:
            return node.value
        trap = _trap(node)
        if trap is not None:
            self.problems.append(self.problem_at(node, trap[0], trap[1]))
            return node.value
        construct = _CONSTRUCTOR.yaml_constructors.get(node.tag)
        if construct is None:
            self.unsupported_tag(node)
            return node.value
        try:
            return construct(_CONSTRUCTOR, node)
        except (ConstructorError, ValueError) as exc:
            self.problems.append(self.problem_at(node, f"cannot read value: {exc}"))
            return node.value

    def unsupported_tag(self, node: yaml.Node) -> None:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        self.problems.append(self.problem_at(
            node, f"unsupported YAML tag {tag}", "remove the tag: a storyboard holds plain text, "
            "numbers, booleans, lists and mappings"))

    def problem_at(self, node: yaml.Node, message: str, hint: str | None = None) -> Problem:
        loc = _loc(self.doc, node)
        return Problem(message, loc, hint, self.doc.source_line(loc))


def _alias_past_budget(text: str) -> tuple[int, int] | None:
    """The line and column of the alias whose expansion takes the file past
    `ALIAS_BUDGET` values.

    Run only once the budget is spent: the events know every alias's position (the
    composed nodes do not), and each anchor's expanded size is summed as it closes."""
    sizes: dict[str, int] = {}
    open_: list[tuple[str | None, int]] = [(None, 0)]  # (anchor, values so far)
    total = 0
    for event in yaml.parse(text, Loader=_Loader):
        anchor, size = None, 1
        if isinstance(event, yaml.AliasEvent):
            size = sizes.get(str(event.anchor), 1)
            total += size
            mark = event.start_mark
            if total > ALIAS_BUDGET and mark is not None:
                return mark.line + 1, mark.column + 1
        elif isinstance(event, yaml.CollectionStartEvent):
            open_.append((event.anchor, 1))
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = open_.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor = event.anchor
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        open_[-1] = (open_[-1][0], open_[-1][1] + size)
    return None


def _trap(node: yaml.ScalarNode) -> tuple[str, str] | None:
    """A plain scalar that YAML 1.1 reads as something other than what it looks like."""
    text, tag = node.value, node.tag
    if node.style:  # quoted or block scalars are strings already
        return None
    if tag.endswith(":bool") and text.lower() not in _TRUE_WORDS:
        return (f"{text!r} is read by YAML as the boolean {text.lower() in ('yes', 'on', 'y')}",
                f"write true or false, or quote it ('{text}') to mean the text")
    if tag.endswith(":timestamp"):
        return (f"{text!r} is read by YAML as a date", f"quote it ('{text}') to mean the text")
    if tag.endswith(":int") and _SEXAGESIMAL.match(text):
        return (f"{text!r} is read by YAML 1.1 as a base-60 number",
                f"quote it ('{text}') or write the number of seconds")
    if tag.endswith(":int") and _LEGACY_OCTAL.match(text):
        return (f"{text!r} is read by YAML 1.1 as an octal number",
                f"quote it ('{text}') or drop the leading zero")
    return None


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return "a list" if isinstance(node, yaml.SequenceNode) else "that"
