"""Every file under tests/data/hostile/ is answered with exactly its expected report, quickly
and in little memory: no storyboard, included scene or lock file can hurt the machine, and
nothing that would fail after money is spent passes `validate`.

Each `NAME.yaml` (with `NAME.lock` beside it when the lock is the hostile part, and helper
files in `_support/`) is validated by `storyreel validate NAME.yaml` in a process of its own,
whose resources are read with `os.wait4` when it ends: its peak memory (`ru_maxrss`) must stay
under the issue's 200 MB, and the CPU time of its answer (from the moment the command has its
modules loaded to its exit) under the issue's 2 s (the files here took gigabytes and minutes
before). The whole process's CPU time, Python's start and the imports included, has a looser
bound that only a runaway breaks, and the process runs under an address-space limit, so that
a regression fails this test rather than the machine.
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
MAX_ANSWER_SECONDS = 2.0  # CPU, from the command's modules loaded to its exit
MAX_CPU_SECONDS = 5.0  # CPU of the whole process: Python's start and the imports get room
RUNAWAY_SECONDS = 120  # killed past this, whatever it is doing
# The command itself, in a process of its own under an address-space limit. The modules
# every answer needs are loaded before the clock starts; the answer's CPU time is written
# to the file named by HOSTILE_ANSWER_FILE when the command exits.
COMMAND = f"""
import atexit, os, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({2**30}, {2**30}))
sys.argv[0] = "storyreel"
from pipeline.cli import main
import pipeline.language.compile, pipeline.store.lock_reader
start = time.process_time()
def record():
    with open(os.environ["HOSTILE_ANSWER_FILE"], "w") as answer:
        answer.write(repr(time.process_time() - start))
atexit.register(record)
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
    cpu_seconds: float  # the whole process
    answer_seconds: float  # CPU from the command's modules loaded to its exit
    peak_bytes: int


def validate_in_a_process(name: str) -> Answer:
    """`storyreel validate NAME` in a process of its own, and what it used."""
    with tempfile.TemporaryDirectory(prefix="storyreel-hostile-") as folder:
        report = Path(folder) / "usage.json"
        timing = Path(folder) / "answer.txt"
        launcher = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER, COMMAND, str(report), "validate", name],
            cwd=HOSTILE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, env={**os.environ, "HOSTILE_ANSWER_FILE": str(timing)})
        try:
            out, err = launcher.communicate(timeout=RUNAWAY_SECONDS)
        finally:
            if launcher.poll() is None:  # a runaway: end it and the command under it
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.communicate()
        usage = json.loads(report.read_text(encoding="utf-8"))
        answered = float(timing.read_text(encoding="utf-8"))
    return Answer(launcher.returncode, out.decode("utf-8", errors="replace"),
                  err.decode("utf-8", errors="replace"), usage["cpu"], answered,
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
    assert answer.answer_seconds < MAX_ANSWER_SECONDS, f"{answer.answer_seconds:.2f} s"
    assert answer.cpu_seconds < MAX_CPU_SECONDS, f"{answer.cpu_seconds:.2f} s of CPU in all"
