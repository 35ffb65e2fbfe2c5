"""Seams: a plan and the finished shots in; for every frame handed from one shot to another,
the two frames side by side and how well they match, out.

A seam is every `from` and every `{shot: ...}` frame image: the parent's frame (its picked
take's last frame, for `from`) that was handed over, and the child's frame that took it
(its first frame, or its last when the image was given as the last frame). Frames are PNG
objects in the store, extracted once (the run has usually extracted the parent's already);
the measures (`media.metrics`) are kept in the store's seam records. The frame handed over is
the one the run sent, as the lock records it (a graded clip's, or the frame `best` chose),
else the take's own. A seam is poor below the storyboard's `continuity.min_psnr` (30 dB
unless set) or when its colours differ by more than `POOR_COLOUR_DIFFERENCE` levels.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from ..errors import MediaError
from ..language.continuity import Thresholds, image_position
from ..language.plan import Plan, PlannedShot
from ..media.frames import PNG_COMPRESS_LEVEL, extract_frame
from ..media.metrics import SeamScore, judge_seam
from ..store import LockEntry, ObjectStore, ShotRecord
from ..store.previews import Previews

# A grade shift a viewer sees at a cut, in levels of 0-255 (a re-encoded copy differs by 1-3).
POOR_COLOUR_DIFFERENCE = 10.0


@dataclass(frozen=True)
class SeamEdge:
    """A frame of `parent`'s take `take` that `child` uses as its first or last frame."""

    parent: str
    child: str
    take: int
    frame: str  # of the parent: "first", "last", "best" or an index
    position: str  # in the child: "first" or "last"
    chosen: int | None = None  # the index `best` chose, once the parent is made

    @property
    def name(self) -> str:
        return f"{self.parent}->{self.child}"


@dataclass(frozen=True)
class Seam:
    edge: SeamEdge
    given: str | None = None  # sha256 of the parent's frame (PNG)
    taken: str | None = None  # sha256 of the child's frame (PNG)
    score: SeamScore | None = None
    note: str | None = None  # why there is nothing to compare yet
    poor: bool = False


def seam_edges(plan: Plan) -> list[SeamEdge]:
    """Every frame edge of the plan, in the order of the shots that use them."""
    return [edge for shot in plan.shots for edge in _edges_of(shot)]


def _edges_of(shot: PlannedShot) -> list[SeamEdge]:
    images = (shot.request.get("inputs") or {}).get("frameImages") or []
    edges = []
    for i, item in enumerate(images):
        wrapped = isinstance(item, Mapping) and "image" in item
        source = item["image"] if wrapped else item
        if not isinstance(source, Mapping) or source.get("source") != "shot":
            continue
        chosen = source.get("chosen")
        edges.append(SeamEdge(str(source["key"]), shot.key, int(source["take"]),
                              str(source["frame"]), image_position(item, i, len(images)),
                              chosen if isinstance(chosen, int) else None))
    return edges


def measure_seams(edges: Sequence[SeamEdge], plan: Plan, records: Mapping[str, ShotRecord],
                  store: ObjectStore, lock: Mapping[str, LockEntry], limits: Thresholds,
                  workers: int = 2) -> list[Seam]:
    """Each edge's frames and measures; `records` maps shot identities to finished shots."""
    by_key = {s.key: s for s in plan.shots}
    measurer = _Measurer(store, Previews(store))

    def one(edge: SeamEdge) -> Seam:
        parent, child = by_key[edge.parent], by_key[edge.child]
        entry = lock.get(child.key)
        sent = dict(entry.inputs) if entry and entry.identity == child.identity else {}
        seam = measurer.measure(edge, records.get(parent.identity),
                                records.get(child.identity), child.pick, sent)
        return replace(seam, poor=_poor(seam.score, limits))

    if len(edges) < 2 or workers < 2:
        return [one(edge) for edge in edges]
    with ThreadPoolExecutor(workers) as pool:  # PyAV and numpy let go of the GIL
        return list(pool.map(one, edges))


@dataclass
class _Measurer:
    store: ObjectStore
    previews: Previews

    def measure(self, edge: SeamEdge, parent: ShotRecord | None, child: ShotRecord | None,
                pick: int, sent: Mapping[str, str]) -> Seam:
        if parent is None:
            return Seam(edge, note=f"{edge.parent} is not rendered yet")
        if child is None:
            return Seam(edge, note=f"{edge.child} renders at the next run")
        mark = edge.frame if edge.frame != "best" else str(edge.chosen)
        try:
            given = self._sent(edge, sent) or self.frame(parent, edge.take, mark)
            taken = self.frame(child, pick, edge.position)
        except (MediaError, OSError, IndexError, ValueError) as exc:
            return Seam(edge, note=f"cannot read the frames: {exc}")
        return Seam(edge, given, taken, self.score(given, taken))

    def _sent(self, edge: SeamEdge, sent: Mapping[str, str]) -> str | None:
        """The image the run sent for this edge, as the child's lock entry names it
        (`a:take2:last`, `a:take1:best=113`, `...:color-match` for a graded clip)."""
        prefix = f"{edge.parent}:take{edge.take}:"
        found = [sha for label, sha in sent.items()
                 if label.startswith(prefix) and _same_frame(label[len(prefix):], edge.frame)]
        return found[0] if len(found) == 1 and self.store.has(found[0], "png") else None

    def frame(self, record: ShotRecord, take: int, which: str) -> str:
        """The PNG of a take's frame: from the store, or extracted and kept there."""
        chosen = record.takes[take - 1]
        found = self.store.find_frame(chosen.sha256, which)
        if found is not None:
            return found
        index: str | int = int(which) if which.lstrip("-").isdigit() else which
        image = extract_frame(self.store.path_for(chosen.sha256, chosen.ext), index)
        # In memory, not in the store's tmp/: a run starting meanwhile empties that folder.
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        sha = self.store.put_bytes(buffer.getvalue(), "png").sha256
        self.store.record_frame(chosen.sha256, which, sha)
        return sha

    def score(self, given: str, taken: str) -> SeamScore:
        known = self.previews.find_seam(given, taken)
        if known is not None:
            return SeamScore(_number(known.get("psnr")), float(known["colour_difference"]))
        score = judge_seam(*_pixels(self.store, given, taken))
        self.previews.put_seam(given, taken, {"psnr": _finite(score.psnr),
                                              "colour_difference": score.colour_difference})
        return score


def _same_frame(shown: str, frame: str) -> bool:
    """A lock label's frame (`last`, `best=113`, `last:color-match`) against an edge's."""
    name = shown.split(":", 1)[0]
    return name.startswith("best=") if frame == "best" else name == frame


def _poor(score: SeamScore | None, limits: Thresholds) -> bool:
    if score is None:
        return False
    low = limits.min_psnr is not None and score.psnr < limits.min_psnr
    return low or score.colour_difference > POOR_COLOUR_DIFFERENCE


def _pixels(store: ObjectStore, given: str, taken: str) -> tuple[Any, Any]:
    """Both frames as RGB arrays, the handed-over one scaled to the other's size."""
    with Image.open(store.path_for(taken, "png")) as b:
        taken_image = b.convert("RGB")
    with Image.open(store.path_for(given, "png")) as a:
        given_image = a.convert("RGB")
    if given_image.size != taken_image.size:
        given_image = given_image.resize(taken_image.size, Image.Resampling.BILINEAR)
    return np.asarray(given_image), np.asarray(taken_image)


def _finite(value: float) -> float | None:
    return None if value == float("inf") else value


def _number(value: Any) -> float:
    return float("inf") if value is None else float(value)
