"""Files: a content hash and an extension in; the one file they name in the store, or a film
of the storyboard, out. Nothing else is reachable.

A name is `<64 hex>.<ext>` and nothing else: no path, so `..`, encoded slashes and absolute
paths have nowhere to go. The file found must resolve (symlinks followed) inside the store's
`objects/` folder, or be one of the storyboard's films, resolved inside its folder. Content
types come from `media.formats`, the one table of formats; posters and frames are JPEG and
PNG. Posters are made here, once per take, and kept in the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..media.formats import FORMATS
from ..media.poster import poster_jpeg
from ..store import ObjectStore
from ..store.previews import Previews

NAME = re.compile(r"(?P<sha>[0-9a-f]{64})\.(?P<ext>[a-z0-9]{1,5})")
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
CONTENT_TYPES = {fmt.extension: fmt.content_type for fmt in FORMATS.values()} | IMAGE_TYPES


@dataclass(frozen=True)
class Found:
    path: Path
    content_type: str


@dataclass
class MediaFiles:
    """The files the studio may serve: store objects, and the films it was told of."""

    store: ObjectStore
    folder: Path
    films: dict[str, Path] = field(default_factory=dict)  # sha256 -> film file
    videos: dict[str, str] = field(default_factory=dict)  # sha256 -> extension, takes shown

    def find(self, name: str) -> Found | None:
        """The file `name` (`<sha256>.<ext>`) stands for, or None."""
        parsed = parse_name(name)
        if parsed is None:
            return None
        sha, ext = parsed
        path = self._object(sha, ext) or self._film(sha, ext)
        return Found(path, CONTENT_TYPES[ext]) if path else None

    def _object(self, sha: str, ext: str) -> Path | None:
        objects = (self.store.root / "objects").resolve()
        path = self.store.path_for(sha, ext).resolve()
        return path if path.is_relative_to(objects) and path.is_file() else None

    def _film(self, sha: str, ext: str) -> Path | None:
        path = self.films.get(sha)
        if path is None or path.suffix.lower() != f".{ext}":
            return None
        resolved = path.resolve()
        inside = resolved.is_relative_to(self.folder.resolve()) and resolved.is_file()
        return resolved if inside else None

    def poster(self, video_sha: str) -> Found | None:
        """The poster of a take on the board, made now if it was never made."""
        ext = self.videos.get(video_sha)
        if ext is None:
            return None
        video = self._object(video_sha, ext)
        if video is None:
            return None
        previews = Previews(self.store)
        jpeg = previews.find_poster(video_sha)
        if jpeg is None:
            jpeg = previews.put_poster(video_sha, poster_jpeg(video))
        return Found(self.store.path_for(jpeg, "jpg"), IMAGE_TYPES["jpg"])


def parse_name(name: str) -> tuple[str, str] | None:
    found = NAME.fullmatch(name)
    if found is None or found["ext"] not in CONTENT_TYPES:
        return None
    return found["sha"], found["ext"]
