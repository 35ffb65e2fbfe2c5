"""Seams: a compiled storyboard and its cache in; how well every handover holds, out.

For every handover of every variant (a frame of one shot's picked take that another shot was
made from): that frame against the frame made from it, as PSNR, SSIM and delta E, and the
sharpness of the frame handed over. For every chain of every film (neighbours that hand
over), the colour drift from the chain's first frame to the last frame of each hop. Frames
are read from the clips as they go into the film: graded where a shot holds its colour.
Each number is held to the storyboard's thresholds (`continuity: {min_psnr: 30, ...}`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from ..errors import StoryreelError
from ..language.compile import Compiled
from ..language.continuity import Thresholds
from ..language.films import FilmPlan, Handover, SeamKind, handovers
from ..media.frames import extract_frame
from ..media.metrics import colour_drift, delta_e, psnr, sharpness, ssim
from ..media.timeline import Span
from ..store import ObjectStore, Take
from .continuity import frame_count, frame_index, picked_take, take_clip
from .films import MissingShot, film_spans

__all__ = ["ChainMeasure", "SeamMeasure", "Seams", "measure_seams"]

Picture = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class SeamMeasure:
    """One handover: frame `source_frame` of `source` against frame `target_frame` of
    `target` (its first, or its last for a bridge)."""

    variant: dict[str, object]
    handover: Handover
    source_frame: int
    target_frame: int
    in_film: bool
    psnr: float
    ssim: float
    delta_e: float
    sharpness: float
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"variant": self.variant, **self.handover.to_json(),
                "source_frame": self.source_frame, "target_frame": self.target_frame,
                "in_film": self.in_film, "psnr": _finite(self.psnr), "ssim": round(self.ssim, 4),
                "delta_e": round(self.delta_e, 3), "sharpness": round(self.sharpness, 2),
                "failures": list(self.failures)}


@dataclass(frozen=True)
class ChainMeasure:
    """Film neighbours that hand over, and the drift from the chain's first frame to the
    last frame kept of each of them (the first hop's own drift first)."""

    variant: dict[str, object]
    keys: tuple[str, ...]
    hops: tuple[float, ...]
    failures: tuple[str, ...] = ()

    @property
    def drift(self) -> float:
        return self.hops[-1]

    def to_json(self) -> dict[str, object]:
        return {"variant": self.variant, "shots": list(self.keys), "drift": round(self.drift, 3),
                "hops": [round(hop, 3) for hop in self.hops], "failures": list(self.failures)}


@dataclass(frozen=True)
class Seams:
    thresholds: Thresholds
    seams: list[SeamMeasure] = field(default_factory=list)
    chains: list[ChainMeasure] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(s.failures for s in self.seams) or any(c.failures for c in self.chains)

    def to_json(self) -> dict[str, object]:
        return {"thresholds": self.thresholds.to_json(), "failed": self.failed,
                "seams": [s.to_json() for s in self.seams],
                "chains": [c.to_json() for c in self.chains]}


def measure_seams(compiled: Compiled, store: ObjectStore) -> Seams:
    """Every handover and chain of the storyboard; raises when a shot is not made yet."""
    limits = Thresholds.of(compiled.board.continuity)
    reader = _Frames(compiled, store)
    result = Seams(limits)
    film_pairs = {(f.keys[i], f.keys[i + 1]) for f in compiled.plan.films
                  for i, s in enumerate(f.seams) if s.kind is SeamKind.HANDOVER}
    for handover in handovers(compiled.plan.shots):
        in_film = (handover.source, handover.target) in film_pairs or (
            handover.target, handover.source) in film_pairs
        result.seams.append(_measure(reader, handover, in_film, limits))
    for film in compiled.plan.films:
        try:
            spans = film_spans(compiled.plan, film, reader.take_or_none, store)
        except MissingShot as exc:
            raise StoreMissing(exc.key) from None
        result.chains.extend(_chain(reader, film, [spans[i] for i in run], limits)
                             for run in _chains(film))
    return result


class _Frames:
    """Frames of the clips as they go into the film, decoded once each."""

    def __init__(self, compiled: Compiled, store: ObjectStore) -> None:
        self.plan, self.store = compiled.plan, store
        self._cache: dict[tuple[Path, int], Picture] = {}

    def take_or_none(self, key: str) -> Take | None:
        shot = self.plan.shot(key)
        return picked_take(self.store, shot.identity, shot.pick)

    def take(self, key: str) -> Take:
        take = self.take_or_none(key)
        if take is None:
            raise StoreMissing(key)
        return take

    def frame(self, key: str, index: int) -> Picture:
        path = take_clip(self.store, self.take(key), self.plan.shot(key).color_hold).path
        return self.of(path, index)

    def of(self, path: Path, index: int) -> Picture:
        if (path, index) not in self._cache:
            image = extract_frame(path, index).convert("RGB")
            self._cache[(path, index)] = np.asarray(image)
        return self._cache[(path, index)]


class StoreMissing(StoryreelError):
    """A shot the seams need has no take in the cache."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key} has not been made yet: there is no seam to measure",
                         hint="run the storyboard first (storyreel run FILE)")


def _measure(reader: _Frames, handover: Handover, in_film: bool, limits: Thresholds
             ) -> SeamMeasure:
    source_index = frame_index(reader.store, reader.take(handover.source), handover.frame)
    target_take = reader.take(handover.target)
    target_index = 0 if handover.position == "first" else frame_count(target_take) - 1
    given = reader.frame(handover.source, source_index)
    made = _fit(reader.frame(handover.target, target_index), given)
    numbers = (psnr(given, made), ssim(given, made), delta_e(given, made), sharpness(given))
    failures = _failures(limits, *numbers[:3])
    variant = dict(reader.plan.shot(handover.target).variant)
    return SeamMeasure(variant, handover, source_index, target_index, in_film, *numbers,
                       failures=failures)


def _fit(picture: Picture, like: Picture) -> Picture:
    """`picture` at the size of `like`, to compare pixel with pixel."""
    if picture.shape == like.shape:
        return picture
    size = (like.shape[1], like.shape[0])
    return np.asarray(Image.fromarray(picture).resize(size, Image.Resampling.LANCZOS))


def _failures(limits: Thresholds, value_psnr: float, value_ssim: float, value_delta_e: float
              ) -> tuple[str, ...]:
    found = []
    if limits.min_psnr is not None and value_psnr < limits.min_psnr:
        found.append(f"PSNR {value_psnr:.1f} dB < {limits.min_psnr:g}")
    if limits.min_ssim is not None and value_ssim < limits.min_ssim:
        found.append(f"SSIM {value_ssim:.3f} < {limits.min_ssim:g}")
    if limits.max_delta_e is not None and value_delta_e > limits.max_delta_e:
        found.append(f"delta E {value_delta_e:.2f} > {limits.max_delta_e:g}")
    return tuple(found)


def _chains(film: FilmPlan) -> Iterator[list[int]]:
    """Runs of film entries (their indexes) joined by handovers, two or more."""
    run = [0] if film.keys else []
    for i, seam in enumerate(film.seams, start=1):
        if seam.kind is not SeamKind.HANDOVER:
            if len(run) > 1:
                yield run
            run = []
        run.append(i)
    if len(run) > 1:
        yield run


def _chain(reader: _Frames, film: FilmPlan, spans: list[Span], limits: Thresholds
           ) -> ChainMeasure:
    first = reader.of(spans[0].clip, spans[0].start)
    hops = []
    for span in spans:
        stop = span.stop if span.stop is not None else frame_count(reader.take(span.key))
        hops.append(colour_drift(first, reader.of(span.clip, stop - 1)))
    over = limits.max_drift is not None and hops[-1] > limits.max_drift
    failures = (f"drift {hops[-1]:.2f} > {limits.max_drift:g}",) if over else ()
    keys = tuple(span.key for span in spans)
    return ChainMeasure(dict(film.variant), keys, tuple(hops), failures)


def _finite(value: float) -> float | None:
    """JSON has no infinity: identical frames give null."""
    return None if value == float("inf") else round(value, 3)
