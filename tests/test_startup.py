"""What a command loads: every start of `storyreel` pays for its imports, so the heavy ones
wait until a storyboard needs them (the loudness meter's scipy for a soundtrack, the
simulator's renderer for a run on it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
sys.argv = ["storyreel", *sys.argv[1:]]
from pipeline.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in ("scipy", "pyloudnorm", "pipeline.simulator.render")
                        if m in sys.modules)), file=sys.stderr)
"""


def loaded_by(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, check=True)
    found: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return found


def test_help_and_plan_load_no_loudness_meter_and_no_renderer(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text("version: 1\nmodel: pixverse:1@3\nshots:\n  a: {positivePrompt: a hill}\n")
    assert loaded_by("--help") == []
    assert loaded_by("plan", str(story)) == []


def test_a_run_without_a_soundtrack_loads_no_loudness_meter(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text("version: 1\nmodel: pixverse:1@3\nshots:\n  a: {positivePrompt: a hill, "
                     "width: 640, height: 360}\n")
    assert loaded_by("run", str(story), "--sim-latency", "0") == ["pipeline.simulator.render"]
