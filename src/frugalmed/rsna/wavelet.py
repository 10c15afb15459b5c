"""JPEG 2000's 5/3 low-pass at 1/2^L resolution, for images that were decoded in full.

A JPEG 2000 file decoded at reduced resolution gives the low band of L levels of the LeGall 5/3
wavelet. Full-decoded files (JPEG lossless, uncompressed, ...) are reduced with the same filter
(ITU-T T.800 Annex F analysis low-pass, edges mirrored about the edge sample, even samples kept),
so an image looks the same whichever transfer syntax, and so whichever site, it came from: a box
filter would blur them more than JPEG 2000 ones, a difference a classifier could learn.

How it is computed (`wavelet_reduce`), fast and exactly:
- L levels of "filter, keep the even samples" along one axis are one filter of 4 * 2^L - 3
  integer taps (the 5/3 taps convolved with themselves upsampled by 2, 4, ...) evaluated at every
  2^L-th sample. Along the rows of the full-size image that is one BLAS matrix-vector product
  per output row, fed from a small float32 buffer that stays in cache: faster than filtering
  level by level with whole-image numpy passes (standalone timings during development; no
  committed measurement).
- Rows and columns are filtered separately (the two commute); the columns of the already
  small result in float64.
- Only near the image edges does the single filter differ from the level-by-level one (each level
  mirrors about its own last sample), so the first and last few output rows/columns are computed
  level by level on thin strips.
- BLAS runs on one thread here: preprocessing already runs one process per core, and threads
  inside each would only contend (and make a one-process timing look better than it scales).
- Integer taps keep every sum an integer: exact in float32 while 12^L x max|value| < 2^24
  (checked block by block as the image is converted; else the pass runs in float64), and in
  float64 always. The result
  is the exact 5/3 low-pass rounded once, half to even; tests/test_rsna_wavelet.py checks it bit
  for bit against a float64 level-by-level scipy reference.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from threadpoolctl import ThreadpoolController

# JPEG 2000's reversible 5/3 (LeGall) analysis low-pass (ITU-T T.800 Annex F), as 8 x integers
LEGALL_53_TAPS = np.array([-1, 2, 6, 2, -1], dtype=np.int64)
LEGALL_53_LOWPASS = LEGALL_53_TAPS.astype(np.float32) / 8.0
FLOAT32_EXACT = 2**24  # every integer of smaller magnitude is exact in float32
ROWS_PER_CHUNK = 16  # output rows per converted block: 1.5 MB of float32 for 2400 columns


@lru_cache(maxsize=None)
def composite_taps(levels: int) -> np.ndarray:
    """Integer taps of `levels` cascaded 5/3 low-passes, seen from the full-resolution grid.

    Centred: tap k (k = -S..S, S = 2 * (2^levels - 1)) weighs sample 2^levels * m + k for output m.
    They sum to 8^levels.
    """
    taps = np.array([1], dtype=np.int64)
    for level in range(levels):
        spread = np.zeros(4 * 2**level + 1, dtype=np.int64)
        spread[:: 2**level] = LEGALL_53_TAPS
        taps = np.convolve(taps, spread)
    taps.flags.writeable = False
    return taps


def _lowpass_decimate(x: np.ndarray, axis: int) -> np.ndarray:
    """8 x the 5/3 low-pass along `axis` at even samples only (float64, exact for integers).

    Edges mirrored about the edge sample (numpy's "reflect" = scipy's "mirror").
    """
    kept = (x.shape[axis] + 1) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 2)
    padded = np.pad(np.asarray(x, dtype=np.float64), pad, mode="reflect")

    def tap(start: int) -> np.ndarray:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + 2 * kept, 2)
        return padded[tuple(index)]

    return 6 * tap(2) + 2 * (tap(1) + tap(3)) - tap(0) - tap(4)


def cascade_rows(x: np.ndarray, levels: int) -> np.ndarray:
    """8^levels x the level-by-level 5/3 reduction along axis 0, in float64 (the reference).

    Used for the edge rows, and for images too small for the one-filter form.
    """
    out = np.asarray(x, dtype=np.float64)
    for _ in range(levels):
        out = _lowpass_decimate(out, 0)
    return out


def _span(n: int, levels: int) -> tuple[int, int, int, int]:
    """(step, reach, first, stop) along an axis of n samples: outputs first..stop-1 need no
    sample beyond either end."""
    step = 2**levels
    reach = 2 * (step - 1)  # the composite filter spans [step*m - reach, step*m + reach]
    first = -(-reach // step)
    stop = (n - 1 - reach) // step + 1
    return step, reach, first, stop


@lru_cache(maxsize=256)
def _impulse_responses(n: int, levels: int) -> np.ndarray:
    """The level-by-level reduction of n samples as a matrix: output = matrix @ samples.

    The reduction is linear, so reducing the identity gives its matrix (exact integers).
    """
    matrix = cascade_rows(np.eye(n), levels)
    matrix.flags.writeable = False
    return matrix


def _edge_maps(n: int, levels: int, first: int, stop: int) -> tuple[np.ndarray, int, np.ndarray, int]:
    """(head map, head length, tail map, tail start) for the outputs before `first` and from
    `stop` on: each the exact level-by-level reduction of a strip just long enough that its cut
    end (mirrored as if it were an edge) reaches no output taken from it."""
    step, reach = 2**levels, 2 * (2**levels - 1)
    n_head = min(n, step * (first - 1) + reach + 1)
    tail = max(0, step * stop - reach)
    tail -= tail % step  # keep the even/odd phase of every level
    head_map = _impulse_responses(n_head, levels)[:first]
    tail_map = _impulse_responses(n - tail, levels)[stop - tail // step :]
    return head_map, n_head, tail_map, tail


def _reduce_rows(x: np.ndarray, levels: int) -> np.ndarray:
    """8^levels x the `levels`-level 5/3 reduction along axis 0 of a large integer image.

    One matrix-vector product per output row, from blocks converted to float32 in a buffer that
    stays in cache. float32 sums of integers are exact below 2^24: each block is checked as it
    is converted (no extra pass over the image), and an image with larger values is summed in
    float64 instead. The result is float32 where exact, else float64.
    """
    rows, cols = x.shape
    step, reach, first, stop = _span(rows, levels)
    if stop - first < 2:  # small: level by level, the one-filter form gains nothing
        return cascade_rows(x, levels)
    limit = FLOAT32_EXACT / float(np.abs(composite_taps(levels)).sum())  # exact in float32 below
    out = None
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        out = _interior_rows(x, levels, np.float32, None if -limit < info.min <= info.max < limit else limit)
    if out is None:
        out = _interior_rows(x, levels, np.float64, None)
    head_map, n_head, tail_map, tail = _edge_maps(rows, levels, first, stop)
    out[:first] = head_map @ x[:n_head]
    out[stop:] = tail_map @ x[tail:]
    return out


def _interior_rows(x: np.ndarray, levels: int, work: type, limit: float | None) -> np.ndarray | None:
    """The outputs first..stop-1 of _reduce_rows summed in `work`; None as soon as a value
    reaches `limit` in magnitude (then float32 sums could round)."""
    rows, cols = x.shape
    step, reach, first, stop = _span(rows, levels)
    taps = composite_taps(levels).astype(work)
    width = len(taps)
    out = np.empty((-(-rows // step), cols), dtype=work)
    buf = np.empty((step * (ROWS_PER_CHUNK - 1) + width, cols), dtype=work)
    signed = x.dtype.kind == "i"
    for m0 in range(first, stop, ROWS_PER_CHUNK):
        m1 = min(m0 + ROWS_PER_CHUNK, stop)
        top = step * m0 - reach
        block = buf[: step * (m1 - 1 - m0) + width]
        np.copyto(block, x[top : top + len(block)], casting="unsafe")  # the one conversion
        if limit is not None and (block.max() >= limit or (signed and block.min() <= -limit)):
            return None
        for m in range(m0, m1):
            start = step * (m - m0)
            np.dot(taps, block[start : start + width], out=out[m])
    return out


def _block_weights(levels: int) -> np.ndarray:
    """The composite taps cut into the 4 blocks of 2^levels samples they reach (offsets -2..1):
    output m = sum over b of weights[b] . block[m + b] (polyphase form)."""
    step, reach = 2**levels, 2 * (2**levels - 1)
    taps = composite_taps(levels)
    weights = np.zeros((4, step))
    for b in range(4):
        for r in range(step):
            k = step * (b - 2) + r
            if -reach <= k <= reach:
                weights[b, r] = taps[k + reach]
    return weights


def _reduce_cols(x: np.ndarray, levels: int) -> np.ndarray:
    """8^levels x the `levels`-level 5/3 reduction along axis 1 of a small image, in float64.

    Polyphase: every block of 2^levels columns is multiplied once by the 4 weight vectors it
    contributes with (one matrix product for the whole image), then 4 shifted sums.
    """
    x = np.asarray(x, dtype=np.float64)
    rows, cols = x.shape
    step, reach, first, stop = _span(cols, levels)
    blocks = cols // step
    first, stop = max(first, 2), min(stop, blocks - 1)  # outputs whose 4 blocks are whole
    if stop - first < 2:
        return cascade_rows(x.T, levels).T
    whole = x[:, : blocks * step].reshape(rows * blocks, step)  # one product, not one per row
    parts = (whole @ _block_weights(levels).T).reshape(rows, blocks, 4)
    out = np.empty((rows, -(-cols // step)))
    inner = out[:, first:stop]
    np.add(parts[:, first - 2 : stop - 2, 0], parts[:, first - 1 : stop - 1, 1], out=inner)
    inner += parts[:, first:stop, 2]
    inner += parts[:, first + 1 : stop + 1, 3]
    head_map, n_head, tail_map, tail = _edge_maps(cols, levels, first, stop)
    out[:, :first] = x[:, :n_head] @ head_map.T
    out[:, stop:] = x[:, tail:] @ tail_map.T
    return out


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def wavelet_reduce(stored: np.ndarray, levels: int) -> np.ndarray:
    """Stored values at 1/2^levels resolution, as a JPEG 2000 decoder's reduced output gives them.

    float32, rounded half to even: the exact 5/3 low-pass of `levels` levels (see the module
    docstring for how). Shape: ceil(rows / 2^levels) x ceil(cols / 2^levels).
    """
    x = np.asarray(stored)
    if x.ndim != 2:
        raise ValueError(f"wavelet_reduce needs a 2-D image, got shape {x.shape}")
    if levels == 0:
        return np.rint(x.astype(np.float32))
    with _blas().limit(limits=1, user_api="blas"):
        both = _reduce_cols(_reduce_rows(x, levels), levels)
    both /= 8.0 ** (2 * levels)  # a power of two: exact
    return np.rint(both, out=both).astype(np.float32)
