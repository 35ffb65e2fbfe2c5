"""What people see: the plan table, graph diagrams and run progress."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from pipeline.language.compile import compile_storyboard
from pipeline.language.plan import FilmPlan
from pipeline.report.graph import graph_dot, graph_mermaid
from pipeline.report.plan import print_plan
from pipeline.report.progress import LiveReporter, PlainReporter
from pipeline.report.summary import incomplete_error, summary_lines
from pipeline.run.films import FilmOutcome, FilmStatus
from pipeline.run.scheduler import Job, JobStatus
from pipeline.run.summary import RunSummary, ShotOutcome

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


def outcome(key: str, status: JobStatus, error: str | None = None) -> ShotOutcome:
    paid = 0.15 if status is JobStatus.DONE else None
    return ShotOutcome(id=key, key=key, variant={}, status=status, task_uuid="t-" + key,
                       seed=1, cost=paid, paid_by=None, path=None, error=error)


def film_outcome(status: FilmStatus, error: str | None = None) -> FilmOutcome:
    film = FilmPlan(variant={}, keys=("a", "b"), transition="cut", seconds=0.0,
                    file="story.mp4")
    return FilmOutcome(film, status, error=error)


def test_a_run_where_only_the_film_failed_points_at_the_film() -> None:
    summary = RunSummary("story", (outcome("a", JobStatus.DONE), outcome("b", JobStatus.CACHED)),
                         (film_outcome(FilmStatus.FAILED, "cannot write the film story.mp4"),),
                         {"videoInference": 1}, lock_changed=True, simulated=False)
    error = incomplete_error(summary)
    assert error is not None
    assert error.message == "the run is incomplete: see the film that failed above"
    assert summary_lines(summary) == [
        "film: cannot write the film story.mp4",
        "1 generated, 1 cached; 1 API requests; cost $0.150; lock file updated"]


def test_a_run_with_failed_shots_points_at_them_and_a_complete_one_has_no_error() -> None:
    failed = RunSummary("story", (outcome("a", JobStatus.FAILED, "refused"),),
                        (film_outcome(FilmStatus.NOT_MADE, "not made: a did not finish"),),
                        {}, lock_changed=False, simulated=True)
    error = incomplete_error(failed)
    assert error is not None and error.message.endswith("see the failed shots above")
    assert "failed: a: refused" in summary_lines(failed)
    done = RunSummary("story", (outcome("a", JobStatus.DONE),), (), {}, lock_changed=False,
                      simulated=True)
    assert incomplete_error(done) is None
    assert summary_lines(done)[-1].endswith("; simulated cost $0.150; lock file unchanged")
