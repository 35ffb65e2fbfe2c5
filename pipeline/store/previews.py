"""Previews: what the review studio derives from stored takes, kept so it is made once.

Input: a take's sha256 and the poster JPEG made from it; the sha256 of the two frames of a
seam and their measures.
Output: derived records (`store.derived`, under `.storyreel/derived/`), filed under their
source like every other piece of derived work:

    <take sha256>.poster-1.json                   the take's poster: a JPEG object
    <handed frame sha256>.seam-<taken frame sha256, 56 hex>.json   the seam's measures

The JPEG itself is an object (`ObjectStore.put_bytes`), so it is served like any other
object by its own hash; its record is written after it. A record that cannot be read is
treated as missing: the preview is simply made again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .derived import DerivedStore
from .objects import ObjectStore
from .records import CacheError

POSTER_KIND = "poster-1"  # the number changes when posters are made differently


class Previews:
    """The poster and seam records of one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.derived = DerivedStore(store)

    def find_poster(self, video_sha: str) -> str | None:
        """The sha256 of the take's poster JPEG, if it was made and is still stored."""
        try:
            found = self.derived.find_object(video_sha, POSTER_KIND)
        except CacheError:
            return None
        return found.sha256 if found else None

    def put_poster(self, video_sha: str, jpeg: bytes) -> str:
        """Store the poster JPEG of a take and record it; its sha256."""
        stored = self.store.put_bytes(jpeg, "jpg")
        self.derived.record(video_sha, POSTER_KIND,
                            {"sha256": stored.sha256, "ext": "jpg", "size": stored.size})
        return stored.sha256

    def find_seam(self, given_sha: str, taken_sha: str) -> dict[str, Any] | None:
        """The measures recorded for this pair of frames, or None."""
        try:
            found = self.derived.find(given_sha, _seam_kind(taken_sha))
        except CacheError:
            return None
        measures = found.get("measures") if found else None
        return dict(measures) if isinstance(measures, Mapping) else None

    def put_seam(self, given_sha: str, taken_sha: str, measures: Mapping[str, Any]) -> None:
        self.derived.record(given_sha, _seam_kind(taken_sha),
                            {"taken_sha256": taken_sha, "measures": dict(measures)})


def _seam_kind(taken_sha: str) -> str:
    # A kind is at most 64 characters; 56 hex digits of a sha256 still name one frame.
    if len(taken_sha) != 64:
        raise ValueError(f"not a sha256: {taken_sha!r}")
    return f"seam-{taken_sha[:56]}"
