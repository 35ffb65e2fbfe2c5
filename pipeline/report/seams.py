"""Seams report: measured seams and chains in; a table for people and JSON for tools, out."""

from __future__ import annotations

import json
import math

from rich.console import Console
from rich.table import Table

from ..run.seams import ChainMeasure, SeamMeasure, Seams

__all__ = ["print_seams", "seams_json"]


def seams_table(seams: list[SeamMeasure]) -> Table:
    table = Table(title="seams: each frame handed over, against the frame made from it",
                  title_justify="left")
    for column in ("variant", "handover", "frame", "PSNR", "SSIM", "delta E", "sharpness",
                   "film", "check"):
        table.add_column(column, justify="left" if column in ("variant", "handover", "frame",
                                                               "check") else "right")
    for seam in seams:
        table.add_row(*_seam_row(seam))
    return table


def _seam_row(seam: SeamMeasure) -> list[str]:
    handover = seam.handover
    arrow = (f"{_id(handover.source)} -> {_id(handover.target)}" if handover.position == "first"
             else f"{_id(handover.target)} -> {_id(handover.source)} (bridge)")
    frame = (str(seam.source_frame) if handover.frame == seam.source_frame
             else f"{handover.frame} ({seam.source_frame})")
    shown = "inf" if math.isinf(seam.psnr) else f"{seam.psnr:.1f} dB"
    return [_variant(seam.variant), arrow, frame, shown, f"{seam.ssim:.3f}",
            f"{seam.delta_e:.2f}", f"{seam.sharpness:.0f}", "yes" if seam.in_film else "no",
            "; ".join(seam.failures) or "ok"]


def _chain_line(chain: ChainMeasure) -> str:
    hops = ", ".join(f"{hop:.2f}" for hop in chain.hops)
    verdict = f"  FAILS: {'; '.join(chain.failures)}" if chain.failures else ""
    label = f" [{_variant(chain.variant)}]" if chain.variant else ""
    path = " -> ".join(_id(key) for key in chain.keys)
    return f"chain{label} {path}: colour drift {chain.drift:.2f} (delta E, by hop: {hops}){verdict}"


def _id(key: str) -> str:
    return key.split("[")[0]


def _variant(variant: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in variant.items()) or "-"


def print_seams(result: Seams, console: Console) -> None:
    if result.seams:
        console.print(seams_table(result.seams))
    else:
        console.print("no handovers: no shot continues from a frame of another",
                      markup=False, highlight=False)
    for chain in result.chains:
        console.print(_chain_line(chain), markup=False, highlight=False)
    failing = sum(bool(s.failures) for s in result.seams) + sum(
        bool(c.failures) for c in result.chains)
    limits = ", ".join(f"{k} {v:g}" for k, v in result.thresholds.to_json().items()
                       if v is not None)
    verdict = f"{failing} below the thresholds" if failing else "all within the thresholds"
    console.print(f"{len(result.seams)} seams, {len(result.chains)} chains: {verdict} "
                  f"({limits})", markup=False, highlight=False)


def seams_json(result: Seams) -> str:
    return json.dumps(result.to_json(), indent=2, ensure_ascii=False)
