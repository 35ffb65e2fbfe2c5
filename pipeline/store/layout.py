"""The layout of `<storyboard folder>/.storyreel/`: the one place that builds its paths.

Input: a storyboard path (for the root), or the names of things kept there.
Output: paths, checked, so that nothing read from a record or a request can point outside
the store:

    objects/<aa>/<rest of sha256>.<ext>   content named by its hash; the extension is for players
    shots/<identity>.json                 the takes a shot identity produced
    frames/<video sha256>.<which>.json    the PNG taken from a video's first, last or n-th frame
    uploads/<backend hash>/<sha256>.json  the imageUUID a backend gave an image, and when
    films/<stamp>.json                    the sha256 of the film last stitched from given inputs
    films/stitching-<film file>           a film stitched, before it is finished
    derived/<aa>/<sha256>.<kind>.json     what was made from an object, or found in it
    journal.sqlite                        every task, from prepared to done
    simulator/                            the embedded simulator's tasks, uploads and videos
    run.lock                              held by the one run using the folder
    tmp/                                  downloads in progress
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXT = re.compile(r"[a-z0-9]{0,10}")
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_WHICH = re.compile(r"first|last|-?[0-9]+")


def real_storyboard(storyboard: Path) -> Path:
    """The storyboard file itself: a symlink is followed, so its cache and lock sit next to
    the real file, wherever the link is."""
    path = Path(storyboard)
    return path.resolve() if path.is_symlink() else path


def store_root_for(storyboard: Path) -> Path:
    """The cache folder of a storyboard: `.storyreel/` in the (real) storyboard's folder."""
    return real_storyboard(storyboard).parent / ".storyreel"


class Layout:
    """Every path under one store root. Nothing here touches the disk."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def journal_path(self) -> Path:
        return self.root / "journal.sqlite"

    @property
    def simulator_dir(self) -> Path:
        """The state folder of the embedded simulator: its tasks survive like ours do."""
        return self.root / "simulator"

    @property
    def run_lock_path(self) -> Path:
        return self.root / "run.lock"

    @property
    def temp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def shots_dir(self) -> Path:
        return self.root / "shots"

    @property
    def films_dir(self) -> Path:
        return self.root / "films"

    def path_for(self, sha256: str, ext: str) -> Path:
        """Where the object with this content and extension lives."""
        sha = checked_sha(sha256)
        return self.root / "objects" / sha[:2] / f"{sha[2:]}{suffix(ext)}"

    def shot_path(self, identity: str) -> Path:
        return self.shots_dir / f"{checked_name(identity)}.json"

    def frame_path(self, video_sha: str, which: str) -> Path:
        if not _WHICH.fullmatch(which):
            raise ValueError(f"frame {which!r}: expected 'first', 'last' or an index")
        return self.root / "frames" / f"{checked_sha(video_sha)}.{which}.json"

    def upload_path(self, backend: str, sha256: str) -> Path:
        # Backend ids may hold URLs; a hash makes a safe folder name and the file keeps the id.
        folder = hashlib.sha256(backend.encode()).hexdigest()[:16]
        return self.root / "uploads" / folder / f"{checked_sha(sha256)}.json"

    def film_stamp_path(self, stamp: str) -> Path:
        return self.films_dir / f"{checked_sha(stamp)}.json"

    def film_record_paths(self) -> list[Path]:
        """Every film record, in name order."""
        return sorted(self.films_dir.glob("*.json"))

    def film_work_path(self, name: str) -> Path:
        """Where a film is stitched before it is finished into its file."""
        return self.films_dir / f"stitching-{checked_name(name)}"

    def derived_path(self, source: str, kind: str) -> Path:
        """The record of the work `kind` done on the object `source` (a graded clip, the
        sharpest frame of a take)."""
        return self.root / "derived" / source[:2] / f"{checked_sha(source)}.{kind}.json"


def checked_sha(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
    return sha256


def checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not usable as a file name: {name!r}")
    return name


def suffix(ext: str) -> str:
    """`.mp4` for `mp4`, `MP4` or `.mp4`; refuses anything that is not a short extension."""
    bare = ext.lower().removeprefix(".")
    if not _EXT.fullmatch(bare):
        raise ValueError(f"unexpected file extension {ext!r}")
    return f".{bare}" if bare else ""
