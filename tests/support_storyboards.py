"""Generated storyboards of chains and fans, for crash, fault and benchmark runs.

Input: a shot count, a seed and a few shape knobs. Output: the storyboard's YAML text, and
the shape it describes (each shot's parent and take count), so a test or a benchmark can
reason about the graph without compiling it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PLACES = ("a hill at dawn", "a river bend", "a pine forest", "a desert canyon", "a city street",
          "a harbour at dusk", "a snowy peak", "a meadow in summer", "a lighthouse in fog",
          "a market square", "a quiet beach", "a narrow alley")
MOVES = ("zoom_in", "zoom_out", "pan_left", "pan_right", "crane_up", "left_follow")


@dataclass(frozen=True)
class ShotShape:
    id: str
    parent: str | None
    takes: int = 1
    pick: int = 1
    size: tuple[int, int] = (640, 360)


@dataclass(frozen=True)
class BoardShape:
    """What a generated storyboard holds: its shots in file order, and the film's shots."""

    shots: tuple[ShotShape, ...]
    film: tuple[str, ...]
    crossfade: float | None = None
    concurrency: int | None = None
    seeds: bool = True
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def results(self) -> int:
        """Videos a full run generates: every take of every shot."""
        return sum(s.takes for s in self.shots)

    def children(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {s.id: [] for s in self.shots}
        for shot in self.shots:
            if shot.parent is not None:
                found[shot.parent].append(shot.id)
        return found

    def depth(self) -> int:
        """Shots on the longest `from` chain."""
        level: dict[str, int] = {}
        for shot in self.shots:
            level[shot.id] = 1 + (level[shot.parent] if shot.parent else 0)
        return max(level.values())


def chains_and_fans(count: int, *, seed: int = 7, roots: int = 4, fan: float = 0.3,
                    takes_every: int = 9, sizes: tuple[tuple[int, int], ...] = ((640, 360),),
                    ) -> tuple[ShotShape, ...]:
    """`count` shots in `roots` trees: most shots continue the newest shot of their tree (a
    chain), some branch from an older one (a fan); every `takes_every`-th shot has two takes
    and picks the second."""
    rng = random.Random(seed)
    trees: list[list[str]] = [[] for _ in range(roots)]
    shots: list[ShotShape] = []
    sizes_of: dict[str, tuple[int, int]] = {}
    for index in range(count):
        tree = trees[index % roots]
        sid = f"s{index:03d}"
        parent = None
        if tree:
            parent = rng.choice(tree) if rng.random() < fan else tree[-1]
        takes = 2 if takes_every and index % takes_every == takes_every - 1 else 1
        # A chained shot keeps its parent's size: its first frame is the parent's last.
        size = sizes[(index % roots) % len(sizes)] if parent is None else sizes_of[parent]
        sizes_of[sid] = size
        shots.append(ShotShape(sid, parent, takes, takes, size))
        tree.append(sid)
    return tuple(shots)


def storyboard_yaml(board: BoardShape) -> str:
    """The YAML text of a generated storyboard: explicit seeds, 5 s shots, one film."""
    shots: dict[str, dict[str, object]] = {}
    for index, shot in enumerate(board.shots):
        body: dict[str, object] = {
            "positivePrompt": f"shot {index}: {PLACES[index % len(PLACES)]}, storybook look",
            "width": shot.size[0], "height": shot.size[1],
            "providerSettings": {"pixverse": {"cameraMovement": MOVES[index % len(MOVES)]}},
        }
        if board.seeds:
            body["seed"] = 1000 + index
        if shot.parent is not None:
            body["from"] = shot.parent
        if shot.takes > 1:
            body.update(numberResults=shot.takes, pick=shot.pick)
        shots[shot.id] = body
    transition: object = "cut"
    if board.crossfade is not None:
        transition = {"type": "crossfade", "seconds": board.crossfade}
    data: dict[str, object] = {"version": 1, "model": "pixverse:1@3",
                               "defaults": {"duration": 5}, **board.extra}
    if board.concurrency is not None:
        data["concurrency"] = board.concurrency
    data["shots"] = shots
    data["film"] = {"shots": list(board.film), "transition": transition}
    return yaml.safe_dump(data, sort_keys=False, width=120)


def write_storyboard(folder: Path, board: BoardShape, name: str = "story.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(storyboard_yaml(board), encoding="utf-8")
    return path
