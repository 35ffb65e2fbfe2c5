"""Load stage: YAML text -> `Document` (plain data + the file:line:col of every node).

PyYAML composes the node tree (with the C parser when present); this module builds plain
Python values from it and records where each value and each mapping key was written, so every
later stage can point at the exact place. YAML 1.1 traps that silently change meaning
(`no` -> false, unquoted dates, sexagesimal `1:30` -> 90, duplicate keys) become problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from ..errors import Location, Problem, StoryboardError

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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoryboardError([Problem(f"file not found: {name}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoryboardError([Problem(f"cannot read {name}: {exc}")]) from None
    return parse_document(text, name)


def parse_document(text: str, file: str) -> Document:
    """Parse YAML text into a Document; problems are collected, then raised together."""
    doc = Document(file=file, data=None, lines=text.splitlines())
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise StoryboardError([_syntax_problem(doc, exc)]) from None
    except yaml.YAMLError as exc:
        raise StoryboardError([Problem(f"invalid YAML: {exc}", Location(file, 1, 1))]) from None
    builder = _Builder(doc)
    doc.data = builder.build(root, ()) if root is not None else None
    if builder.problems:
        raise StoryboardError(builder.problems)
    return doc


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
    """Builds plain values from composed nodes, recording positions and YAML traps."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.doc.values[path] = _loc(self.doc, node)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if node.tag not in (_MAP, _SEQ):
            self.unsupported_tag(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)
        return self.mapping(node, path)

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
                merged.update(self.mapping(source, path))
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
