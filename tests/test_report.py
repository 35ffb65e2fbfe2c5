"""What people see: the plan table, graph diagrams and run progress."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from pipeline.language.compile import compile_storyboard
from pipeline.report.graph import graph_dot, graph_mermaid
from pipeline.report.plan import print_plan
from pipeline.report.progress import LiveReporter, PlainReporter
from pipeline.run.scheduler import Job, JobStatus

STORY = """\
version: 1
model: pixverse:1@3
defaults: {width: 1280, height: 720}
shots:
  a: {positivePrompt: "shot a", seed: 1, duration: 8}
  b: {from: a, positivePrompt: "shot b", seed: 2, numberResults: 3, pick: 2}
  c: {positivePrompt: "shot c", seed: 3, width: 640, height: 360}
"""


def compiled(tmp_path: Path) -> object:
    story = tmp_path / "s.yaml"
    story.write_text(STORY)
    return compile_storyboard(story)


def test_plan_table_shows_size_duration_takes_cost_and_status(tmp_path: Path) -> None:
    out = io.StringIO()
    print_plan(compiled(tmp_path).plan, Console(file=out, width=160))  # type: ignore[attr-defined]
    text = out.getvalue()
    assert "1280x720" in text and "8s" in text and "3 (pick 2)" in text
    assert "$0.299" in text and "$0.450" in text and "$0.150~" in text  # 360p is an estimate
    assert "estimated cost $0.899" in text
    assert "critical path: a -> b" in text


def test_graph_diagrams_have_an_edge_per_frame_reference(tmp_path: Path) -> None:
    graph = compiled(tmp_path).graph  # type: ignore[attr-defined]
    assert 'n0 -->|last| n1' in graph_mermaid(graph)
    assert '"a" -> "b" [label="last"];' in graph_dot(graph)


def job(label: str, status: JobStatus, error: str | None = None) -> Job:
    j = Job(identity=label * 8, shots=[], parents=[], priority=1.0, status=status, error=error)
    j.shots = [type("S", (), {"key": label})()]  # type: ignore[list-item]
    return j


def test_plain_progress_is_one_line_per_change_with_the_cause() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out, clock=iter([0.0, 1.5, 2.0]).__next__)
    reporter.update(job("b", JobStatus.SKIPPED, "a failed"))
    reporter.note("stitching film.mp4")
    assert out.getvalue() == "[    1.5s] b: skipped: a failed\n[    2.0s] stitching film.mp4\n"


def test_live_progress_shows_active_shots_and_totals() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with LiveReporter(console, total=2) as live:
        live.update(job("a", JobStatus.RENDERING))
        done = job("b", JobStatus.DONE)
        done.cost = 0.15
        live.update(done)
        live.update(job("c", JobStatus.FAILED, "refused"))
    text = out.getvalue()
    assert "rendering" in text
    assert "1/2 shots done" in text and "$0.150" in text
    assert "failed" in text and "c: refused" in text
