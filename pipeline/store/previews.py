"""Previews: what the review studio derives from stored takes, kept so it is made once.

Input: a take's sha256 and the poster JPEG made from it; the sha256 of the two frames of a
seam and their measures.
Output: records under `<storyboard folder>/.storyreel/`, next to the objects they name:

    posters/<video sha256>.json            {"video_sha256", "jpeg_sha256"}: the take's poster
    seams/<frame sha256>-<frame sha256>.json   the measures of a handed-over frame against the
                                           frame that took it

The JPEG itself is an object (`ObjectStore.put_bytes`), so it is served like any other
object by its own hash. A record is written after its object, so a crash leaves an unused
object, never a record pointing at nothing. A record that cannot be read is treated as
missing: the preview is simply made again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .objects import ObjectStore

_SHA256 = re.compile(r"[0-9a-f]{64}")


class Previews:
    """The poster and seam records of one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    # Posters

    def find_poster(self, video_sha: str) -> str | None:
        """The sha256 of the take's poster JPEG, if it was made and is still stored."""
        data = _read(self._poster_path(video_sha))
        jpeg = data.get("jpeg_sha256") if data else None
        if not isinstance(jpeg, str) or not _SHA256.fullmatch(jpeg):
            return None
        return jpeg if self.store.has(jpeg, "jpg") else None

    def put_poster(self, video_sha: str, jpeg: bytes) -> str:
        """Store the poster JPEG of a take and record it; its sha256."""
        stored = self.store.put_bytes(jpeg, "jpg")
        _write(self._poster_path(video_sha),
               {"video_sha256": video_sha, "jpeg_sha256": stored.sha256})
        return stored.sha256

    def _poster_path(self, video_sha: str) -> Path:
        return self.store.root / "posters" / f"{_checked(video_sha)}.json"

    # Seams

    def find_seam(self, given_sha: str, taken_sha: str) -> dict[str, Any] | None:
        """The measures recorded for this pair of frames, or None."""
        data = _read(self._seam_path(given_sha, taken_sha))
        measures = data.get("measures") if data else None
        return dict(measures) if isinstance(measures, Mapping) else None

    def put_seam(self, given_sha: str, taken_sha: str, measures: Mapping[str, Any]) -> None:
        _write(self._seam_path(given_sha, taken_sha),
               {"given_sha256": given_sha, "taken_sha256": taken_sha,
                "measures": dict(measures)})

    def _seam_path(self, given_sha: str, taken_sha: str) -> Path:
        return self.store.root / "seams" / f"{_checked(given_sha)}-{_checked(taken_sha)}.json"


def _checked(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
    return sha256


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _write(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, sort_keys=True, indent=2) + "\n"
    write_atomic(path, text.encode())
