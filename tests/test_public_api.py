"""The Python API (`import pipeline as storyreel`): what a script or a notebook gets is what
the command line does, with the same checks before anything is spent."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support_cli import write_story

import pipeline as storyreel
from pipeline.cli import main
from pipeline.store import read_tasks

STORY = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
shots:
  a: {positivePrompt: "a lighthouse at dusk", seed: 21}
  b: {from: a, positivePrompt: "the keeper climbs the stairs", seed: 22}
film:
  shots: [a, b]
"""


def write(folder: Path, text: str = STORY) -> Path:
    return write_story(folder, text)


def test_every_public_name_resolves_and_says_what_it_is() -> None:
    for name in storyreel.__all__:
        value = getattr(storyreel, name)
        assert inspect.getdoc(value), f"{name} has no docstring"
    assert set(storyreel.__all__) <= set(dir(storyreel))
    with pytest.raises(AttributeError):
        _ = storyreel.scheduler  # private parts are not reached through the package


def test_no_public_name_is_shadowed_by_a_module_of_the_package() -> None:
    """Importing `pipeline.X` sets the package's attribute X to that module, so a public
    function named like a module would stop being callable once the module is loaded."""
    package = Path(storyreel.__file__).parent
    modules = {p.stem for p in package.glob("*.py")} | {
        p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert modules & set(storyreel.__all__) == set()


def test_importing_the_package_loads_no_video_or_http_library() -> None:
    code = ("import sys, pipeline; "
            "print([m for m in ('av', 'httpx', 'numpy', 'jinja2') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_plan_is_what_the_command_line_plans(tmp_path: Path) -> None:
    story = write(tmp_path)
    planned = storyreel.plan(story)
    cli = CliRunner().invoke(main, ["plan", str(story), "--json"])
    assert cli.exit_code == 0, cli.stderr
    assert planned.to_json() == json.loads(cli.stdout)
    assert [s.reason for s in planned.shots] == [storyreel.Reason.NEW] * 2
    assert planned.shot("b").needs == ("a",)


def test_a_bad_storyboard_raises_every_problem_at_its_line(tmp_path: Path) -> None:
    story = write(tmp_path, STORY.replace("seed: 22", "seed: -5").replace(
        "from: a", "from: nowhere"))
    with pytest.raises(storyreel.StoryboardError) as caught:
        storyreel.compile(story)
    rendered = caught.value.render()
    assert "story.yaml:6:" in rendered
    assert "nowhere" in rendered and "-5" in rendered
    assert isinstance(caught.value, storyreel.StoryreelError)


def test_run_makes_the_film_writes_the_lock_and_a_second_run_pays_nothing(
        tmp_path: Path) -> None:
    story = write(tmp_path)
    seen: list[str] = []

    class Listener:
        def update(self, job: object) -> None:
            seen.append(str(getattr(job, "status")))

        def note(self, message: str) -> None:
            seen.append(message)

    estimate = storyreel.plan(story).estimated_cost
    first = storyreel.render(story, reporter=Listener())
    assert first.complete and first.simulated
    assert estimate > 0 and first.cost == pytest.approx(estimate)
    assert [s.status for s in first.shots] == [storyreel.JobStatus.DONE] * 2
    film = first.films[0].path
    assert film is not None and film.is_file() and film.parent == tmp_path
    assert "done" in seen
    lock = storyreel.read_lock(story)
    assert {k: e.seed for k, e in lock.shots.items()} == {"a": 21, "b": 22}
    assert storyreel.read_lock(tmp_path / "story.lock") == lock
    assert {k: e.task_uuid for k, e in lock.shots.items()} == {
        s.key: s.task_uuid for s in first.shots}
    again = storyreel.render(story)
    assert again.complete and again.cost == 0
    assert [s.status for s in again.shots] == [storyreel.JobStatus.CACHED] * 2
    assert [s.reason for s in storyreel.plan(story).shots] == [storyreel.Reason.CACHED] * 2


def test_runware_is_not_paid_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("RUNWARE_API_KEY", "k" * 32)
    story = write(tmp_path)
    with pytest.raises(storyreel.StoryreelError) as caught:
        storyreel.render(story, backend="runware")
    assert "refusing to spend an estimated $" in str(caught.value)
    assert "yes=True" in caught.value.render()
    assert "k" * 32 not in caught.value.render()
    journal = tmp_path / ".storyreel" / "journal.sqlite"
    assert not journal.exists() or read_tasks(journal) == []


def test_a_budget_that_cannot_be_kept_is_refused_before_the_run(tmp_path: Path) -> None:
    story = write(tmp_path, "version: 1\nmodel: klingai:5@2\nshots:\n  a:\n"
                  "    positivePrompt: mist on a lake\n"
                  "    inputs: {frameImages: [https://example.com/lake.png]}\n")
    assert storyreel.plan(story).unpriced == ["a"]
    with pytest.raises(storyreel.StoryreelError, match="no published price for a"):
        storyreel.render(story, max_cost=1.0)
    assert not (tmp_path / ".storyreel" / "journal.sqlite").exists()  # nothing submitted


def test_an_unknown_backend_names_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(storyreel.StoryreelError) as caught:
        storyreel.render(write(tmp_path), backend="local")
    assert "simulator" in caught.value.render() and "runware" in caught.value.render()


def test_inside_a_running_loop_run_says_to_await_render_async(tmp_path: Path) -> None:
    story = write(tmp_path)

    async def notebook_cell() -> storyreel.RunSummary:
        with pytest.raises(storyreel.StoryreelError) as caught:
            storyreel.render(story)
        assert "render_async" in caught.value.render()
        return await storyreel.render_async(story)

    summary = asyncio.run(notebook_cell())
    assert summary.complete and len(summary.films) == 1
