"""Benchmark of continuity: an 8-hop chain on a drifting simulator, with and without colour
hold, and what grading costs.

Input: nothing (the storyboards are generated here). Output: tables on stdout.

1. A chain of 9 shots (8 hops, 5 s each) runs on the embedded simulator with `--sim-drift`:
   once as it is, once with `continuity: {color: match}`. For each, `storyreel seams`
   measures the colour drift (delta E of the mean colours) from the chain's first frame to
   the last frame of each hop, and the PSNR of every seam (the frame handed over against
   the next shot's first frame). Target: the drift with colour hold at most a quarter of
   the drift without it, every seam above 30 dB.
2. Each clip of the held chain graded again from scratch, next to a plain re-encode of the
   same clip (decode and encode with the film's settings, no grading), measured in turns in
   the same run (median of 3): the extra time grading costs per clip.

    python bench/continuity.py [--drift 0.1] [--size 640x360]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pipeline.cli import main
from pipeline.media.clip import Canvas, Clip, Piece
from pipeline.media.encode import encode_pieces
from pipeline.media.formats import FORMATS
from pipeline.media.grade import grade_clip, measure_correction
from pipeline.run.continuity import GRADE_KIND
from pipeline.store import ObjectStore, store_root_for

HOPS = 8
REPEATS = 3


def chain(hold: bool, size: tuple[int, int]) -> str:
    lines = ["version: 1\nmodel: pixverse:1@3\n",
             f"defaults: {{width: {size[0]}, height: {size[1]}, duration: 5}}\n"]
    if hold:
        lines.append("continuity: {color: match}\n")
    lines.append('shots:\n  s1: {positivePrompt: "a lighthouse on a cliff at dusk", seed: 31}\n')
    lines += [f'  s{i}: {{from: s{i - 1}, positivePrompt: "the walk goes on, part {i}", '
              f'seed: {30 + i}}}\n' for i in range(2, HOPS + 2)]
    return "".join(lines)


def invoke(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, list(args))
    if result.exit_code != 0:
        raise SystemExit(f"storyreel {' '.join(args)} failed:\n{result.stderr}")
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def run_chains(work: Path, drift: float, size: tuple[int, int]) -> dict[bool, Path]:
    stories = {}
    for hold in (False, True):
        folder = work / ("held" if hold else "plain")
        folder.mkdir()
        stories[hold] = folder / "chain.yaml"
        stories[hold].write_text(chain(hold, size), encoding="utf-8")
        started = time.perf_counter()
        invoke("run", str(stories[hold]), "--sim-latency", "0,0.05", "--sim-drift", str(drift),
               "--json")
        print(f"ran the chain {'with' if hold else 'without'} colour hold in "
              f"{time.perf_counter() - started:.1f} s")
    return stories


def print_drift(stories: dict[bool, Path]) -> None:
    measured = {hold: invoke("seams", str(story), "--json") for hold, story in stories.items()}
    hops = {hold: data["chains"][0]["hops"] for hold, data in measured.items()}
    psnrs = {hold: [s["psnr"] for s in data["seams"]] for hold, data in measured.items()}
    print("\nhop  drift (delta E) without  with colour hold   seam PSNR without  with")
    for i in range(len(hops[False])):
        seam = (f"{psnrs[False][i - 1]:>17.1f} {psnrs[True][i - 1]:>6.1f}" if i else
                f"{'(first shot)':>24}")
        print(f"{i:>3}  {hops[False][i]:>22.2f}  {hops[True][i]:>16.2f} {seam}")
    ratio = hops[True][-1] / hops[False][-1]
    print(f"chain drift: {hops[False][-1]:.2f} without, {hops[True][-1]:.2f} with colour hold "
          f"({ratio:.2f} of it; target at most 0.25)")
    print(f"lowest seam: {min(psnrs[False]):.1f} dB without, {min(psnrs[True]):.1f} dB with "
          "(target above 30)")


def print_grading_cost(story: Path, work: Path) -> None:
    store = ObjectStore(store_root_for(story))
    records = sorted((store.root / "derived").rglob(f"*.{GRADE_KIND}.json"))
    rows = []
    for record in records:  # each names the take it was graded from
        clip = store.path_for(record.name.split(".")[0], "mp4")
        grade, plain = medians(lambda: grade_clip(clip, work / "graded.mp4",
                                                  measure_correction(clip)),
                               lambda: reencode(clip, work / "plain.mp4"))
        rows.append((grade, plain))
    print(f"\ngrading, per clip ({len(rows)} clips; median of {REPEATS}, in turns with a plain "
          "re-encode of the same clip)")
    print("clip  grade (s)  plain re-encode (s)  extra (s)  ratio")
    for i, (grade, plain) in enumerate(rows, start=1):
        print(f"{i:>4}  {grade:>9.2f}  {plain:>19.2f}  {grade - plain:>9.2f}  {grade / plain:>5.2f}")
    grade = statistics.median(g for g, _ in rows)
    plain = statistics.median(p for _, p in rows)
    print(f"median: grading {grade:.2f} s a clip, {grade - plain:.2f} s more than a plain "
          f"re-encode ({plain:.2f} s), {grade / plain:.2f}x")


def reencode(clip_path: Path, out: Path) -> None:
    """Decode the clip and encode it with the film's settings: what any cut costs."""
    with Clip.open(clip_path) as clip:
        clip.index()
        canvas = Canvas.of(clip)
        encode_pieces([Piece(clip, 0, canvas.frames_in(clip))], out, FORMATS["MP4"], canvas, [])


def medians(first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(REPEATS):
        for job, spent in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            job()
            spent.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drift", type=float, default=0.1)
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="storyreel-continuity-") as folder:
        work = Path(folder)
        print(f"{HOPS}-hop chain, {width}x{height}, 5 s shots, simulator drift {args.drift}")
        stories = run_chains(work, args.drift, (width, height))
        print_drift(stories)
        print_grading_cost(stories[True], work)


if __name__ == "__main__":
    main_()
