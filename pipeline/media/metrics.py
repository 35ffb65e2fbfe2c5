"""Metrics: RGB frames in (a frame handed over and the frame that took it, or any two); numbers
out that say how alike they are, and how sharp one frame is.

Pure numpy: arrays of shape (height, width, 3) with values 0-255, any integer or float dtype.
Two frames compared must have the same shape; the caller scales one to the other first.

- `psnr`: peak signal-to-noise ratio in dB over every channel (inf for identical frames).
- `ssim`: structural similarity of the luma, in 7x7 windows (1 for identical frames).
- `delta_e`: the mean CIE76 colour difference (delta E in L*a*b*) of each pixel with its
  twin: about 1 is the least an eye notices, over 5 a clear difference.
- `colour_drift`: delta E between the two frames' mean colours; it ignores what moved and
  sees only a shift of the whole picture's colour (a chain's drift).
- `mean_colour_difference`: the mean absolute difference of the RGB values, in levels.
- `sharpness`: the variance of the Laplacian of the luma: higher is sharper; motion blur
  lowers it sharply.
- `judge_seam`: PSNR and mean colour difference of a handover at once, for the studio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .colour import rgb_to_lab

__all__ = ["SeamScore", "colour_drift", "delta_e", "judge_seam", "luma",
           "mean_colour_difference", "psnr", "sharpness", "ssim"]

Frame = npt.NDArray[Any]
Floats = npt.NDArray[np.float64]

_SSIM_WINDOW = 7
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _pair(a: Frame, b: Frame) -> tuple[Floats, Floats]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"frames differ in shape: {x.shape} and {y.shape}")
    _check_rgb(x)
    return x, y


def _check_rgb(x: npt.NDArray[Any]) -> None:
    if x.ndim != 3 or x.shape[2] != 3 or x.size == 0:
        raise ValueError(f"expected RGB frames of shape (height, width, 3), not {x.shape}")


def psnr(a: Frame, b: Frame) -> float:
    """Peak signal-to-noise ratio of `b` against `a`, in dB; inf when they are equal."""
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def mean_colour_difference(a: Frame, b: Frame) -> float:
    """The mean absolute difference of the RGB values, in levels (0-255)."""
    x, y = _pair(a, b)
    return float(np.mean(np.abs(x - y)))


def luma(frame: Frame) -> Floats:
    """BT.601 luma, 0-255, as float64."""
    x = np.asarray(frame, dtype=np.float64)
    _check_rgb(x)
    result: Floats = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    return result


def ssim(a: Frame, b: Frame) -> float:
    """Mean structural similarity of the lumas over 7x7 windows (Wang et al., 2004)."""
    x, y = _pair(a, b)
    x, y = luma(x), luma(y)
    if min(x.shape) < _SSIM_WINDOW:
        raise ValueError(f"frames of {x.shape[1]}x{x.shape[0]} are too small for SSIM")
    mx, my = _window_mean(x), _window_mean(y)
    vx = _window_mean(x * x) - mx * mx
    vy = _window_mean(y * y) - my * my
    cov = _window_mean(x * y) - mx * my
    n = _SSIM_WINDOW**2
    vx, vy, cov = (v * n / (n - 1) for v in (vx, vy, cov))  # sample (co)variances
    score = ((2 * mx * my + _C1) * (2 * cov + _C2)) / ((mx**2 + my**2 + _C1) * (vx + vy + _C2))
    return float(score.mean())


def _window_mean(plane: Floats) -> Floats:
    """The mean of every full 7x7 window, from a summed-area table."""
    k = _SSIM_WINDOW
    table = np.zeros((plane.shape[0] + 1, plane.shape[1] + 1))
    table[1:, 1:] = plane.cumsum(0).cumsum(1)
    sums = table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]
    result: Floats = sums / (k * k)
    return result


def delta_e(a: Frame, b: Frame) -> float:
    """The mean CIE76 delta E between each pixel of `a` and the same pixel of `b`."""
    x, y = _pair(a, b)
    diff = rgb_to_lab(x) - rgb_to_lab(y)
    return float(np.sqrt((diff.astype(np.float64) ** 2).sum(axis=-1)).mean())


def colour_drift(a: Frame, b: Frame) -> float:
    """Delta E between the mean L*a*b* colours of two frames (of any sizes)."""
    means = []
    for frame in (a, b):
        x = np.asarray(frame)
        _check_rgb(x)
        means.append(rgb_to_lab(x).reshape(-1, 3).astype(np.float64).mean(axis=0))
    return float(np.sqrt(((means[0] - means[1]) ** 2).sum()))


def sharpness(frame: Frame) -> float:
    """The variance of the 4-neighbour Laplacian of the luma; 0 for a flat picture."""
    y = luma(frame)
    if min(y.shape) < 3:
        return 0.0
    lap = (y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]) - 4 * y[1:-1, 1:-1]
    return float(lap.var())


@dataclass(frozen=True)
class SeamScore:
    """PSNR (dB) and mean colour difference (levels) of a frame handed over and the frame
    that took it."""

    psnr: float
    colour_difference: float

    def to_json(self) -> dict[str, Any]:
        """JSON has no infinity: identical frames give `psnr: null`."""
        shown = None if math.isinf(self.psnr) else round(self.psnr, 2)
        return {"psnr": shown, "colour_difference": round(self.colour_difference, 2)}


def judge_seam(handed_over: Frame, taken: Frame) -> SeamScore:
    """Both numbers from one difference of the two frames."""
    x, y = _pair(handed_over, taken)
    difference = y - x
    mse = float(np.mean(np.square(difference)))
    return SeamScore(math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse),
                     float(np.mean(np.abs(difference))))
