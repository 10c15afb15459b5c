"""The 5/3 reduction of full-decoded images (frugalmed.rsna.wavelet) is, bit for bit, the exact
level-by-level 5/3 low-pass (a float64 scipy reference) rounded once, on every shape, bit depth
and level count; and within one stored level of the float32 implementation it replaced (which
rounded after every level)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import convolve1d

from frugalmed.rsna import wavelet
from frugalmed.rsna.decode import LEGALL_53_LOWPASS, wavelet_reduce
from rsna_reference import reference_wavelet_reduce

TAPS = np.array([-1, 2, 6, 2, -1], dtype=np.float64)


def exact_reduce(stored: np.ndarray, levels: int) -> np.ndarray:
    """Filter everything, keep the even samples, level by level, in float64 (exact for these
    integers: every sum stays below 2^53), then divide and round once."""
    image = stored.astype(np.float64)
    for _ in range(levels):
        image = convolve1d(image, TAPS, axis=0, mode="mirror")[::2]
        image = convolve1d(image, TAPS, axis=1, mode="mirror")[:, ::2]
    return np.rint(image / 64.0**levels).astype(np.float32)


def images():
    rng = np.random.default_rng(7)
    # odd, even, prime, tiny and mammogram-like proportions; sides below, at and above 2^levels
    for shape in [(97, 81), (64, 63), (40, 40), (9, 17), (1, 5), (2, 3), (300, 241), (513, 1030), (160, 128)]:
        yield "u12", rng.integers(0, 2**12, size=shape).astype(np.uint16)
        yield "u16", rng.integers(0, 2**16, size=shape).astype(np.uint16)  # float64 path
        yield "i16", rng.integers(-(2**15), 2**15, size=shape).astype(np.int16)
        yield "u8", rng.integers(0, 2**8, size=shape).astype(np.uint8)
    extreme = np.full((96, 80), 65535, dtype=np.uint16)  # largest sums there are
    extreme[::2, ::3] = 0
    yield "extreme", extreme
    ramp = np.add.outer(np.arange(96), np.arange(80)).astype(np.uint16) * 40  # many exact .5 ties
    yield "ramp", ramp


@pytest.mark.parametrize("levels", [0, 1, 2, 3, 4, 5])
def test_wavelet_reduce_is_the_exact_lowpass_rounded_once(levels):
    """Catches any edge row/column taken from the wrong strip, a phase error when a side is not a
    multiple of 2^levels, and rounding in float32 where the sums no longer fit."""
    checked = 0
    for name, stored in images():
        got, want = wavelet_reduce(stored, levels), exact_reduce(stored, levels)
        assert got.dtype == np.float32, name
        assert got.shape == want.shape == tuple(-(-s // 2**levels) for s in stored.shape), name
        np.testing.assert_array_equal(got, want, err_msg=f"{name} {stored.shape}")
        checked += 1
    assert checked >= 30


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_within_one_stored_level_of_the_float32_version_it_replaced(levels):
    """The old version rounded to float32 after every level: it differs at near-ties only."""
    for name, stored in images():
        if min(stored.shape) < 2**levels or stored.dtype.itemsize > 2:
            continue
        old = reference_wavelet_reduce(stored, levels)
        new = wavelet_reduce(stored, levels)
        diff = np.abs(old.astype(np.float64) - new)
        assert diff.max() <= 1, name
        assert (diff > 0).mean() < 0.01, name


def test_composite_taps_are_the_cascade():
    """Three levels of (-1, 2, 6, 2, -1) = one filter of 29 taps summing to 8^3."""
    taps = wavelet.composite_taps(3)
    assert len(taps) == 29 and taps.sum() == 512
    impulse = np.zeros(64)
    impulse[32] = 1.0  # output m = 4 of a 64-sample signal sees sample 32 with tap 0
    response = [wavelet.cascade_rows(np.roll(impulse, k)[:, None], 3)[4, 0] for k in range(-14, 15)]
    np.testing.assert_array_equal(response, taps)
    assert np.allclose(LEGALL_53_LOWPASS * 8, TAPS)


def test_large_values_fall_back_to_float64():
    """Values whose sums overflow float32's exact integers still give the exact result."""
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 2**12, size=(200, 120)).astype(np.uint16)
    assert wavelet._reduce_rows(stored, 3).dtype == np.float32
    stored[150, 7] = 2**16 - 1  # one large value, far from the first blocks
    assert wavelet._interior_rows(stored, 3, np.float32, wavelet.FLOAT32_EXACT / 12**3) is None
    assert wavelet._reduce_rows(stored, 3).dtype == np.float64
    np.testing.assert_array_equal(wavelet_reduce(stored, 3), exact_reduce(stored, 3))


def test_wavelet_reduce_is_a_lowpass_not_a_copy():
    stored = np.zeros((64, 64), dtype=np.uint16)
    stored[::2, :] = 800  # row stripes at the Nyquist frequency
    reduced = wavelet_reduce(stored, 1)
    assert reduced.shape == (32, 32)
    np.testing.assert_array_equal(reduced, 400)  # (6 - 1 - 1) / 8 * 800 at the kept (even) rows
