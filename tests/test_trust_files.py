"""What a run says when it cannot or must not go on: a file or folder in the way is a
one-line error (exit 2: your files; exit 1: the machine's, like a full disk), never a
traceback; a run never spends on Runware without asking; and its messages say it right."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from support_cli import invoke, write_story
from support_processes import STORYREEL, simulator, stop

from pipeline.simulator.serve import simulate_command
from pipeline.store import ObjectStore, TaskPhase, read_lock, read_tasks

STORY = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
shots:
  a: {positivePrompt: "first shot on a hill", seed: 11}
  b: {from: a, positivePrompt: "second shot by a river", seed: 12}
"""
REPO = Path(__file__).resolve().parent.parent


def write(folder: Path, text: str = STORY) -> Path:
    return write_story(folder, text)


def assert_one_clear_error(err: str, *needles: str) -> None:
    """The error is one line (and maybe a hint), after at most the backend banner."""
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith("backend:")]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), err
    for needle in needles:
        assert needle in lines[0], err


# -- files in the way ----------------------------------------------------------------------


def test_a_file_where_the_cache_folder_goes_is_a_one_line_error(tmp_path: Path) -> None:
    story = write(tmp_path)
    (tmp_path / ".storyreel").write_text("not a folder")
    code, _, err = invoke("run", str(story))
    assert code == 2
    assert_one_clear_error(err, "cannot use the cache folder", "a file is in the way")


def test_a_lock_that_is_a_folder_is_a_one_line_error(tmp_path: Path) -> None:
    story = write(tmp_path)
    (tmp_path / "story.lock").mkdir()
    for command in ("run", "plan"):
        code, _, err = invoke(command, str(story))
        assert code == 2
        assert_one_clear_error(err, "cannot read the lock file", "it is a folder, not a file")


def test_a_film_path_that_is_a_folder_stops_the_run_before_it_spends(tmp_path: Path) -> None:
    story = write(tmp_path)
    (tmp_path / "story.mp4").mkdir()
    code, _, err = invoke("run", str(story))
    assert code == 2
    assert_one_clear_error(err, "film.file", "story.mp4 is a folder")
    assert read_tasks(ObjectStore(tmp_path / ".storyreel").journal_path) == []


READ_ONLY_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1"'


def run_in_read_only(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`storyreel ARGS` while `folder` is read-only. Root writes through permissions, so for
    root the folder is mounted read-only in a mount namespace of the command's own."""
    command = [*STORYREEL, *args]
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=120)
        finally:
            folder.chmod(0o755)
    if shutil.which("unshare") is None:
        pytest.skip("root, and no unshare to make a read-only folder with")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", READ_ONLY_MOUNT, "sh", str(folder)],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a folder read-only here: {probe.stderr.strip()}")
    script = READ_ONLY_MOUNT + ' && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder), *command],
                          capture_output=True, text=True, timeout=120)


def test_a_read_only_folder_is_a_one_line_error(tmp_path: Path) -> None:
    folder = tmp_path / "film"
    folder.mkdir()
    story = write(folder)
    done = run_in_read_only(folder, "run", str(story))
    assert done.returncode == 2, done.stderr
    assert_one_clear_error(done.stderr, "cannot")
    assert "read-only" in done.stderr or "permission denied" in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["story.yaml"]


