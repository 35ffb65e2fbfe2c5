"""Seam metrics as the studio reads them: PSNR and mean colour difference on known frames,
and `judge_seam` giving both at once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.media.metrics import judge_seam, mean_colour_difference, psnr


def frame(value: float, shape: tuple[int, int] = (18, 32)) -> np.ndarray:
    return np.full((*shape, 3), value, dtype=np.uint8)


def test_identical_frames_have_infinite_psnr_and_no_colour_difference() -> None:
    a = np.random.default_rng(1).integers(0, 256, (18, 32, 3), dtype=np.uint8)
    assert psnr(a, a.copy()) == math.inf
    assert mean_colour_difference(a, a.copy()) == 0.0
    assert judge_seam(a, a).to_json() == {"psnr": None, "colour_difference": 0.0}


def test_a_uniform_shift_of_ten_levels_scores_what_the_formulas_say() -> None:
    a, b = frame(100), frame(110)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))  # 28.13 dB
    assert mean_colour_difference(a, b) == pytest.approx(10.0)


def test_uint8_frames_do_not_wrap_around() -> None:
    """200 - 10 in uint8 arithmetic would be 190 and 10 - 200 would wrap to 66."""
    assert mean_colour_difference(frame(10), frame(200)) == pytest.approx(190.0)


def test_judge_seam_gives_what_the_two_measures_give() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (18, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (18, 32, 3), dtype=np.uint8)
    score = judge_seam(a, b)
    assert score.psnr == pytest.approx(psnr(a, b))
    assert score.colour_difference == pytest.approx(mean_colour_difference(a, b))


@pytest.mark.parametrize("b", [frame(0, (18, 30)), np.zeros((18, 32)), np.zeros((18, 32, 4))])
def test_frames_of_different_or_wrong_shapes_are_refused(b: np.ndarray) -> None:
    with pytest.raises(ValueError, match="shape"):
        psnr(frame(0), b)
