"""Prices: a model file's price list and one clip's resolution, length and sound in; its cost,
out.

`x-storyreel.prices` holds:

- `perSecond`: published rates per second, by resolution class (`{"1080p": 0.0598}`);
- `table`: published prices per clip, by resolution class and seconds (`{"720p": {"5": 0.15}}`),
  which win over `perSecond` where both have a price;
- `withAudio`: the same two for a request that asks for sound, where sound costs more;
- `estimate`: an unpublished resolution class priced as another one, marked as an estimate;
- `currency`, `note`.

A model with neither `perSecond` nor `table` has no published price: its clips cost an
unknown amount (`Cost.known` is false), which a plan shows as such and a run with a spending
limit refuses unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Cost:
    amount: float
    estimated: bool
    known: bool = True


UNKNOWN = Cost(0.0, False, known=False)


@dataclass(frozen=True)
class Rates:
    per_second: Mapping[str, float] = field(default_factory=dict)
    table: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> Rates:
        per_second = {str(k): float(v) for k, v in (raw.get("perSecond") or {}).items()}
        table = {str(res): {str(s): float(p) for s, p in row.items()}
                 for res, row in (raw.get("table") or {}).items()}
        return cls(per_second, table)

    @cached_property
    def classes(self) -> list[str]:
        """Every priced resolution class, table first, in the file's order."""
        return list(dict.fromkeys([*self.table, *self.per_second]))


@dataclass(frozen=True)
class PriceList:
    currency: str
    plain: Rates
    with_audio: Rates | None
    estimate: Mapping[str, str]
    note: str | None

    @classmethod
    def read(cls, raw: Mapping[str, Any] | None) -> PriceList:
        raw = raw or {}
        audio = raw.get("withAudio")
        return cls(str(raw.get("currency", "USD")), Rates.read(raw),
                   Rates.read(audio) if isinstance(audio, Mapping) else None,
                   {str(k): str(v) for k, v in (raw.get("estimate") or {}).items()},
                   raw.get("note"))

    @property
    def known(self) -> bool:
        return bool(self.plain.classes)

    def rates(self, sound: bool) -> Rates:
        return self.with_audio if sound and self.with_audio is not None else self.plain

    def clip(self, resolution: str, seconds: float, sound: bool = False) -> Cost:
        """The price of one clip: the table's, else the rate per second times the length,
        else an estimate from a neighbouring length or resolution."""
        rates = self.rates(sound)
        classes = rates.classes
        if not classes:
            return UNKNOWN
        estimated = resolution not in classes
        if estimated:
            resolution = self.estimate.get(resolution, classes[0])
            resolution = resolution if resolution in classes else classes[0]
        row = rates.table.get(resolution, {})
        price = row.get(f"{seconds:g}")
        if price is None and resolution in rates.per_second:
            price = rates.per_second[resolution] * seconds
        if price is None:  # only other lengths are published: scale the longest one
            estimated = True
            price = max(row.values()) * seconds / max(float(k) for k in row)
        return Cost(price, estimated)

    def per_second(self, sound: bool = False) -> dict[str, float]:
        """A rate per second for each priced resolution class (from its longest clip when
        only clip prices are published)."""
        rates = self.rates(sound)
        out = dict(rates.per_second)
        for res, row in rates.table.items():
            if res not in out and row:
                longest = max(row, key=float)
                out[res] = row[longest] / float(longest)
        return {res: out[res] for res in rates.classes}
