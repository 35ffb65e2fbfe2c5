"""Benchmark of the storyboard stages on a 10,000-shot storyboard, next to a bare YAML parse.

Generates a storyboard of 5,000 shots in 2 variants (10,000 expanded shots): chains carried
by `from`, fan-out from one shot to several, bridge shots whose frames come from two other
shots (`{shot: ...}` images), takes with `pick`, and templated prompts and seeds. Two cases:
`single` (every shot on PixVerse V4.5) and `mixed` (each group of ten shots spans nine
models, its chains crossing from one model to the next, with per-model sizes, lengths,
provider settings and sound). For each, in the same run, times a bare `yaml.load` with the
C loader (the yardstick) and each stage of ours on the same text (median of 3), and measures
the peak memory of one whole pass. Target: the stages together within 5x the bare parse.

    python bench/plan.py [--shots 5000] [--variants 2] [--case single|mixed|both]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipeline.errors import Problem, StoryboardError
from pipeline.language.catalog import load_catalog
from pipeline.language.graph import ShotGraph, build_graph
from pipeline.language.load import Document, parse_document
from pipeline.language.model import Storyboard, build_storyboard
from pipeline.language.plan import PlanInputs, PlannedShot, make_plan
from pipeline.language.schema import check_document
from pipeline.language.templates import (
    ExpandedShot,
    Renderer,
    expand_shots,
    iter_variants,
)

REPEATS = 3
GROUP = 10  # shots per group; see `group_yaml`
T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    stage: str
    wall: float  # seconds, median of REPEATS
    cpu: float  # seconds of this process's CPU time, median of REPEATS


def bridge(g: str) -> str:
    """The frame images of a group's bridge shot: d's last frame first, e's first frame last."""
    return f"""\
    inputs:
      frameImages:
        - {{image: {{shot: {g}_d, frame: last}}, frame: first}}
        - {{image: {{shot: {g}_e, frame: first}}, frame: last}}
"""


def group_yaml(n: int) -> str:
    """Ten shots: a chain of four, a fan-out of two, a bridge, a shot with takes, and a chain
    of two that does not depend on the variant (so both variants share its requests)."""
    g = f"g{n}"
    carry = f"    from: g{n - 1}_h\n" if n % 10 else ""
    return f"""\
  {g}_a:
    positivePrompt: "{{{{ subject }}}} {n} on a {{{{ sea }}}} sea, {{{{ look }}}}"
    seed: "{{{{ base + {n} }}}}"
{carry}    providerSettings: {{pixverse: {{cameraMovement: crane_up}}}}
  {g}_b:
    from: {g}_a
    positivePrompt: "the traveler nears the lighthouse {n}, {{{{ look }}}}"
  {g}_c:
    from: {g}_b
    positivePrompt: "waves explode below the tower {n} on a {{{{ sea }}}} sea"
    duration: 8
  {g}_d:
    from: {g}_c
    positivePrompt: "the lamp room glows {n}, {{{{ look }}}}"
  {g}_e:
    from: {{shot: {g}_a, frame: first}}
    positivePrompt: "gulls wheel around the cliff {n}"
    seed: {n}
  {g}_f:
    from: {g}_a
    positivePrompt: "the keeper watches the {{{{ sea }}}} sea {n}"
  {g}_g:
    positivePrompt: "{{{{ subject }}}} reaches the door {n}, {{{{ look }}}}"
{bridge(g)}  {g}_h:
    from: {g}_g
    positivePrompt: "the door opens on a {{{{ sea }}}} night {n}"
    numberResults: 2
    pick: 2
  {g}_i:
    positivePrompt: "a weathered lighthouse door {n}, plain and still"
    seed: {n + 7}
  {g}_j:
    from: {g}_i
    positivePrompt: "the door {n} in close-up, {{{{ look }}}}"
"""


