"""What the simulator remembers: tasks, uploaded images, rendered videos, stats.

Input: accepted tasks, image inputs, clock times.
Output: `TaskRecord`s with every result planned at submission (videoUUID, seed, cost, ready
time, whether it has sound); an image store by imageUUID; the path of each video; counters.

Everything lives in a folder: the given state folder, or a temporary one. Records are
written atomically (temporary file, then rename), and a record never changes after it is
written, so a process that dies at any moment leaves a folder that a later process can read:
it finds the old tasks (and finishes them when their time has come), the images, and the
videos already rendered, which are never rendered again.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import shutil
import tempfile
import urllib.parse
import uuid as uuidlib
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from PIL import Image

from ..language.catalog import ModelSpec
from ..store.atomic import write_atomic
from .faults import random_seed, result_latencies, task_fails
from .images import (
    LOOPBACK,
    PLACEHOLDER_SIZE,
    ImageProblem,
    decode_data,
    decode_image,
    fetch_loopback,
    placeholder_image,
)

UUID_ANY = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PLACEHOLDER_PREFIX = "placeholder:"


@dataclass(frozen=True)
class ResultPlan:
    index: int
    video_uuid: str
    seed: int
    cost: float
    ready_at: float


@dataclass(frozen=True)
class TaskRecord:
    """One accepted task, with all its results planned when it was submitted."""

    task_uuid: str
    request: dict[str, Any]  # as received, inline images replaced by stored imageUUIDs
    submitted: float
    width: int
    height: int
    duration: float
    output_format: str
    frames: dict[str, str]  # "first"/"last" -> imageUUID, or "placeholder:<url>"
    results: tuple[ResultPlan, ...]
    fails: bool
    ttl: float | None
    fps: int = 24  # the model's frame rate
    sound: bool = False  # whether the clip has a sound track

    @property
    def ready_at(self) -> float:
        return max(r.ready_at for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TaskRecord:
        values = dict(raw)
        values["results"] = tuple(ResultPlan(**r) for r in raw["results"])
        return cls(**values)


@dataclass
class Stats:
    """Counters the `/_simulator/stats` endpoint reports."""

    http_requests: int = 0
    requests: Counter[str] = field(default_factory=Counter)  # HTTP requests by task type
    tasks: Counter[str] = field(default_factory=Counter)  # tasks by task type
    tasks_accepted: int = 0
    conflicts: int = 0
    refused: int = 0
    generations: int = 0
    generations_by_task: Counter[str] = field(default_factory=Counter)
    generations_by_video: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    downloads: int = 0

    def as_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Counter) else value


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- planning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dice:
    """The simulator's chance: a seed, the latency range and the task failure rate."""

    seed: int
    latency: tuple[float, float]
    rate_task_error: float


def plan_task(task_uuid: str, request: dict[str, Any], frames: dict[str, str],
              spec: ModelSpec, *, submitted: float, image_size: tuple[int, int] | None,
              dice: Dice) -> TaskRecord:
    """Every result of an accepted task, decided now: videoUUID, seed, cost, ready time."""
    count = int(request.get("numberResults", 1))
    seed = request.get("seed")
    base = int(seed) if isinstance(seed, int) else random_seed(dice.seed, task_uuid)
    modulus = 2**31 if isinstance(seed, int) else 2**32
    cost = spec.estimate_cost({**request, "numberResults": 1}).amount
    latencies = result_latencies(dice.seed, task_uuid, count, dice.latency)
    results = tuple(
        ResultPlan(k, derived_uuid("video", task_uuid, k), (base + k) % modulus, cost,
                   submitted + latencies[k])
        for k in range(count))
    width, height = spec.output_size(request, image_size)
    ttl = request.get("ttl")
    return TaskRecord(
        task_uuid=task_uuid, request=request, submitted=submitted, width=width,
        height=height, duration=spec.duration(request),
        output_format=str(request.get("outputFormat", "MP4")), frames=frames,
        results=results, fails=task_fails(dice.seed, task_uuid, dice.rate_task_error),
        ttl=float(ttl) if isinstance(ttl, (int, float)) else None, fps=spec.fps,
        sound=spec.sound.is_on(request))


