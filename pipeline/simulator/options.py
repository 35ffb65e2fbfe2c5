"""Simulator options: the one parser and vocabulary of `simulate` and of `run --sim-*`.

Input: the text of a latency (`A` or `A,B` seconds) and of fault rates (`KIND=RATE`, KIND one
of 429, 500, 503, drop, task; the older `rate_503` spelling is accepted too).
Output: `SimOptions`, applied to a `SimulatorConfig`; or a `click.BadParameter` that says
what is wrong, the same for both commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the app imports the renderer: only those who run it pay for that import
    from .app import SimulatorConfig

# Fault kind -> the SimulatorConfig field holding its rate.
FAULT_FIELDS = {"429": "rate_429", "500": "rate_500", "503": "rate_503", "drop": "rate_drop",
                "task": "rate_task_error"}
FAULT_KINDS = tuple(FAULT_FIELDS)
# Each fault's older spelling (`run --sim-fault rate_503=0.1`), still understood.
_OLD_NAMES = {name: kind for kind, name in FAULT_FIELDS.items()}
REQUEST_FAULTS = ("429", "500", "503", "drop")  # what one request can meet, on one draw

FAULTS_HELP = ("KIND is one of 429 (HTTP 429 with Retry-After), 500, 503, drop (the "
               "connection closed unanswered, after the work is done) or task (the task "
               "fails with timeoutProvider); RATE is between 0 and 1. rate_503 and the like "
               "are accepted as well.")


@dataclass(frozen=True)
class SimOptions:
    """What a user set: the latency range, if any, and a rate per fault kind."""

    latency: tuple[float, float] | None = None
    rates: Mapping[str, float] = field(default_factory=dict)
    drift: float = 0.0  # each clip's colour drift and smeared end, as a real model's (0..1)

    def apply(self, config: SimulatorConfig) -> SimulatorConfig:
        rate = self.rates.get
        config = replace(config, rate_429=rate("429", config.rate_429),
                         rate_500=rate("500", config.rate_500),
                         rate_503=rate("503", config.rate_503),
                         rate_drop=rate("drop", config.rate_drop),
                         rate_task_error=rate("task", config.rate_task_error),
                         drift=self.drift or config.drift)
        return config if self.latency is None else replace(config, latency=self.latency)


def parse_latency(text: str) -> tuple[float, float]:
    """`A` (always A seconds) or `A,B` (uniform between them); ValueError says why not."""
    parts = text.split(",")
    try:
        if len(parts) > 2:
            raise ValueError
        low, high = float(parts[0]), float(parts[-1])
    except ValueError:
        raise ValueError(f"{text!r}: give seconds as A or A,B, like 0.5,1.5") from None
    if not 0 <= low <= high:
        raise ValueError(f"{text!r}: need 0 <= A <= B")
    return low, high


def parse_rates(items: tuple[str, ...]) -> dict[str, float]:
    """`KIND=RATE` items -> kind -> rate; ValueError says what is wrong with which item."""
    rates: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        kind = _OLD_NAMES.get(name.strip(), name.strip())
        if kind not in FAULT_FIELDS:
            raise ValueError(f"{item!r}: unknown fault {name!r}; the kinds are "
                             f"{', '.join(FAULT_KINDS)}")
        try:
            rates[kind] = float(value)
        except ValueError:
            raise ValueError(f"{item!r}: write KIND=RATE, like 503=0.1") from None
        if not 0 <= rates[kind] <= 1:
            raise ValueError(f"{item!r}: a rate is between 0 and 1")
    if sum(rates.get(kind, 0.0) for kind in REQUEST_FAULTS) > 1:
        raise ValueError("the request fault rates (429, 500, 503, drop) add up to more than 1")
    return rates


def latency_option(ctx: click.Context, param: click.Parameter,
                   value: str | None) -> tuple[float, float] | None:
    """A click callback around `parse_latency`."""
    try:
        return None if value is None else parse_latency(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def rates_option(ctx: click.Context, param: click.Parameter,
                 values: tuple[str, ...]) -> dict[str, float]:
    """A click callback around `parse_rates`."""
    try:
        return parse_rates(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
