"""Benchmark of the review studio: how long a 50-shot storyboard with 3 takes each takes to
show, the first time (posters and seam frames are made) and once they are cached.

Input: nothing (the storyboard is generated and rendered here on the embedded simulator).
Output: a table on stdout.

A load is what a browser does: GET the page, then every poster and seam frame it names, six
at a time (a browser's connections per host). Measured on a real socket:

- first load: a new studio on a folder the studio has never shown (no posters, no seam
  measures, the children's frames not yet extracted);
- cached load: a new studio (a new process would do the same) on the same folder;
- warm load: the same studio again (the board is kept in memory until a file changes).

Yardsticks measured in the same run: compiling the storyboard against its lock and cache
(what `storyreel plan` does, the least any view of the plan costs), and decoding one frame
of every take with PyAV (the least a first load that shows a picture of every take costs).

    python bench/studio.py [--shots 50] [--takes 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support_storyboards import BoardShape, ShotShape, write_storyboard  # noqa: E402

from pipeline.language.compile import compile_storyboard  # noqa: E402
from pipeline.media.frames import extract_frame  # noqa: E402
from pipeline.run.execute import RunRequest, execute, plan_state  # noqa: E402
from pipeline.run.scheduler import RunOptions  # noqa: E402
from pipeline.store import ObjectStore, store_root_for  # noqa: E402
from pipeline.studio.review import ReviewConfig  # noqa: E402
from pipeline.studio.server import serving  # noqa: E402

CONNECTIONS = 6
CHAIN = 5  # shots per chain: every fifth shot starts a new one


class Quiet:
    def update(self, job: object) -> None: ...
    def note(self, message: str) -> None: ...


def board_shape(shots: int, takes: int) -> BoardShape:
    shapes = tuple(ShotShape(f"s{i:02d}", None if i % CHAIN == 0 else f"s{i - 1:02d}", takes,
                             1 + i % takes, (640, 360)) for i in range(shots))
    return BoardShape(shapes, tuple(s.id for s in shapes))


def rendered(folder: Path, shots: int, takes: int) -> Path:
    story = write_storyboard(folder, board_shape(shots, takes))
    options = RunOptions(concurrency=8, poll_interval=0.05, first_poll=0.05)
    req = RunRequest(story, story.name, options=options, simulator={"latency": (0.0, 0.05)})
    summary = asyncio.run(execute(req, Quiet()))
    assert summary.complete, "the benchmark's storyboard did not render"
    return story


def load(url: str, client: httpx.Client) -> tuple[float, float, int]:
    """(seconds to the page, seconds to every image it names, images fetched)."""
    start = time.perf_counter()
    page = client.get(url)
    page.raise_for_status()
    html_done = time.perf_counter() - start
    images = sorted(set(re.findall(r'(?:poster|src)="(/(?:poster|media)/[0-9a-f]{64}\.'
                                   r'(?:jpg|png))"', page.text)))
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for answer in pool.map(lambda path: client.get(url.rstrip("/") + path), images):
            answer.raise_for_status()
    return html_done, time.perf_counter() - start, len(images)


def measure(story: Path) -> dict[str, tuple[float, float, int]]:
    out = {}
    with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=CONNECTIONS)) as client:
        with serving(ReviewConfig(story, story.name)) as studio:
            out["first load"] = load(studio.url, client)
            out["warm load (same studio)"] = load(studio.url, client)
        with serving(ReviewConfig(story, story.name)) as studio:
            out["cached load (new studio)"] = load(studio.url, client)
    return out


def yardsticks(story: Path) -> dict[str, float]:
    lock, cached = plan_state(story)
    start = time.perf_counter()
    compile_storyboard(story, lock=lock, is_cached=cached)
    compile_s = time.perf_counter() - start
    store = ObjectStore(store_root_for(story))
    records = [store.find_shot(s.identity) for s in
               compile_storyboard(story, lock=lock, is_cached=cached).plan.shots]
    clips = [store.path_for(t.sha256, t.ext) for r in records if r for t in r.takes]
    start = time.perf_counter()
    for clip in clips:
        extract_frame(clip, "first")
    return {"compile (storyreel plan)": compile_s,
            f"decode a frame of each of {len(clips)} takes": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--takes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        pristine = rendered(Path(tmp) / "pristine", args.shots, args.takes)
        print(f"rendered {args.shots} shots x {args.takes} takes on the simulator in "
              f"{time.perf_counter() - started:.1f} s")
        runs: dict[str, list[tuple[float, float, int]]] = {}
        sticks: dict[str, list[float]] = {}
        for repeat in range(args.repeats):
            copy = Path(tmp) / f"copy{repeat}"
            shutil.copytree(pristine.parent, copy)
            for name, value in measure(copy / pristine.name).items():
                runs.setdefault(name, []).append(value)
            for name, seconds in yardsticks(copy / pristine.name).items():
                sticks.setdefault(name, []).append(seconds)
    report(runs, sticks, args.repeats)


def report(runs: dict[str, list[tuple[float, float, int]]], sticks: dict[str, list[float]],
           repeats: int) -> None:
    compile_s = statistics.median(sticks["compile (storyreel plan)"])
    print(f"\nmedians of {repeats} runs (a browser's {CONNECTIONS} connections)")
    print(f"{'load':28} {'page':>8} {'all images':>11} {'images':>7} {'x compile':>10}")
    for name, values in runs.items():
        page = statistics.median(v[0] for v in values)
        whole = statistics.median(v[1] for v in values)
        print(f"{name:28} {page:7.2f}s {whole:10.2f}s {values[0][2]:7d} "
              f"{whole / compile_s:9.1f}x")
    print("\nyardsticks")
    for name, values in sticks.items():
        print(f"{name:40} {statistics.median(values):7.2f}s")


if __name__ == "__main__":
    main()
