"""Framing: a shot's frame images and its model's frame positions in; the problems, out.

A model takes a first frame and a last one, a first frame only, or none (its file's
`x-storyreel.frames`). A `from` or a frame image in a position the model does not take is
a problem at that line (the `from`, or the image as written in the shot or its defaults),
naming the model, what it takes and which models would take it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Problem
from .capabilities import frame_positions
from .catalog import Catalog, ModelSpec
from .templates import ExpandedShot
from .violations import Violation


def check_frames(shot: ExpandedShot, spec: ModelSpec, request: Mapping[str, Any],
                 catalog: Catalog) -> tuple[list[Problem], Mapping[str, Any]]:
    """The frame problems of a request as the model sees it, and the request without the
    images they name (so the model's schema does not report them again)."""
    found = spec.frame_violations(request)
    if not found:
        return [], request
    shown = found
    if "from" in shot.glue:  # `from` next to a first frame image is reported by the plan
        shown = [v for v in found if not v.message.startswith("two frame images")]
    positions = frame_positions(request)
    problems = [_problem(shot, v, positions[int(v.path[2])], catalog) for v in shown]
    return problems, _without(request, {int(v.path[2]) for v in found})


def _problem(shot: ExpandedShot, v: Violation, position: str, catalog: Catalog) -> Problem:
    index = int(v.path[2])
    takers = [m for m in catalog.ids if position in catalog.get(m).frames]
    hint = ("drop one of them" if v.message.startswith("two frame images") else
            f"models that take a {position} frame: {', '.join(takers)}" if takers else None)
    if "from" in shot.glue and index == 0:
        source = shot.source
        return source.doc.problem(source.path + ("from",), f"shots.{shot.id}.from: "
                                  f"{v.message}", hint=hint, key=True)
    written = index - (1 if "from" in shot.glue else 0)
    path = ("inputs", "frameImages", written)
    layer = shot.locate(path)
    return layer.doc.problem(layer.path + path, f"shots.{shot.id}.inputs.frameImages."
                             f"{written}: {v.message}", hint=hint)


def _without(request: Mapping[str, Any], drop: set[int]) -> dict[str, Any]:
    inputs = dict(request["inputs"])
    kept = [item for i, item in enumerate(inputs["frameImages"]) if i not in drop]
    if kept:
        inputs["frameImages"] = kept
    else:
        del inputs["frameImages"]
    out = dict(request)
    if inputs:
        out["inputs"] = inputs
    else:
        del out["inputs"]
    return out
