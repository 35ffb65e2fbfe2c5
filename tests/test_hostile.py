"""Every file under tests/data/hostile/ is answered with exactly its expected report, quickly
and in little memory: no storyboard, included scene or lock file can hurt the machine, and
nothing that would fail after money is spent passes `validate`.

Each `NAME.yaml` (with `NAME.lock` beside it when the lock is the hostile part, and helper
files in `_support/`) is validated by `storyreel validate NAME.yaml` in a process of its own,
whose resources are read with `os.wait4` when it ends: its peak memory (`ru_maxrss`) must stay
under the issue's 200 MB, and its CPU time under a bound that only a runaway breaks (the files
here took gigabytes and minutes before; each takes about a second now, most of it starting
Python). The process also runs under an address-space limit, so that a regression fails this
test rather than the machine.
`NAME.expected` is what it prints (`pytest --update-goldens` rewrites them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from support_goldens import Golden

from pipeline.errors import ExitCode

HOSTILE = Path(__file__).parent / "data" / "hostile"
CASES = sorted(p.name for p in HOSTILE.glob("*.yaml"))
MAX_RSS_BYTES = 200 * 2**20
MAX_CPU_SECONDS = 5.0  # the issue asks for 2 s; a busy machine, and startup (1 s), get room
RUNAWAY_SECONDS = 120  # killed past this, whatever it is doing
# The command itself, in a process of its own under an address-space limit.
COMMAND = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({2**30}, {2**30}))
sys.argv[0] = "storyreel"
from pipeline.cli import main
main()
"""
# A small process between the test and the command: a process forked from pytest starts
# with pytest's pages resident, and ru_maxrss would count them (the test process grows to
# hundreds of MB over the suite). This one is small when it starts the command, waits for
# it with os.wait4 and writes what it used as JSON; it ends with the command's exit code.
LAUNCHER = """
import json, os, subprocess, sys
command = subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[3:]])
_, status, usage = os.wait4(command.pid, 0)
command.returncode = code = os.waitstatus_to_exitcode(status)
with open(sys.argv[2], "w") as report:
    json.dump({"cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}, report)
sys.exit(code)
"""


@dataclass(frozen=True)
class Answer:
    code: int
    stdout: str
    stderr: str
    cpu_seconds: float
    peak_bytes: int


def validate_in_a_process(name: str) -> Answer:
    """`storyreel validate NAME` in a process of its own, and what it used."""
    with tempfile.TemporaryDirectory(prefix="storyreel-hostile-") as folder:
        report = Path(folder) / "usage.json"
        launcher = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER, COMMAND, str(report), "validate", name],
            cwd=HOSTILE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            out, err = launcher.communicate(timeout=RUNAWAY_SECONDS)
        finally:
            if launcher.poll() is None:  # a runaway: end it and the command under it
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.communicate()
        usage = json.loads(report.read_text(encoding="utf-8"))
    return Answer(launcher.returncode, out.decode("utf-8", errors="replace"),
                  err.decode("utf-8", errors="replace"), usage["cpu"],
                  usage["maxrss_kb"] * 1024)


def test_the_corpus_covers_each_kind_of_attack_and_has_every_expected_output() -> None:
    kinds = {name.split("-")[0] for name in CASES}
    assert {"alias", "template", "binary", "lock", "film", "frame", "image",
            "crossfade"} <= kinds
    assert sorted(p.with_suffix(".yaml").name for p in HOSTILE.glob("*.expected")) == CASES


@pytest.mark.parametrize("name", CASES)
def test_a_hostile_file_is_refused_quickly_in_little_memory_with_its_exact_report(
        name: str, golden: Golden) -> None:
    answer = validate_in_a_process(name)
    assert answer.code == ExitCode.USAGE, answer.stderr
    assert answer.stdout == ""
    golden.check((HOSTILE / name).with_suffix(".expected"), answer.stderr)
    assert answer.peak_bytes < MAX_RSS_BYTES, f"{answer.peak_bytes / 2**20:.0f} MB"
    assert answer.cpu_seconds < MAX_CPU_SECONDS, f"{answer.cpu_seconds:.2f} s of CPU"