def mixed_group_yaml(n: int) -> str:
    """Ten shots on nine models: a chain PixVerse V5 -> Kling 2.1 Master -> Veo 3.1 Fast (with
    sound) -> Hailuo 2.3, fan-out to Seedance and Wan, a Vidu bridge between Hailuo's last
    frame and PixVerse's first, takes with pick, and a Seedance Pro Fast -> Kling Standard pair."""
    g = f"g{n}"
    carry = f"    from: g{n - 1}_h\n" if n % 10 else ""
    return f"""\
  {g}_a:
    model: pixverse:1@5
    positivePrompt: "{{{{ subject }}}} {n} on a {{{{ sea }}}} sea, {{{{ look }}}}"
    seed: "{{{{ base + {n} }}}}"
{carry}    width: 1280
    height: 720
    duration: 5
    providerSettings: {{pixverse: {{cameraMovement: crane_up, style: 3d_animation}}}}
  {g}_b:
    model: klingai:5@3
    from: {g}_a
    positivePrompt: "the traveler nears the lighthouse {n}, {{{{ look }}}}"
    negativePrompt: low detail, blurry
    width: 1920
    height: 1080
  {g}_c:
    model: google:3@3
    from: {g}_b
    positivePrompt: "the keeper calls out over a {{{{ sea }}}} sea {n}"
    resolution: 1080p
    duration: 8
    providerSettings: {{google: {{generateAudio: true}}}}
  {g}_d:
    model: minimax:4@1
    from: {g}_c
    positivePrompt: "the keeper's face in the lamp light {n}, {{{{ look }}}}"
    width: 1366
    height: 768
    duration: 6
  {g}_e:
    model: bytedance:2@1
    from: {{shot: {g}_a, frame: first}}
    positivePrompt: "gulls wheel around the cliff {n}"
    resolution: 1080p
    duration: 7.5
    seed: {n + 1}
  {g}_f:
    model: alibaba:wan@2.6
    from: {g}_a
    positivePrompt: "the keeper watches the {{{{ sea }}}} sea {n}"
    resolution: 720p
    providerSettings: {{alibaba: {{audio: true}}}}
  {g}_g:
    model: vidu:1@1
    positivePrompt: "{{{{ subject }}}} reaches the door {n}, {{{{ look }}}}"
{bridge(g)}  {g}_h:
    model: pixverse:1@5
    from: {g}_g
    positivePrompt: "the door opens on a {{{{ sea }}}} night {n}"
    resolution: 720p
    numberResults: 2
    pick: 2
  {g}_i:
    model: bytedance:2@2
    positivePrompt: "a weathered lighthouse door {n}, plain and still"
    resolution: 480p
    duration: 3.2
    seed: {n + 7}
  {g}_j:
    model: klingai:5@1
    from: {g}_i
    positivePrompt: "the door {n} in close-up, {{{{ look }}}}"
    width: 1280
    height: 720
"""


VARS = """\
vars:
  subject: a cloaked traveler, cape snapping, lantern swaying
  look: dramatic natural lighting, painterly realism, high detail
  base: 1000
"""
SINGLE_DEFAULTS = """\
model: pixverse:1@3
defaults:
  width: 1280
  height: 720
  duration: 5
  negativePrompt: low detail, blurry, text, watermark, logo
  providerSettings:
    pixverse: {style: 3d_animation, motionMode: normal}
"""
MIXED_DEFAULTS = """\
defaults:
  outputQuality: 90
"""


