"""The command line driven in-process for end-to-end tests.

Input: a folder and a storyboard's text; a command's arguments. Output: the storyboard's path;
the command's exit code, standard output and standard error; a run's `--json` document (on
the embedded simulator, answering within 50 ms).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pipeline.cli import main


def write_story(folder: Path, text: str) -> Path:
    """`folder/story.yaml` holding `text` (the folder is made when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    story = folder / "story.yaml"
    story.write_text(text, encoding="utf-8")
    return story


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`storyreel ARGS`: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def run_json(story: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """`storyreel run STORY --json ARGS` on a quick simulator: (exit code, the document
    or {} when it printed none, stderr)."""
    code, out, err = invoke("run", str(story), "--sim-latency", "0,0.05", "--json", *args)
    data: dict[str, Any] = json.loads(out) if out.strip() else {}
    return code, data, err


def run_ok(story: Path, *args: str) -> dict[str, Any]:
    """`run_json` for a run that must succeed: its document."""
    code, data, err = run_json(story, *args)
    assert code == 0, err
    return data
