"""The few image operations that find a digit in a photo: filters, a threshold, components.

All work on 2-D float arrays with NumPy alone, in a handful of whole-array steps each (no
loop over pixels), fast enough to run on every stroke of a live drawing:

* :func:`min_filter` / :func:`max_filter` (square windows, separable) and the *black
  top-hat* built from them, ``closing(g) - g`` with ``closing = min_filter(max_filter(g))``:
  the dark details narrower than the window (pen strokes), whatever the paper's brightness
  does at larger scales (gradients, shadows, the edge of a tilted sheet). A window of
  ``size`` rows is the max of two overlapping windows of a power of two rows, each built by
  doubling (1 -> 2 -> 4 ...), so ``size`` 25 costs 5 array maxima, not 24;
* :func:`median3`, a 3x3 median that removes isolated specks of noise: each column of three
  is sorted, and the median of the nine is the median of (the largest of the three lows,
  the median of the three middles, the smallest of the three highs);
* :func:`otsu_threshold` (Otsu 1979): the level that best splits the values into two groups,
  by maximising the between-group variance ``w0 * w1 * (m0 - m1)^2``;
* :func:`components`: 8-connected regions of a boolean mask, by union-find over the runs
  of True in each row.

Min, max and median pick one of their input values, so these give exactly the values of the
plain definitions (``tests/imageops_reference.py`` keeps them, and the tests compare).

>>> g = np.full((9, 9), 200.0); g[2:7, 4] = 40          # a dark vertical stroke on grey paper
>>> top_hat = black_top_hat(g, 5)
>>> float(top_hat[4, 4]), float(top_hat[0, 0])
(160.0, 0.0)
>>> otsu_threshold(np.array([1.0, 2, 2, 9, 10, 10]))
2.0
>>> components(np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 0, 1]], bool))
(array([[1, 0, 0, 2],
       [0, 1, 0, 2],
       [0, 0, 0, 2]], dtype=int32), [2, 3])
"""

from __future__ import annotations

import numpy as np


def _running(a: np.ndarray, size: int, pick) -> np.ndarray:
    """``pick`` (np.minimum or np.maximum) over ``size`` consecutive rows centred on each
    row, the first and last rows extended."""
    half = size // 2
    a = np.concatenate([a[:1].repeat(half, axis=0), a, a[-1:].repeat(size - 1 - half, axis=0)])
    rows = len(a) - size + 1
    span = 1  # a[i] is the pick of rows i .. i + span - 1
    while 2 * span <= size:
        a = pick(a[:-span], a[span:])
        span *= 2
    return pick(a[:rows], a[size - span:size - span + rows])  # two windows of span rows cover size rows


def _filter(a: np.ndarray, size: int, pick) -> np.ndarray:
    """``pick`` over a ``size`` x ``size`` window centred on each pixel; the edges are
    extended. Down the columns, then (transposed) along the rows."""
    for _ in range(2):
        a = np.ascontiguousarray(_running(a, size, pick).T)
    return a


def min_filter(a: np.ndarray, size: int) -> np.ndarray:
    return _filter(np.asarray(a, np.float64), size, np.minimum)


def max_filter(a: np.ndarray, size: int) -> np.ndarray:
    return _filter(np.asarray(a, np.float64), size, np.maximum)


def black_top_hat(gray: np.ndarray, size: int) -> np.ndarray:
    """Dark details narrower than ``size`` pixels: ``closing(gray) - gray`` (>= 0)."""
    return min_filter(max_filter(gray, size), size) - np.asarray(gray, np.float64)


def _sort3(a, b, c):
    """Elementwise (low, middle, high) of three arrays: three compare-and-swaps."""
    low, high = np.minimum(a, b), np.maximum(a, b)
    high, c = np.maximum(high, c), np.minimum(high, c)
    return np.minimum(low, c), np.maximum(low, c), high


