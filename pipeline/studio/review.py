"""Review: one storyboard under review, in; its current board, its edits and its runs, out.

Holds what lives as long as the studio: the session token a page must send back to change
anything, the board last built (built again only when a file it was built from changed or
a run moved), the film hashes (a film is hashed again only when its size or time changes),
the run started from the page, and the stamp the watcher compares.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..language.model import read_storyboard
from ..language.plan import SEED_RANGE
from ..run.execute import BackendName, RunRequest
from ..simulator.options import SimOptions
from ..store import ObjectStore, lock_path_for, sha256_file, store_root_for
from ..store.activity import Stamp, run_holder, stamp_of, store_stamp
from .board import Board, BoardInputs, build_board
from .edit import Edit, edit_shot
from .files import MediaFiles
from .live import Events, RunThread


@dataclass(frozen=True)
class ReviewConfig:
    path: Path
    display: str
    backend: str = "simulator"
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    simulator: SimOptions = SimOptions()
    workers: int = 2


class Review:
    def __init__(self, config: ReviewConfig, events: Events) -> None:
        self.config = config
        self.token = secrets.token_urlsafe(32)
        self.store = ObjectStore(store_root_for(config.path))
        self.events = events
        self.runs = RunThread(events.publish)
        self.files = MediaFiles(self.store, config.path.resolve().parent)
        self._board: Board | None = None
        self._built_at: Any = None
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._building = asyncio.Lock()
        self._edit_lock = threading.Lock()

    # The board

    @property
    def run_active(self) -> bool:
        holder = run_holder(self.store)
        return self.runs.active or (holder is not None and holder != os.getpid())

    def stamp(self) -> Stamp:
        """Sizes and times of everything the board is built from."""
        board = self._board
        sources = board.sources if board else (self.config.path,)
        films = [board.folder / f.file for f in board.films] if board else []
        return (stamp_of([*sources, lock_path_for(self.config.path), *films])
                + store_stamp(self.store))

    async def board(self) -> Board:
        """The current board, built again only when something it shows has changed."""
        async with self._building:
            live = self.runs.states
            key = (await asyncio.to_thread(self.stamp), tuple(sorted(live.items())),
                   self.run_active)
            if self._board is None or key != self._built_at:
                inputs = BoardInputs(live, self._hash_film, key[2], self.config.workers)
                self._board = await asyncio.to_thread(
                    build_board, self.config.path, self.config.display, inputs)
                self._built_at = key  # a change made while building shows at the next look
                self.files.films = {f.sha256: self._board.folder / f.file
                                    for f in self._board.films if f.sha256}
                self.files.videos = self._board.videos()
            return self._board

    def _hash_film(self, path: Path) -> str:
        info = path.stat()
        key = (str(path), info.st_size, info.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = sha256_file(path)
        return self._hashes[key]

    # Edits

    def set_value(self, shot_id: str, key: str, value: int) -> Edit:
        """Write `key: value` into the shot's YAML; the file is read afresh for it."""
        with self._edit_lock:
            board = read_storyboard(self.config.path, display=self.config.display)
            edit = edit_shot(board, shot_id, key, value)
            edit.write()
            self._built_at = None  # the next look builds the board afresh
            return edit

    def new_seed(self, current: int) -> int:
        seed = current
        while seed == current:
            seed = secrets.randbelow(SEED_RANGE)
        return seed

    # Runs

    def stop_run(self) -> bool:
        """Stop the run this studio started; False when it has none going."""
        return self.runs.stop()

    def start_run(self, max_cost: float | None) -> bool:
        req = RunRequest(self.config.path, self.config.display, BackendName(self.config.backend),
                         simulator=self.config.simulator, environ=self.config.environ)
        return self.runs.start(req, max_cost)
