"""Local files: the storyboard's folder in; what each local image is, and whether each film
can be written where it is named, out (as problems).

With `load`, the only part of the language phase that looks at the file system. A local image
is read once: its sha256 (its identity in the plan), its size, and what Pillow makes of it
(format and pixel size from the header, then the whole picture decoded, so that a file that
is not an image, or is cut short, is refused now rather than by the API after the shots
before it are paid for). Files outside the storyboard's folder are not read unless allowed.
A film must be written inside the folder: not to an absolute path, not through `..` or a
link that leaves it, not over a folder or under a file. A subfolder that does not exist yet
is fine: the run creates it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..errors import Problem
from ..store import sha256_file
from .images import ImageKind, LocalImage, classify_image
from .model import Storyboard
from .templates import ExpandedShot

_DECODE_PIXELS = 64_000_000  # larger pictures are refused by their size, never decoded
_SAME_AS = {"MPO": "JPEG"}  # a camera's JPEG with a second picture is still a JPEG
_OUTSIDE_HINT = "copy it next to the storyboard, or pass --allow-outside to read it"


def read_local_images(board: Storyboard, shots: Sequence[ExpandedShot], allow_outside: bool
                      ) -> tuple[dict[str, LocalImage], list[Problem]]:
    """Every local image file the shots name, read once each."""
    found: dict[str, LocalImage] = {}
    problems: list[Problem] = []
    tried: set[str] = set()
    for shot in shots:
        for path, value in _image_values(shot):
            if classify_image(value) is not ImageKind.FILE or value in tried:
                continue
            tried.add(value)
            image = read_image(board.folder, str(value), allow_outside)
            if isinstance(image, LocalImage):
                found[value] = image
            else:
                layer = shot.locate(path)
                problems.append(layer.doc.problem(layer.path + path,
                                                  f"shots.{shot.id}: {image[0]}", hint=image[1]))
    return found, problems


def _image_values(shot: ExpandedShot) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    images = (shot.fields.get("inputs") or {}).get("frameImages")
    for i, item in enumerate(images if isinstance(images, list) else []):
        if isinstance(item, Mapping) and "image" in item:
            yield ("inputs", "frameImages", i, "image"), item["image"]
        else:
            yield ("inputs", "frameImages", i), item


def read_image(folder: Path, name: str, allow_outside: bool
               ) -> LocalImage | tuple[str, str | None]:
    """What the image file `name` (relative to `folder`) is, or what is wrong and a hint."""
    target = (folder / name).resolve()
    if not allow_outside and not target.is_relative_to(folder):
        return f"image file {name!r} is outside the storyboard's folder", _OUTSIDE_HINT
    if not target.is_file():
        return (f"image file not found: {name}",
                "a local path is relative to the storyboard; URLs start with http(s)://")
    try:
        sha256, size = sha256_file(target), target.stat().st_size
        return _picture(target, name, sha256, size)
    except OSError as exc:
        return f"image file {name!r} cannot be read: {exc.strerror or exc}", None


def _picture(target: Path, name: str, sha256: str, size: int
             ) -> LocalImage | tuple[str, str | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what matters is raised; the rest is noise
            with Image.open(target) as image:
                width, height = image.size
                kind = _SAME_AS.get(str(image.format), str(image.format))
                if width * height <= _DECODE_PIXELS:
                    image.load()  # the whole picture: a file cut short fails here
    except UnidentifiedImageError:
        return (f"image file {name!r} is not an image",
                "a frame image is a PNG, JPEG or WEBP file")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return (f"image file {name!r} is damaged: {exc}",
                "open it in an image editor and save it again")
    return LocalImage(sha256, size, kind, width, height)


def film_file_problems(board: Storyboard, films: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """Whether each film can be written where its `file` names it."""
    problems = []
    for film in films:
        file = film.get("file")
        if isinstance(file, str) and file:
            found = _film_target(board.folder, file)
            if found is not None:
                problems.append(board.doc.problem(("film", "file"), f"film.file: {found[0]}",
                                                  hint=found[1]))
    return list(dict.fromkeys(problems))


def _film_target(folder: Path, file: str) -> tuple[str, str] | None:
    inside = "write the film next to the storyboard, or into a folder beside it"
    if Path(file).is_absolute():
        return (f"{file!r} is an absolute path; a film is written inside the storyboard's "
                "folder", inside)
    target = (folder / file).resolve()
    if not target.is_relative_to(folder):
        return f"{file!r} is outside the storyboard's folder", inside
    if target.is_dir():
        return f"{file!r} is a folder", "name a file in it, e.g. " + str(Path(file) / "film.mp4")
    for parent in target.relative_to(folder).parents:
        if (folder / parent).exists() and not (folder / parent).is_dir():
            return f"{file!r} cannot be written: {str(parent)!r} is a file", inside
    return None
