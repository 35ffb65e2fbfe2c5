"""Capabilities: what a model takes and makes, from its file's `x-storyreel` block.

Input: a model file's `frames` and `audio` entries, and requests.
Output: the position (first or last) each item of `inputs.frameImages` fills, the words that
say which positions a model takes, and whether a request asks for sound (`Sound`).

`frames` lists the positions a model accepts: `["first", "last"]`, `["first"]` or `[]`.
`audio` is `"never"`, `"always"`, or `{"switch": <dotted path of a boolean>, "default":
<bool>, "inputs": [<dotted paths that bring a sound track of their own>]}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

POSITIONS = ("first", "last")


def frame_position(item: Any, index: int, count: int) -> str:
    """first or last: the item's own `frame`, else one image is first, two are first, last."""
    frame = item.get("frame") if isinstance(item, dict | Mapping) else None
    if frame in ("first", 0):
        return "first"
    if frame in ("last", -1):
        return "last"
    return "last" if count == 2 and index == 1 else "first"


def frame_positions(request: Mapping[str, Any]) -> list[str]:
    """The position of every item of the request's `inputs.frameImages`, in order."""
    inputs = request.get("inputs")
    if inputs is None:  # most requests: no images at all
        return []
    items = inputs.get("frameImages") if isinstance(inputs, dict | Mapping) else None
    if not isinstance(items, list):
        return []
    return [frame_position(item, i, len(items)) for i, item in enumerate(items)]


def describe_frames(frames: Sequence[str]) -> str:
    """'a first and a last frame', 'a first frame only', 'no frame images'."""
    if not frames:
        return "no frame images (text to video only)"
    if len(frames) == 1:
        return f"a {frames[0]} frame only"
    return " and ".join(f"a {f}" for f in frames) + " frame"


def read_frames(raw: Any) -> tuple[str, ...]:
    frames = tuple(str(f) for f in (raw if isinstance(raw, list) else POSITIONS))
    unknown = [f for f in frames if f not in POSITIONS]
    if unknown:
        raise ValueError(f"x-storyreel.frames: unknown positions {unknown}; use first, last")
    return frames


def dotted_get(data: Any, path: Sequence[str]) -> Any:
    """The value at `path` in nested mappings, or None."""
    for part in path:
        if not isinstance(data, dict | Mapping) or part not in data:
            return None
        data = data[part]
    return data


@dataclass(frozen=True)
class Sound:
    """When a model's clips have a sound track."""

    mode: str  # never | always | switch
    switch: tuple[str, ...] = ()
    default: bool = False
    inputs: tuple[tuple[str, ...], ...] = ()
    note: str | None = None

    @classmethod
    def read(cls, raw: Any) -> Sound:
        if raw in (None, "never", False):
            return cls("never")
        if raw in ("always", True):
            return cls("always")
        if not isinstance(raw, Mapping) or not isinstance(raw.get("switch"), str):
            raise ValueError(f"x-storyreel.audio: expected never, always or {{switch: ...}}, "
                             f"not {raw!r}")
        inputs = tuple(tuple(str(p).split(".")) for p in raw.get("inputs", []))
        return cls("switch", tuple(raw["switch"].split(".")), bool(raw.get("default", False)),
                   inputs, raw.get("note"))

    def is_on(self, request: Mapping[str, Any]) -> bool:
        """Whether a clip made from `request` has sound."""
        if self.mode != "switch":
            return self.mode == "always"
        if any(dotted_get(request, path) is not None for path in self.inputs):
            return True
        value = dotted_get(request, self.switch)
        return self.default if value is None else value is True

    def describe(self) -> str:
        """'no', 'always', or the switch that turns it on."""
        if self.mode != "switch":
            return "no" if self.mode == "never" else "always"
        words = ".".join(self.switch) + (" (on by default)" if self.default else "")
        extra = ", ".join(".".join(p) for p in self.inputs)
        return f"{words}, or {extra}" if extra else words
