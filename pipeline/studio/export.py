"""Export: a `Board` and its store in; a folder that shows it without a server, out.

    DIR/index.html, variant-N.html   one page per variant, as the studio shows them
    DIR/media/<sha256>.<ext>         the picked takes, the films, the posters, the seam frames
    DIR/static/                      the stylesheet and the script

Every address in the pages is relative, so the folder opens from `file://`, zipped and sent
or copied anywhere. Media are copies, not links: a player or editor that writes into an
exported file must not change the store's object. Posters missing from the store are made.
Files of an earlier export in DIR are replaced; nothing else in it is touched.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from ..errors import UsageError
from ..media.poster import poster_jpeg
from ..store import ObjectStore, atomic_path
from ..store.previews import Previews
from .board import Board
from .pages import ExportUrls, render_page


def export_board(board: Board, store: ObjectStore, out: Path) -> list[Path]:
    """Write the pages and their media into `out`; the pages written, first one first."""
    if board.problems:
        raise UsageError("the storyboard does not compile, so there is nothing to export:\n"
                         + board.problems)
    media = out / "media"
    media.mkdir(parents=True, exist_ok=True)
    urls = ExportUrls(posters=_posters(board, store, media), clips=_clips(board, store, media))
    _films(board, media)
    for seam in board.seams:
        for sha in (seam.given, seam.taken):
            if sha:
                _place(store.path_for(sha, "png"), media / f"{sha}.png")
    _static(out / "static")
    pages = []
    for index in range(max(len(board.variants), 1)):
        page = out / urls.page(index)
        page.write_text(render_page(board, index, urls, live=False), encoding="utf-8")
        pages.append(page)
    return pages


def _posters(board: Board, store: ObjectStore, media: Path) -> dict[str, str]:
    previews = Previews(store)
    posters = {}
    for sha, ext in board.videos().items():
        jpeg = previews.find_poster(sha)
        if jpeg is None:
            jpeg = previews.put_poster(sha, poster_jpeg(store.path_for(sha, ext)))
        _place(store.path_for(jpeg, "jpg"), media / f"{jpeg}.jpg")
        posters[sha] = jpeg
    return posters


def _clips(board: Board, store: ObjectStore, media: Path) -> frozenset[str]:
    picked = {t.sha256: t.ext for s in board.shots for t in s.takes if t.picked}
    for sha, ext in picked.items():
        _place(store.path_for(sha, ext), media / f"{sha}.{ext}")
    return frozenset(picked)


def _films(board: Board, media: Path) -> None:
    for film in board.films:
        if film.sha256:
            _place(board.folder / film.file, media / f"{film.sha256}.{film.ext}")


def _static(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("studio.css", "studio.js"):
        (folder / name).write_bytes((files("pipeline.studio") / "static" / name).read_bytes())


def _place(source: Path, target: Path) -> None:
    """A copy of `source` at `target`. Named by content, so a file already there with the
    same size is the same file (an export made again copies only what is new)."""
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return
    with atomic_path(target) as temp:
        shutil.copyfile(source, temp)