def _median_of_3(a, b, c):
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def median3(a: np.ndarray) -> np.ndarray:
    """3x3 median (edges extended)."""
    a = np.asarray(a, np.float64)
    height, width = a.shape
    padded = np.concatenate([a[:1], a, a[-1:]])  # the edges extended by one pixel
    padded = np.concatenate([padded[:, :1], padded, padded[:, -1:]], axis=1)
    columns = _sort3(padded[:-2], padded[1:-1], padded[2:])  # each pixel's column of three, sorted
    # With the rows laid end to end, the columns left and right of position i are i - 1 and
    # i + 1; only the two padding columns, dropped at the end, see across a row's end.
    low, middle, high = (sorted_.ravel() for sorted_ in columns)
    left, here, right = slice(None, -2), slice(1, -1), slice(2, None)
    median = np.empty(height * (width + 2))
    median[:-2] = _median_of_3(np.maximum(np.maximum(low[left], low[here]), low[right]),
                               _median_of_3(middle[left], middle[here], middle[right]),
                               np.minimum(np.minimum(high[left], high[here]), high[right]))
    return median.reshape(height, width + 2)[:, :width]


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold t that splits ``values`` into ``<= t`` and ``> t`` with the largest
    between-class variance (Otsu's method, on a histogram of ``bins`` levels)."""
    values = np.asarray(values, np.float64).ravel()
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return hi
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)
    w1 = w0[-1] - w0
    m0 = np.cumsum(counts * centres) / np.maximum(w0, 1)
    m1 = ((counts * centres).sum() - np.cumsum(counts * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    best = int(np.argmax(between[:-1]))  # the last split would leave one class empty
    return float(values[values <= edges[best + 1]].max())


def components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """8-connected components of a boolean (H, W) mask: (labels (H, W), 0 = background and
    k = component k, sizes [size of component 1, 2, ...]). Components are numbered in the
    order of their first pixel, row by row.

    The mask is cut into runs (the True pixels of a row between two False ones); a run
    touches a run of the row above when their columns overlap or meet at a corner, and
    touching runs are joined, each group keeping its earliest run as its root."""
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    rows = np.zeros((height, width + 1), np.int8)  # the rows laid end to end, a False after each:
    rows[:, :width] = mask                          # runs end in their row
    stride, steps = width + 1, np.diff(rows.ravel(), prepend=0)
    starts, ends = np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)  # run k: starts[k] .. ends[k] - 1
    parent = list(range(len(starts)))
    for run, above in zip(*_touching_runs(starts, ends, stride)):
        a, b = _root(parent, run), _root(parent, above)
        parent[max(a, b)] = min(a, b)
    root = np.array(parent, np.int64)
    while (root[root] != root).any():  # every run points at an earlier run or itself: jump to the roots
        root = root[root]
    run_label = np.cumsum(root == np.arange(len(root)))[root]  # roots numbered in run order
    labels = np.zeros(mask.shape, np.int32)
    labels[mask] = np.repeat(run_label, ends - starts)  # the True pixels, row by row, are the runs in order
    sizes = np.zeros(len(root) + 1, np.int64)
    np.add.at(sizes, run_label, ends - starts)
    return labels, sizes[1:run_label.max(initial=0) + 1].tolist()


def _touching_runs(starts, ends, stride):
    """Pairs (run, run in the row above it that it touches), as two lists of indices. The
    pixel above position p is p - stride; runs are in order, so those above run k that
    end after column starts[k] - 1 and start by column ends[k] are a block, found by binary
    search."""
    first = np.searchsorted(ends, starts - stride, side="left")
    stop = np.searchsorted(starts, ends - stride, side="right")
    counts = np.maximum(stop - first, 0)
    run = np.repeat(np.arange(len(starts)), counts)
    above = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts - first, counts)
    return run.tolist(), above.tolist()


def _root(parent: list[int], k: int) -> int:
    """The root of run k's group, halving the path on the way."""
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k
