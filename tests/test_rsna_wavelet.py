"""The decimating 5/3 low-pass of full-decoded images equals, bit for bit, the straightforward
float32 scipy implementation it replaced (filter everything, then keep the even samples)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import convolve1d

from frugalmed.rsna.decode import LEGALL_53_LOWPASS, wavelet_reduce


def reference_reduce(stored: np.ndarray, levels: int) -> np.ndarray:
    image = stored.astype(np.float32)
    for _ in range(levels):
        image = convolve1d(image, LEGALL_53_LOWPASS, axis=0, mode="mirror")[::2]
        image = convolve1d(image, LEGALL_53_LOWPASS, axis=1, mode="mirror")[:, ::2]
    return np.rint(image)


def images():
    rng = np.random.default_rng(7)
    for shape in [(97, 81), (64, 63), (40, 40), (9, 17)]:
        yield "u12", rng.integers(0, 2**12, size=shape).astype(np.uint16)
        yield "u16", rng.integers(0, 2**16, size=shape).astype(np.uint16)
        yield "i16", rng.integers(-(2**15), 2**15, size=shape).astype(np.int16)
        yield "u8", rng.integers(0, 2**8, size=shape).astype(np.uint8)
    extreme = np.full((96, 80), 65535, dtype=np.uint16)  # largest sums the int32 path meets
    extreme[::2, ::3] = 0
    yield "extreme", extreme
    smooth = np.add.outer(np.arange(96), np.arange(80)).astype(np.uint16) * 40  # many exact .5 ties
    yield "ramp", smooth


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_wavelet_reduce_equals_scipy_reference(levels):
    checked = 0
    for name, stored in images():
        if min(stored.shape) < 2**levels:
            continue
        got, want = wavelet_reduce(stored, levels), reference_reduce(stored, levels)
        assert got.dtype == np.float32 and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
        checked += 1
    assert checked >= 6


def test_wavelet_reduce_is_a_lowpass_not_a_copy():
    stored = np.zeros((64, 64), dtype=np.uint16)
    stored[::2, :] = 800  # row stripes at the Nyquist frequency
    reduced = wavelet_reduce(stored, 1)
    assert reduced.shape == (32, 32)
    np.testing.assert_array_equal(reduced, 400)  # (6 - 1 - 1) / 8 * 800 at the kept (even) rows
