"""Colour: RGB pictures in; CIE L*a*b* (D65) values, and RGB back from them, out.

Pure numpy on arrays of shape (..., 3): sRGB 0-255 in, Lab as float32 out (L 0-100, a and b
roughly -128..127). The sRGB transfer curve goes through lookup tables both ways, so a 720p
frame converts in a few tens of milliseconds; the round trip is exact to a level. A
`YuvSpace` converts between RGB and the Y'CbCr a clip is tagged with (its matrix and range).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Lab", "YuvSpace", "lab_to_rgb", "mix_channels", "rgb_to_lab"]

Lab = npt.NDArray[np.float32]

# sRGB primaries to XYZ, with the D65 white folded in, so white is (1, 1, 1) before f().
_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]], np.float64)
_WHITE = np.array([0.95047, 1.0, 1.08883])
_TO_XYZ_N = (_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)  # rows: R, G, B
_FROM_XYZ_N = np.linalg.inv(_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)
_DELTA = 6 / 29
# f(X), f(Y), f(Z) to L + 16, a, b (rows: fx, fy, fz), and back
_F_TO_LAB = np.array([[0, 500, 0], [116, -500, 200], [0, 0, -200]], np.float32)
_LAB_TO_F = np.linalg.inv(_F_TO_LAB.astype(np.float64)).astype(np.float32)
_LEVELS = 4096  # steps of linear light when going back to sRGB: under a level everywhere


def _linear_table() -> npt.NDArray[np.float32]:
    v = np.arange(256, dtype=np.float64) / 255
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _encode_table() -> npt.NDArray[np.uint8]:
    v = np.arange(_LEVELS + 1, dtype=np.float64) / _LEVELS
    s = np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)
    return np.clip(np.round(s * 255), 0, 255).astype(np.uint8)


_LINEAR = _linear_table()
_ENCODE = _encode_table()


def rgb_to_lab(rgb: npt.NDArray[Any]) -> Lab:
    """L*a*b* of sRGB values (0-255, any integer or float dtype)."""
    values = np.asarray(rgb)
    index = values if values.dtype == np.uint8 else np.clip(np.round(values), 0, 255)
    f = _f(mix_channels(_LINEAR[index.astype(np.uint8)], _TO_XYZ_N))
    lab = mix_channels(f, _F_TO_LAB)
    lab[..., 0] -= 16
    return lab


def lab_to_rgb(lab: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """sRGB (uint8) of L*a*b* values; colours outside sRGB are clipped to it."""
    shifted = np.asarray(lab, np.float32) + np.array([16, 0, 0], np.float32)
    linear = mix_channels(_f_inverse(mix_channels(shifted, _LAB_TO_F)), _FROM_XYZ_N)
    linear *= _LEVELS
    linear += 0.5
    np.clip(linear, 0, _LEVELS, out=linear)
    return _ENCODE[linear.astype(np.int32)]


def mix_channels(values: npt.NDArray[Any], matrix: npt.NDArray[np.float32]
                 ) -> npt.NDArray[np.float32]:
    """`values @ matrix[:3] + matrix[3]` (the offset row optional) over the last axis of 3,
    channel by channel: a BLAS call spends more on its threads than on three channels."""
    flat = np.asarray(values).reshape(-1, 3)
    channels = [np.ascontiguousarray(flat[:, k], dtype=np.float32) for k in range(3)]
    out = np.empty(flat.shape, np.float32)
    for c in range(3):
        mixed = channels[0] * matrix[0, c]
        mixed += channels[1] * matrix[1, c]
        mixed += channels[2] * matrix[2, c]
        if len(matrix) > 3:
            mixed += matrix[3, c]
        out[:, c] = mixed
    return out.reshape(np.shape(values))


def _f(t: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """CIE's f(): a cube root, and a straight line near black."""
    out: npt.NDArray[np.float32] = np.cbrt(t)
    np.copyto(out, t * np.float32(1 / (3 * _DELTA**2)) + np.float32(4 / 29),
              where=t <= _DELTA**3)
    return out


def _f_inverse(f: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = f * f * f
    np.copyto(out, (f - np.float32(4 / 29)) * np.float32(3 * _DELTA**2), where=f <= _DELTA)
    return out


# FFmpeg's AVColorSpace tags -> the luma weights (Kr, Kb) of that Y'CbCr matrix
_WEIGHTS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
            7: (0.212, 0.087), 9: (0.2627, 0.0593)}


@dataclass(frozen=True)
class YuvSpace:
    """A Y'CbCr matrix and range, as `mix_channels` matrices: rows [Y, Cb, Cr, 1] -> RGB
    (`to_rgb`, 0-255, unclipped) and rows [R, G, B, 1] -> Y'CbCr (`from_rgb`)."""

    to_rgb: npt.NDArray[np.float32]
    from_rgb: npt.NDArray[np.float32]

    @classmethod
    def of(cls, matrix_tag: int, range_tag: int) -> YuvSpace:
        """The space of FFmpeg's tags (unknown matrices as BT.601; range 2 is full)."""
        kr, kb = _WEIGHTS.get(matrix_tag, _WEIGHTS[5])
        kg = 1 - kr - kb
        ypbpr = np.array([[1, 0, 2 * (1 - kr)],
                          [1, -2 * (1 - kb) * kb / kg, -2 * (1 - kr) * kr / kg],
                          [1, 2 * (1 - kb), 0]])
        full = range_tag == 2
        scale = np.diag([1 / 255, 1 / 255, 1 / 255] if full else [1 / 219, 1 / 224, 1 / 224])
        offset = np.array([0 if full else 16, 128, 128])
        linear = scale @ ypbpr.T * 255
        to_rgb = np.vstack([linear, -offset @ linear])
        from_rgb = np.vstack([np.linalg.inv(linear), offset])
        return cls(to_rgb.astype(np.float32), from_rgb.astype(np.float32))
