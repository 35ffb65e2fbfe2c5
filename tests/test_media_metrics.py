"""Seam metrics: PSNR and mean colour difference on known frames, and when a seam is poor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.media.metrics import (
    POOR_COLOUR_DIFFERENCE,
    POOR_PSNR,
    judge_seam,
    mean_colour_difference,
    psnr,
)


def frame(value: float, shape: tuple[int, int] = (18, 32)) -> np.ndarray:
    return np.full((*shape, 3), value, dtype=np.uint8)


def test_identical_frames_have_infinite_psnr_and_no_colour_difference() -> None:
    a = np.random.default_rng(1).integers(0, 256, (18, 32, 3), dtype=np.uint8)
    assert psnr(a, a.copy()) == math.inf
    assert mean_colour_difference(a, a.copy()) == 0.0
    assert judge_seam(a, a).to_json() == {"psnr": None, "colour_difference": 0.0, "poor": False}


def test_a_uniform_shift_of_ten_levels_scores_what_the_formulas_say() -> None:
    a, b = frame(100), frame(110)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))  # 28.13 dB
    assert mean_colour_difference(a, b) == pytest.approx(10.0)


def test_uint8_frames_do_not_wrap_around() -> None:
    """200 - 10 in uint8 arithmetic would be 190 and 10 - 200 would wrap to 66."""
    assert mean_colour_difference(frame(10), frame(200)) == pytest.approx(190.0)


def test_a_grade_shift_is_poor_even_when_psnr_is_fair() -> None:
    shifted = judge_seam(frame(100), frame(100 + POOR_COLOUR_DIFFERENCE + 2))
    assert shifted.psnr > POOR_PSNR
    assert shifted.poor


def test_a_noisy_handover_is_poor_by_psnr() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (18, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (18, 32, 3), dtype=np.uint8)
    score = judge_seam(a, b)
    assert score.psnr < POOR_PSNR and score.poor


def test_a_clean_handover_is_not_poor() -> None:
    a = np.random.default_rng(3).integers(20, 230, (18, 32, 3)).astype(np.uint8)
    b = (a.astype(int) + np.random.default_rng(4).integers(-2, 3, a.shape)).astype(np.uint8)
    assert not judge_seam(a, b).poor


@pytest.mark.parametrize("b", [frame(0, (18, 30)), np.zeros((18, 32)), np.zeros((18, 32, 4))])
def test_frames_of_different_or_wrong_shapes_are_refused(b: np.ndarray) -> None:
    with pytest.raises(ValueError, match="shape"):
        psnr(frame(0), b)
