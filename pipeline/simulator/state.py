"""What the simulator accepts and remembers: tasks, uploaded images, rendered videos, stats.

Input: request bodies and task objects (checked here in Runware's terms), image inputs,
clock times.
Output: `TaskError`s in Runware's error-envelope shape; `TaskRecord`s with every result
planned at submission (videoUUID, seed, cost, ready time); an image store by imageUUID; the
path of each video; counters.

Everything lives in a folder: the given state folder, or a temporary one. Records are
written atomically (temporary file, then rename), and a record never changes after it is
written, so a process that dies at any moment leaves a folder that a later process can read:
it finds the old tasks (and finishes them when their time has come), the images, and the
videos already rendered, which are never rendered again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid as uuidlib
import warnings
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..language.catalog import ModelSpec
from ..store.atomic import write_atomic
from .faults import random_seed, result_latencies, task_fails

UUID_V4 = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
UUID_ANY = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
STORED_LONG_SIDE = 2048
PLACEHOLDER_PREFIX = "placeholder:"
PLACEHOLDER_SIZE = (1280, 720)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
FRAME_SIDES = (300, 4000)  # PixVerse's bounds for a frame image, per side


class ImageProblem(ValueError):
    """An image input that cannot be used; the message says why."""


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


# -- request checks: Runware's error envelope -----------------------------------------


class TaskError(Exception):
    """Errors about one task (or a whole request), with the HTTP status they call for."""

    def __init__(self, status: int, problems: list[dict[str, Any]]) -> None:
        super().__init__(problems[0]["message"] if problems else "error")
        self.status = status
        self.problems = problems


def problem(code: str, message: str, task: Mapping[str, Any] | None = None,
            **extra: Any) -> dict[str, Any]:
    """One item of Runware's `errors` array."""
    item: dict[str, Any] = {"code": code, "message": message}
    item.update({k: v for k, v in extra.items() if v is not None})
    if task is not None:
        for key in ("taskType", "taskUUID"):
            if isinstance(task.get(key), str):
                item[key] = task[key]
    return item


def refuse(status: int, code: str, message: str, task: Mapping[str, Any] | None = None,
           **extra: Any) -> TaskError:
    return TaskError(status, [problem(code, message, task, **extra)])



def parse_tasks(body: bytes, max_tasks: int) -> list[dict[str, Any]]:
    """The task objects of a request body, or the error envelope's reason why not."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise refuse(400, "invalidJson", "the request body is not valid JSON") from None
    if not isinstance(payload, list) or not all(isinstance(t, dict) for t in payload):
        raise refuse(400, "invalidRequestBody", "the body must be a JSON array of task objects")
    if not payload:
        raise refuse(400, "invalidRequestBody", "the task array is empty")
    if len(payload) > max_tasks:
        raise refuse(400, "tooManyTasks", f"{len(payload)} tasks in one request; at most "
                     f"{max_tasks}")
    return payload


def require_task_uuid(task: Mapping[str, Any]) -> str:
    value = task.get("taskUUID")
    if not isinstance(value, str) or not value:
        raise refuse(400, "missingTaskUUID", "taskUUID is required (a UUID v4)", task,
                     parameter="taskUUID")
    if not UUID_V4.match(value):
        raise refuse(400, "invalidTaskUUID", f"taskUUID {value!r} is not a UUID v4", task,
                     parameter="taskUUID")
    return value


def check_request(spec: ModelSpec, task: Mapping[str, Any]) -> None:
    """The catalog's verdict, as Runware error items (warnings are not refusals)."""
    found = [v for v in spec.check_request(task) if not v.warning]
    if found:
        raise TaskError(400, [
            problem(v.code, f"{v.parameter}: {v.message}" if v.parameter else v.message, task,
                    parameter=v.parameter or None,
                    allowedValues=list(v.allowed) if v.allowed else None)
            for v in found])


def frame_position(item: Any, index: int, count: int) -> str:
    """first or last: the explicit `frame`, else one image is first, two are first and last."""
    frame = item.get("frame") if isinstance(item, dict) else None
    if frame in ("first", 0):
        return "first"
    if frame in ("last", -1):
        return "last"
    return "last" if count == 2 and index == 1 else "first"


def check_frame_size(size: tuple[int, int]) -> None:
    low, high = FRAME_SIDES
    if not all(low <= side <= high for side in size):
        raise ImageProblem(f"{size[0]}x{size[1]} is outside {low}-{high} px per side")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A loopback server must not send the simulator elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_loopback(url: str) -> bytes:
    """An image from a server on this machine (the only network the simulator touches):
    no proxy, no redirect, at most MAX_IMAGE_BYTES."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    try:
        with opener.open(url, timeout=5) as answer:
            data: bytes = answer.read(MAX_IMAGE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection
        raise ImageProblem(f"cannot fetch {url}: HTTP {exc.code}") from None
    except OSError as exc:
        raise ImageProblem(f"cannot fetch {url}: {exc}") from None
    return data


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
        ttl=float(ttl) if isinstance(ttl, (int, float)) else None)


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


# -- images ----------------------------------------------------------------------------


def decode_data(value: str) -> bytes:
    """Bytes of a data URI or of raw base64; `ImageProblem` if it is neither."""
    payload = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    if value.startswith("data:") and ";base64" not in value.split(",", 1)[0]:
        raise ImageProblem("a data URI image must be base64-encoded")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem("not an imageUUID, a URL, a data URI or base64 image data") from None


def decode_image(data: bytes) -> Image.Image:
    """A PNG, JPEG or WEBP image from bytes, refused when too large or not an image."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in IMAGE_FORMATS:
                raise ImageProblem(f"image format {image.format} is not PNG, JPEG or WEBP")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ImageProblem(f"image of {image.width}x{image.height} has too many pixels")
            image.load()
    except ImageProblem:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem("image data cannot be decoded as PNG, JPEG or WEBP") from None
    return image.convert("RGB")


def fit_long_side(image: Image.Image, long_side: int = STORED_LONG_SIDE) -> Image.Image:
    """Scale down (never up) so the long side is at most `long_side`, as Runware stores."""
    scale = long_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def placeholder_image(url: str, size: tuple[int, int] = PLACEHOLDER_SIZE) -> Image.Image:
    """Stands in for an image the simulator may not fetch: a tint from the URL, labelled."""
    digest = hashlib.sha256(url.encode()).digest()
    image = Image.new("RGB", size, (digest[0], digest[1], digest[2]))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, size[0] - 40, size[1] - 40), outline=(255, 255, 255), width=4)
    draw.text((60, 60), "simulator placeholder for an image not fetched:", fill=(255, 255, 255))
    draw.text((60, 80), url[:150], fill=(255, 255, 255))
    return image
