"""`storyreel simulate`: the command's options and help, and the server it starts."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import urllib.request
import uuid

import httpx
import pytest
from click.testing import CliRunner

from pipeline.simulator.app import SimulatorConfig
from pipeline.simulator.serve import banner, serving, simulate_command


def test_help_teaches_how_to_use_it() -> None:
    result = CliRunner().invoke(simulate_command(), ["--help"])
    assert result.exit_code == 0
    text = result.output
    for needle in ("simulator", "not the real service", "RUNWARE_BASE_URL", "--fail-rate",
                   "429=0.1", "--state-dir", "/_simulator/stats", "--api-key", "--latency"):
        assert needle in text


@pytest.mark.parametrize("args,message", [
    (["--latency", "1,2,3"], "A or A,B"),
    (["--latency", "soon"], "A or A,B"),
    (["--latency", "3,1"], "0 <= A <= B"),
    (["--fail-rate", "418=0.5"], "the kinds are"),
    (["--fail-rate", "429=2"], "between 0 and 1"),
    (["--fail-rate", "429=0.6", "--fail-rate", "drop=0.6"], "more than 1"),
])
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(simulate_command(), args)
    assert result.exit_code == 2 and message in result.output


def test_the_banner_says_it_is_a_simulator_and_where() -> None:
    lines = banner("http://127.0.0.1:8188", SimulatorConfig())
    assert "SIMULATOR (not the real service) at http://127.0.0.1:8188/v1" in lines[0]
    assert any("export RUNWARE_BASE_URL=http://127.0.0.1:8188/v1" in line for line in lines)


def test_the_command_serves_on_a_port_until_interrupted() -> None:
    code = ("from pipeline.simulator.serve import simulate_command; "
            "simulate_command()(['--port', '0', '--latency', '0,0'])")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "SIMULATOR" in first
        url = first.rsplit(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        body = json.dumps([{"taskType": "ping"}]).encode()
        ask = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Authorization": "Bearer any"})
        with urllib.request.urlopen(ask, timeout=10) as answer:
            assert json.load(answer) == {"data": [{"taskType": "ping", "pong": True}]}
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
    assert process.returncode == 0


def test_a_simulated_drop_logs_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serving(SimulatorConfig(rate_drop=1.0)) as served:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(served.url, json=[{"taskType": "getResponse",
                                          "taskUUID": str(uuid.uuid4())}],
                       headers={"Authorization": "Bearer k"}, timeout=10)
    assert served.app.stats.faults == {"drop": 1}
    assert not [r for r in caplog.records if r.exc_info]