# -- the store --------------------------------------------------------------------------


def derived_uuid(*parts: object) -> str:
    """A UUIDv4-shaped id that depends only on its parts (same task -> same videoUUID)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return str(uuidlib.UUID(bytes=digest[:16], version=4))


class SimulatorState:
    """Tasks by taskUUID, results by videoUUID, images by imageUUID, all kept in a folder."""

    def __init__(self, folder: Path | None) -> None:
        self._cleanup = None
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="storyreel-simulator-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)
        self.folder = folder
        for sub in ("tasks", "images", "videos"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.tasks: dict[str, TaskRecord] = {}
        self.by_video: dict[str, tuple[str, int]] = {}
        for path in sorted((folder / "tasks").glob("*.json")):
            self._remember(TaskRecord.from_json(json.loads(path.read_text("utf-8"))))

    def close(self) -> None:
        """Remove the folder if it is a temporary one; a state folder stays."""
        if self._cleanup is not None:
            self._cleanup()

    def add_task(self, record: TaskRecord) -> None:
        payload = json.dumps(record.to_json(), indent=1).encode()
        write_atomic(self.folder / "tasks" / f"{record.task_uuid}.json", payload)
        self._remember(record)

    def _remember(self, record: TaskRecord) -> None:
        self.tasks[record.task_uuid] = record
        for result in record.results:
            self.by_video[result.video_uuid] = (record.task_uuid, result.index)

    def find_video(self, video_uuid: str) -> tuple[TaskRecord, ResultPlan] | None:
        where = self.by_video.get(video_uuid)
        if where is None:
            return None
        record = self.tasks[where[0]]
        return record, record.results[where[1]]

    def video_path(self, video_uuid: str, ext: str) -> Path:
        return self.folder / "videos" / f"{video_uuid}.{ext}"

    def image_path(self, image_uuid: str) -> Path:
        return self.folder / "images" / f"{image_uuid.lower()}.png"

    def has_image(self, image_uuid: str) -> bool:
        return bool(UUID_ANY.match(image_uuid)) and self.image_path(image_uuid).is_file()

    def put_image(self, image_uuid: str, image: Image.Image) -> None:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        write_atomic(self.image_path(image_uuid), buffer.getvalue())

    async def image_input(self, value: str, own_prefix: str) -> str | Image.Image:
        """What an image input names: a stored imageUUID (given, or in one of the simulator's
        own image URLs), a placeholder for a URL it may not fetch, or a picture decoded from
        data or fetched from a loopback URL."""
        name = value[len(own_prefix):].removesuffix(".png") if value.startswith(own_prefix) \
            else value
        if self.has_image(name):
            return name.lower()
        if UUID_ANY.match(name):
            raise ImageProblem(f"no uploaded image has imageUUID {name}")
        if value.startswith(("http://", "https://")):
            if urllib.parse.urlsplit(value).hostname not in LOOPBACK:
                return PLACEHOLDER_PREFIX + value
            data = await asyncio.to_thread(fetch_loopback, value)
        else:
            data = decode_data(value)
        return await asyncio.to_thread(decode_image, data)

    def image_size(self, ref: str) -> tuple[int, int]:
        """Width x height of a frame reference, read from the header only."""
        if ref.startswith(PLACEHOLDER_PREFIX):
            return PLACEHOLDER_SIZE
        with Image.open(self.image_path(ref)) as image:
            return image.size

    def load_image(self, ref: str) -> Image.Image:
        """The picture behind a frame reference: a stored image or a placeholder."""
        if ref.startswith(PLACEHOLDER_PREFIX):
            return placeholder_image(ref[len(PLACEHOLDER_PREFIX):])
        with Image.open(self.image_path(ref)) as image:
            return image.convert("RGB")


