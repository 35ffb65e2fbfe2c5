"""The simulator drifts like a real model when asked: each clip's colour shifts by RATE over
its length and its last frames smear; given frames stay as they were given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.media.frames import extract_frame
from pipeline.media.metrics import colour_drift, psnr, sharpness
from pipeline.simulator.app import SimulatorConfig
from pipeline.simulator.render import RenderSpec, render_clip
from pipeline.simulator.serve import banner, simulate_command

PROMPT = "a lighthouse on a cliff above a stormy sea"


def frames_of(path: Path, *which: int) -> list[np.ndarray]:
    return [np.asarray(extract_frame(path, i).convert("RGB")) for i in which]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    folder = tmp_path_factory.mktemp("drift")
    out = {}
    for rate in (0.0, 0.1, 0.2):
        out[rate] = folder / f"drift-{rate}.mp4"
        render_clip(RenderSpec(640, 360, 5, PROMPT, 7, drift=rate), out[rate])
    return out


def test_the_colour_drifts_by_the_rate_over_the_clip(clips: dict[float, Path]) -> None:
    drift = {rate: colour_drift(*frames_of(path, 0, 100)) for rate, path in clips.items()}
    assert drift[0.2] > 1.6 * drift[0.1] and drift[0.1] > drift[0.0] + 3
    first, last = frames_of(clips[0.0], 0)[0], frames_of(clips[0.2], 0)[0]
    assert psnr(first, last) > 40  # the first frame has not drifted yet


def test_the_last_quarter_second_smears_and_the_frames_before_do_not(
    clips: dict[float, Path],
) -> None:
    plain, smeared = clips[0.0], clips[0.1]
    before, end = (sharpness(f) for f in frames_of(smeared, 110, 119))
    assert end < 0.5 * before
    assert before == pytest.approx(sharpness(frames_of(plain, 110)[0]), rel=0.3)


def test_given_frames_stay_as_given(tmp_path: Path) -> None:
    first = Image.new("RGB", (640, 360), (40, 90, 160))
    last = Image.new("RGB", (640, 360), (200, 120, 40))
    out = tmp_path / "bridge.mp4"
    render_clip(RenderSpec(640, 360, 5, PROMPT, 7, first_frame=first, last_frame=last,
                           drift=0.3), out)
    got_first, got_last = frames_of(out, 0, -1)
    assert psnr(got_first, np.asarray(first)) > 35
    assert psnr(got_last, np.asarray(last)) > 35


def test_the_rate_is_checked() -> None:
    with pytest.raises(ValueError, match="drift"):
        RenderSpec(640, 360, 5, PROMPT, 7, drift=1.5)


def test_simulate_takes_the_rate_and_says_so() -> None:
    result = CliRunner().invoke(simulate_command(), ["--sim-drift", "2"])
    assert result.exit_code == 2 and "0<=x<=1" in result.output
    assert "--sim-drift" in CliRunner().invoke(simulate_command(), ["--help"]).output
    lines = banner("http://127.0.0.1:8188", SimulatorConfig(drift=0.1))
    assert any("drifts 0.1" in line for line in lines)
    assert not any("drift" in line for line in banner("http://x", SimulatorConfig()))