def storyboard_yaml(shots: int, variants: int, mixed: bool = False) -> str:
    """The single-model storyboard, or (`mixed`) the one whose groups span nine models."""
    seas = ", ".join(f"sea{i}" for i in range(variants))
    name, defaults, group = (("bench-mixed", MIXED_DEFAULTS, mixed_group_yaml) if mixed
                             else ("bench", SINGLE_DEFAULTS, group_yaml))
    head = f"version: 1\nname: {name}\n{defaults}{VARS}variants:\n  sea: [{seas}]\nshots:\n"
    return head + "".join(group(n) for n in range(shots // GROUP))


def median_time(stage: str, run: Callable[[], T]) -> tuple[Timing, T]:
    """Median wall and CPU time of REPEATS runs, and the last result. Each run starts from a
    collected heap, so none pays for the garbage of the one before. CPU time is shown too
    because wall time on a shared machine also counts other processes."""
    walls: list[float] = []
    cpus: list[float] = []
    result: Any = None
    for _ in range(REPEATS):
        result = None
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(stage, statistics.median(walls), statistics.median(cpus)), result


def checked(found: tuple[T, list[Problem]] | list[Problem]) -> Any:
    problems = found if isinstance(found, list) else found[1]
    errors = [p for p in problems if not p.warning]
    if errors:
        raise StoryboardError(errors)
    return found if isinstance(found, list) else found[0]


def run_stages(text: str, path: Path) -> tuple[list[Timing], int]:
    """Time each stage on the previous stage's output; the number of planned shots."""
    timings: list[Timing] = []

    def stage(name: str, run: Callable[[], T]) -> T:
        timing, result = median_time(name, run)
        timings.append(timing)
        return result

    doc: Document = stage("load (parse_document)", lambda: parse_document(text, path.name))
    stage("schema (check_document)", lambda: checked(check_document(doc)))
    board: Storyboard = stage("model (build_storyboard)",
                              lambda: checked(build_storyboard(doc, path, {})))
    shots: list[ExpandedShot] = stage("templates (expand)", lambda: expand(board))
    graph: ShotGraph = stage("graph (build_graph)", lambda: checked(build_graph(shots)))
    inputs = PlanInputs(load_catalog(), board.model)
    planned: list[PlannedShot] = stage(
        "plan (make_plan)", lambda: checked(make_plan(board.name, graph, inputs)))
    return timings, len(planned)


def expand(board: Storyboard) -> list[ExpandedShot]:
    variants = checked(iter_variants(board))
    shots: list[ExpandedShot] = checked(expand_shots(board, variants, Renderer()))
    return shots


def whole_pass(text: str, path: Path) -> int:
    doc = parse_document(text, path.name)
    checked(check_document(doc))
    board = checked(build_storyboard(doc, path, {}))
    graph = checked(build_graph(expand(board)))
    planned: list[PlannedShot] = checked(
        make_plan(board.name, graph, PlanInputs(load_catalog(), board.model)))
    return len(planned)


def peak_memory(text: str, path: Path) -> int:
    """Peak bytes allocated by Python during one whole pass (tracemalloc)."""
    tracemalloc.start()
    try:
        whole_pass(text, path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def report(timings: list[Timing], yardstick: Timing, planned: int, peak: int, size: int,
           case: str = "single") -> str:
    total = Timing("total", sum(t.wall for t in timings), sum(t.cpu for t in timings))
    width = max(len(t.stage) for t in timings) + 2
    lines = [f"{case}: {size / 1e6:.1f} MB of YAML, {planned} planned shots; "
             f"median of {REPEATS} runs", "",
             f"{'stage':<{width}}{'wall s':>9}{'x parse':>9}{'cpu s':>9}{'x parse':>9}"]
    for t in [*timings, total, yardstick]:
        if t is total or t is yardstick:
            lines.append("-" * (width + 36))
        lines.append(f"{t.stage:<{width}}{t.wall:>9.3f}{t.wall / yardstick.wall:>9.2f}"
                     f"{t.cpu:>9.3f}{t.cpu / yardstick.cpu:>9.2f}")
    lines += ["", f"ratio total / yardstick: {total.wall / yardstick.wall:.2f} wall, "
              f"{total.cpu / yardstick.cpu:.2f} cpu (target <= 5)",
              f"peak memory of one pass (tracemalloc): {peak / 2**20:.0f} MiB"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shots", type=int, default=5000, help="shots per variant")
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--case", choices=["single", "mixed", "both"], default="both",
                        help="single: every shot on one model; mixed: nine models, chained")
    args = parser.parse_args()
    cases = ["single", "mixed"] if args.case == "both" else [args.case]
    with tempfile.TemporaryDirectory(prefix="storyreel-bench-") as folder:
        for case in cases:
            path = Path(folder) / f"bench-{case}.yaml"
            path.write_text(storyboard_yaml(args.shots, args.variants, case == "mixed"),
                            encoding="utf-8")
            text = path.read_text(encoding="utf-8")
            yardstick, _ = median_time("yaml.load (CSafeLoader)",
                                       lambda: yaml.load(text, Loader=yaml.CSafeLoader))
            timings, planned = run_stages(text, path)
            peak = peak_memory(text, path)
            print(report(timings, yardstick, planned, peak, len(text.encode("utf-8")), case))
            print()


if __name__ == "__main__":
    main()
