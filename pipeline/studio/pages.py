"""Pages: a `Board` in; the studio's HTML, one page per variant, out.

Jinja templates from this package (`templates/`), escaped by default. The same templates
serve the live studio and the exported folder; only the addresses differ (`LiveUrls`:
`/media/<sha256>.<ext>`, posters made on request; `ExportUrls`: files in the folder beside
the page), and an exported page has no buttons that would need a server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from .board import Board, FilmView, ShotView, TakeView

_ENV = Environment(loader=PackageLoader("pipeline.studio", "templates"),
                   autoescape=select_autoescape(default=True), trim_blocks=True,
                   lstrip_blocks=True)


class Urls(Protocol):
    def video(self, take: TakeView) -> str: ...
    def poster(self, take: TakeView) -> str | None: ...
    def image(self, sha256: str) -> str: ...
    def film(self, film: FilmView) -> str | None: ...
    def page(self, index: int) -> str: ...
    def static(self, name: str) -> str: ...
    def playable(self, take: TakeView) -> bool: ...


class LiveUrls:
    def video(self, take: TakeView) -> str:
        return f"/media/{take.sha256}.{take.ext}"

    def poster(self, take: TakeView) -> str:
        return f"/poster/{take.sha256}.jpg"

    def image(self, sha256: str) -> str:
        return f"/media/{sha256}.png"

    def film(self, film: FilmView) -> str | None:
        return f"/media/{film.sha256}.{film.ext}" if film.sha256 else None

    def page(self, index: int) -> str:
        return "/" if index == 0 else f"/?v={index}"

    def static(self, name: str) -> str:
        return f"/static/{quote(name)}"

    def playable(self, take: TakeView) -> bool:
        return True


@dataclass
class ExportUrls:
    """Addresses relative to the exported page; `posters` maps take to poster sha256, and
    `clips` holds the takes whose video is in the folder (the picked ones)."""

    posters: Mapping[str, str] = field(default_factory=dict)
    clips: frozenset[str] = frozenset()

    def video(self, take: TakeView) -> str:
        return f"media/{take.sha256}.{take.ext}"

    def poster(self, take: TakeView) -> str | None:
        jpeg = self.posters.get(take.sha256)
        return f"media/{jpeg}.jpg" if jpeg else None

    def image(self, sha256: str) -> str:
        return f"media/{sha256}.png"

    def film(self, film: FilmView) -> str | None:
        return f"media/{film.sha256}.{film.ext}" if film.sha256 else None

    def page(self, index: int) -> str:
        return "index.html" if index == 0 else f"variant-{index}.html"

    def static(self, name: str) -> str:
        return f"static/{quote(name)}"

    def playable(self, take: TakeView) -> bool:
        return take.sha256 in self.clips


def render_page(board: Board, index: int, urls: Urls, *, live: bool, token: str = "",
                backend: str = "simulator", running: bool = False) -> str:
    """The page of variant `index` (0 when the storyboard has no variants)."""
    template = _ENV.get_template("problems.html" if board.problems else "board.html")
    variant = board.variants[index] if board.variants else {}
    shots = board.in_variant(variant) if board.variants else list(board.shots)
    films = [f for f in board.films if dict(f.variant) == dict(variant)]
    return template.render(
        board=board, index=index, variant=variant, shots=shots, film=films[0] if films else None,
        strip=_strip(shots, films[0] if films else None), urls=urls, live=live, token=token,
        backend=backend, running=running, label=variant_label)


def _strip(shots: list[ShotView], film: FilmView | None) -> list[ShotView]:
    """The film's shots in film order; every shot in file order when there is no film."""
    if film is None:
        return shots
    by_key = {s.key: s for s in shots}
    return [by_key[k] for k in film.keys if k in by_key]


def variant_label(variant: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in variant.items())


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:.2f}" if value >= 0.1 or value == 0 else f"${value:.3f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _decibels(value: float) -> str:
    return "identical" if math.isinf(value) else f"{value:.1f} dB"


def _shot_id(key: str) -> str:
    """`approach[sea=stormy]` -> `approach`: a page shows one variant, so the id says it."""
    return key.split("[", 1)[0]


_BUSY = {"queued", "waiting", "extracting", "uploading", "submitted", "rendering",
         "downloading"}


def status_kind(status: str) -> str:
    """The colour family of a status: ok (nothing to do), will (a run would make it), busy
    (a run is making it), bad (failed or skipped)."""
    if status in ("cached", "done"):
        return "ok"
    if status in ("failed", "skipped"):
        return "bad"
    return "busy" if status in _BUSY else "will"


_ENV.filters.update(money=_money, seconds=_seconds, decibels=_decibels, shot_id=_shot_id,
                    kind=status_kind)
