"""Images: what a storyboard writes where an image goes -> what the request carries.

Pure. A URL, an image UUID, a data URI or base64 is sent as written. A local file becomes
`{source: file, path, sha256}` and a frame of another shot `{source: shot, key, frame, take}`
(with `color: match` when that shot's clip is graded, and `chosen`, the frame `best` chose):
the run resolves both (extracts, uploads) and sends the UUID it gets back. What could only
fail after money is spent is checked here, before: a frame index must fall inside the
parent's clip (its duration at its model's frame rate), and a local image must be one the
model takes (`ImageLimits`: sides, bytes, formats; `compile` read the file's facts).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from ..errors import Problem
from .catalog import ImageLimits, ModelSpec
from .graph import parse_ref
from .load import Path_
from .templates import ExpandedShot, shot_key

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}$")
PLACEHOLDER_UUID = "00000000-0000-4000-8000-000000000000"


class ImageKind(StrEnum):
    URL = "url"
    UUID = "uuid"
    DATA_URI = "data-uri"
    BASE64 = "base64"
    FILE = "file"
    SHOT = "shot"


def classify_image(value: Any) -> ImageKind:
    if parse_ref(value) is not None:
        return ImageKind.SHOT
    text = str(value)
    if text.startswith(("http://", "https://")):
        return ImageKind.URL
    if text.startswith("data:"):
        return ImageKind.DATA_URI
    if _UUID.match(text):
        return ImageKind.UUID
    if len(text) >= 200 and _BASE64.match(text):
        return ImageKind.BASE64
    return ImageKind.FILE


@dataclass(frozen=True)
class LocalImage:
    """What was read of a local image file: its content hash, size in bytes, and what the
    image is (`format` as Pillow names it: PNG, JPEG, WEBP...)."""

    sha256: str
    size: int
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class ClipLength:
    """How long a shot's clip is: its duration, at its model's frame rate."""

    seconds: float
    fps: int

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)


class Parent(Protocol):
    """A planned shot, as the shots that use its frames see it."""

    @property
    def identity(self) -> str: ...
    @property
    def pick(self) -> int: ...
    @property
    def color_hold(self) -> bool: ...


@dataclass
class ImageResolver:
    """Resolves the images of one shot's request, collecting what is wrong with them."""

    shot: ExpandedShot
    spec: ModelSpec
    planned: Mapping[str, Parent]
    files: Mapping[str, LocalImage]
    clips: Mapping[str, ClipLength]  # every shot's whose model is known, planned or not
    problems: list[Problem]
    best_frame: Callable[[str, int], int | None] = lambda identity, pick: None

    def frame_images(self) -> list[Any] | None:
        """`inputs.frameImages` as the request carries it: `from` first, then those
        written; None when the shot has neither."""
        shot = self.shot
        written = (shot.fields.get("inputs") or {}).get("frameImages")
        base: Path_ = ("inputs", "frameImages")
        items = [self.item(item, base + (i,)) for i, item in enumerate(written or [])]
        origin = shot.glue.get("from")
        if origin is None:
            return items if written is not None else None
        ref = {"shot": origin, "frame": "last"} if isinstance(origin, str) else origin
        if any(isinstance(i, Mapping) and i.get("frame") in ("first", 0) for i in items):
            self.problems.append(shot.source.doc.problem(
                shot.source.path + ("from",), f"shots.{shot.id}: from sets the first frame, and "
                "inputs.frameImages sets one too", hint="drop one of them", key=True))
        return [{"image": self.shot_frame(ref, ("from",)), "frame": "first"}, *items]

    def item(self, item: Any, path: Path_) -> Any:
        if isinstance(item, Mapping) and "image" in item:
            return {**item, "image": self.image(item["image"], path + ("image",))}
        return self.image(item, path)

    def image(self, value: Any, path: Path_) -> Any:
        kind = classify_image(value)
        if kind is ImageKind.SHOT:
            return self.shot_frame(value, path)
        if kind is ImageKind.FILE:
            facts = self.files.get(value)
            if facts is not None and self.spec.images is not None:
                self.check_file(str(value), facts, self.spec.images, path)
            return {"source": "file", "path": value,
                    "sha256": facts.sha256 if facts is not None else None}
        return value

    def shot_frame(self, ref: Mapping[str, Any], path: Path_) -> dict[str, Any]:
        key = shot_key(str(ref["shot"]), self.shot.variant)
        parent = self.planned.get(key)
        frame = ref.get("frame", "last")
        if isinstance(frame, int) and not isinstance(frame, bool):
            clip = self.clips.get(key)
            if clip is not None:
                self.check_frame(str(ref["shot"]), frame, clip, path)
        source = {"source": "shot", "shot": ref["shot"], "key": key, "frame": frame,
                  "take": parent.pick if parent else 1}
        if parent is not None and parent.color_hold:
            source["color"] = "match"  # the parent's clip is graded: its frame is too
        if parent is not None and frame == "best":
            source["chosen"] = self.best_frame(parent.identity, parent.pick)
        return source

    def check_frame(self, parent: str, frame: int, clip: ClipLength, path: Path_) -> None:
        """The rule the run applies when it takes the frame: -frames <= index < frames."""
        frames = clip.frames
        if -frames <= frame < frames:
            return
        self.problem(path + ("frame",), f"frame {frame} is not in shot {parent!r}: its clip has "
                     f"{frames} frames ({clip.seconds:g} s at {clip.fps} fps)",
                     f"use 0..{frames - 1}, or -{frames}..-1 to count from the end, or first "
                     "or last")

    def check_file(self, name: str, facts: LocalImage, limits: ImageLimits, path: Path_) -> None:
        model = self.spec.air
        if facts.format not in limits.formats:
            self.problem(path, f"image file {name!r} is {facts.format}; {model} takes "
                         f"{_either(limits.formats)}", "convert it to one of those")
        elif facts.size > limits.max_bytes:
            self.problem(path, f"image file {name!r} is {facts.size:,} bytes; {model} takes at "
                         f"most {limits.max_bytes:,}", "save it smaller or compressed harder")
        elif not all(limits.min_side <= side <= limits.max_side
                     for side in (facts.width, facts.height)):
            self.problem(path, f"image file {name!r} is {facts.width}x{facts.height} pixels; "
                         f"{model} takes {limits.min_side} to {limits.max_side} pixels a side",
                         "resize it")

    def problem(self, path: Path_, message: str, hint: str) -> None:
        layer = self.shot.locate(path)
        self.problems.append(layer.doc.problem(layer.path + path, f"shots.{self.shot.id}: "
                                               f"{message}", hint=hint))