def limit_file_size() -> None:
    """Files this process writes stop at 60 kB: a full disk, for a clip of a few 100 kB."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))


@pytest.mark.slow
def test_a_full_disk_while_storing_a_take_is_a_one_line_error_and_loses_nothing(
        tmp_path: Path) -> None:
    story = write(tmp_path / "film") if (tmp_path / "film").mkdir() is None else tmp_path
    with simulator(tmp_path / "simulator", latency=(0.1, 0.2)) as sim:
        done = subprocess.run([*STORYREEL, "run", str(story), "--backend", "runware", "-y"],
                              capture_output=True, text=True, env=sim.env(),
                              preexec_fn=limit_file_size, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "failed: a: cannot store its take, frames or records in " in done.stderr
    assert "file too large" in done.stderr
    assert "the run is incomplete: see the failed shots above" in done.stderr
    # The task was paid for and answered: it stays open, for the next run to download.
    tasks = read_tasks(ObjectStore(story.parent / ".storyreel").journal_path)
    assert [(t.shot_key, t.state) for t in tasks] == [("a", TaskPhase.SUBMITTED)]


def test_simulate_on_a_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(simulate_command(), ["--port", str(port)])
    assert result.exit_code == 2
    assert_one_clear_error(result.output, f"port {port} on 127.0.0.1 is in use", "--port 0")


# -- spending ------------------------------------------------------------------------------


def test_runware_without_a_terminal_and_without_yes_refuses_to_spend(tmp_path: Path) -> None:
    """As package managers do: no terminal to ask on, no -y, no spending."""
    story = write(tmp_path)
    env = {"RUNWARE_API_KEY": "not-a-real-key", "RUNWARE_BASE_URL": "http://127.0.0.1:9/v1"}
    code, _, err = invoke("run", str(story), "--backend", "runware", env=env)
    assert code == 2
    assert "refusing to spend an estimated $0.300 without asking" in err
    assert "pass -y (--yes) to go ahead" in err
    assert not (tmp_path / ".storyreel").exists()


# -- saying it right -----------------------------------------------------------------------


HOLDER = """
import sys
from pathlib import Path
from pipeline.store import ObjectStore
with ObjectStore(Path(sys.argv[1])).exclusive("other.yaml"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_another_run_using_the_folder_is_named_with_its_storyboard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path)
    monkeypatch.chdir(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / ".storyreel")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        code, _, err = invoke("run", "story.yaml")
    finally:
        holder.communicate("done\n", timeout=30)
        stop(holder)
    assert code == 1
    assert f"another storyreel run is using the cache of story.yaml ({tmp_path}" in err
    assert f"process {holder.pid} (running other.yaml) holds" in err


def test_output_that_is_not_a_terminal_keeps_long_paths_whole(tmp_path: Path) -> None:
    folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 3) / "and-another-one-inside"
    folder.mkdir(parents=True)
    story = write(folder)
    code, _, err = invoke("run", str(story), "--sim-latency", "0,0.05")
    assert code == 0, err
    film = (folder / "story.mp4").resolve()
    assert f"film: {film} (copy)" in err.splitlines()


def test_the_simulator_run_speaks_of_simulated_cost(tmp_path: Path) -> None:
    code, _, err = invoke("run", str(write(tmp_path)), "--sim-latency", "0,0.05")
    assert code == 0, err
    assert "no cost" not in err
    assert "; simulated cost $0.300; lock file updated" in err


SHARED = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
variants:
  mood: [calm, stormy]
shots:
  a: {positivePrompt: "a hill at dawn", seed: 11}
  b: {from: a, positivePrompt: "a river, {{ mood }}", seed: 12}
"""


def test_the_lock_counts_a_shared_shots_cost_once_and_says_who_paid(tmp_path: Path) -> None:
    story = write(tmp_path, SHARED)
    code, out, err = invoke("run", str(story), "--sim-latency", "0,0.05", "--json")
    assert code == 0, err
    lock = read_lock(tmp_path / "story.lock").shots
    assert lock["a[mood=calm]"].cost == pytest.approx(0.15)
    assert lock["a[mood=calm]"].paid_by is None
    assert lock["a[mood=stormy]"].cost is None
    assert lock["a[mood=stormy]"].paid_by == "a[mood=calm]"
    paid = sum(entry.cost or 0.0 for entry in lock.values())
    assert paid == pytest.approx(json.loads(out)["cost"]) == pytest.approx(0.45)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on: `simulate` reads every option, then cannot bind."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("rate", ["503=0.1", "rate_503=0.1"])
def test_run_and_simulate_accept_the_same_fault_rates(tmp_path: Path, busy_port: int,
                                                      rate: str) -> None:
    served = CliRunner().invoke(simulate_command(), ["--port", str(busy_port),
                                                     "--fail-rate", rate])
    assert "is in use" in served.output  # the option was read, then the port refused
    for option in ("--sim-fail-rate", "--sim-fault"):
        code, _, err = invoke("run", str(write(tmp_path)), "--sim-latency", "0",
                              option, rate)
        assert code == 0, err


@pytest.mark.parametrize("latency", ["5,1", "1,2,3", "-1"])
def test_run_and_simulate_refuse_the_same_latencies_alike(tmp_path: Path, latency: str) -> None:
    served = CliRunner().invoke(simulate_command(), ["--latency", latency])
    code, _, err = invoke("run", str(write(tmp_path)), "--sim-latency", latency)
    assert served.exit_code == code == 2
    reason = served.output.strip().splitlines()[-1].split("': ", 1)[1]
    assert err.strip().endswith(reason) and "Traceback" not in err
