"""Derived records: what was made from an object of the store, or found in it, in; records
under `<storyboard folder>/.storyreel/derived/`, out.

    derived/<aa>/<source sha256>.<kind>.json   one record per source object and kind of work

A derived object (a graded clip) is an ordinary object of the store, named by its own hash
(`ObjectStore.put_file`); its record says which source and which work made it, so the same
work is never done twice and the source is never altered. A derived fact (which frame of a
take is the sharpest) is a record alone. Records are written atomically and only after the
object they name, so a crash leaves at worst an unused object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .objects import ObjectStore
from .records import CacheError

__all__ = ["DerivedObject", "DerivedStore"]

DERIVED_FORMAT = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KIND = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
_DELETE_HINT = "delete the file; the work is then done again"


class DerivedObject:
    """A derived object that is in the store: its file and its record."""

    def __init__(self, path: Path, record: Mapping[str, Any]) -> None:
        self.path = path
        self.record = dict(record)

    @property
    def sha256(self) -> str:
        return str(self.record["sha256"])


class DerivedStore:
    """Derived objects and facts of one store, each filed under its source and kind."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def find(self, source: str, kind: str) -> dict[str, Any] | None:
        """The record of `kind` made from `source`, or None."""
        path = self._path(source, kind)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CacheError(f"{path}: not a record ({exc})", hint=_DELETE_HINT) from None
        if not isinstance(data, dict) or data.get("source") != source or data.get("kind") != kind:
            raise CacheError(f"{path}: holds another record", hint=_DELETE_HINT)
        return data

    def record(self, source: str, kind: str, facts: Mapping[str, Any]) -> None:
        data = {"format": DERIVED_FORMAT, **facts, "source": source, "kind": kind}
        path = self._path(source, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        write_atomic(path, text.encode())

    def find_object(self, source: str, kind: str) -> DerivedObject | None:
        """The object of `kind` made from `source`, if its record and its file are there."""
        data = self.find(source, kind)
        if data is None:
            return None
        try:
            sha, ext, size = str(data["sha256"]), str(data["ext"]), int(data["size"])
            path = self.store.path_for(sha, ext)
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheError(f"{self._path(source, kind)}: unexpected record ({exc!r})",
                             hint=_DELETE_HINT) from None
        if not path.is_file() or path.stat().st_size != size:
            return None
        return DerivedObject(path, data)

    def put_object(self, source: str, kind: str, file: Path, ext: str,
                   facts: Mapping[str, Any]) -> DerivedObject:
        """Store `file` (a temp file of the store is moved in) and record it."""
        stored = self.store.put_file(file, ext)
        record = {**facts, "sha256": stored.sha256, "ext": ext, "size": stored.size}
        self.record(source, kind, record)
        return DerivedObject(stored.path, {**record, "source": source, "kind": kind})

    def _path(self, source: str, kind: str) -> Path:
        if not _SHA256.fullmatch(source):
            raise ValueError(f"not a lowercase hex sha256: {source!r}")
        if not _KIND.fullmatch(kind):
            raise ValueError(f"not a kind of derived record: {kind!r}")
        return self.store.derived_path(source, kind)