def _either(formats: Sequence[str]) -> str:
    return ", ".join(formats[:-1]) + f" or {formats[-1]}" if len(formats) > 1 else formats[0]


def source_keys(request: Mapping[str, Any]) -> list[str]:
    """The keys of the shots whose frames a request uses."""
    images = (request.get("inputs") or {}).get("frameImages") or []
    items = [i["image"] if isinstance(i, Mapping) and "image" in i else i for i in images]
    return [i["key"] for i in items if isinstance(i, Mapping) and i.get("source") == "shot"]


def with_placeholders(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as the model's schema sees it: run-time images as a UUID."""
    inputs = request.get("inputs")
    if not isinstance(inputs, Mapping) or not isinstance(inputs.get("frameImages"), list):
        return dict(request)
    items = [_placeholder(i) for i in inputs["frameImages"]]
    return {**request, "inputs": {**inputs, "frameImages": items}}


def _placeholder(item: Any) -> Any:
    if isinstance(item, Mapping) and "source" in item:
        return PLACEHOLDER_UUID
    if isinstance(item, Mapping) and isinstance(item.get("image"), Mapping):
        return {**item, "image": PLACEHOLDER_UUID}
    return item


def image_identity(item: Any, planned: Mapping[str, Parent]) -> Any:
    """An image as a shot's identity sees it: by content (a file's sha256, a parent's
    identity with the take and frame), never by a name or a run's UUID."""
    if isinstance(item, Mapping) and "image" in item:
        return {**item, "image": image_identity(item["image"], planned)}
    if isinstance(item, Mapping) and item.get("source") == "shot":
        parent = planned[item["key"]]
        graded = {"color": item["color"]} if "color" in item else {}
        return {"shot": parent.identity, "take": item["take"], "frame": item["frame"], **graded}
    if isinstance(item, Mapping) and item.get("source") == "file":
        return {"file": item["sha256"]}
    return item
