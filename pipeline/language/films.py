"""Film plans: each variant's rendered film block in; what its film is made of, out.

A `FilmPlan` names the shot keys in order, the transition, the file, and the canvas the
storyboard asks for (`film.size`, `film.fps`); where it does not, the film takes the size
and frame rate most of its clips have, which only the clips can tell (media/stitch.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .templates import Variant


@dataclass(frozen=True)
class FilmPlan:
    variant: Mapping[str, Any]
    keys: tuple[str, ...]
    transition: str
    seconds: float
    file: str
    size: tuple[int, int] | None = None  # film.size, else the clips' most common size
    fps: float | None = None  # film.fps, else the clips' most common frame rate



def film_plans(name: str, variants: Sequence[Variant], films: Sequence[Mapping[str, Any]],
               keys_by_variant: Mapping[Variant, list[str]]) -> list[FilmPlan]:
    """One film per variant; `films` holds the rendered film block per variant."""
    out = []
    for variant, film in zip(variants, films, strict=True):
        transition = film.get("transition", "cut")
        kind = transition if isinstance(transition, str) else transition.get("type", "cut")
        seconds = 0.0 if isinstance(transition, str) else float(transition.get("seconds", 0.5))
        size = film.get("size")
        out.append(FilmPlan(dict(variant), tuple(keys_by_variant[variant]), kind,
                            seconds if kind == "crossfade" else 0.0, film["file"],
                            _size(size) if size else None, film.get("fps")))
    return out


def _size(text: str) -> tuple[int, int]:
    width, _, height = str(text).partition("x")
    return int(width), int(height)
