"""The few image operations that find a digit in a photo: filters, a threshold, components.

All work on 2-D float arrays with NumPy alone:

* :func:`min_filter` / :func:`max_filter` (square windows, separable) and the *black
  top-hat* built from them, ``closing(g) - g`` with ``closing = min_filter(max_filter(g))``:
  the dark details narrower than the window (pen strokes), whatever the paper's brightness
  does at larger scales (gradients, shadows, the edge of a tilted sheet);
* :func:`median3`, a 3x3 median that removes isolated specks of noise;
* :func:`otsu_threshold` (Otsu 1979): the level that best splits the values into two groups,
  by maximising the between-group variance ``w0 * w1 * (m0 - m1)^2``;
* :func:`components`: 8-connected regions of a boolean mask, by breadth-first search.

>>> g = np.full((9, 9), 200.0); g[2:7, 4] = 40          # a dark vertical stroke on grey paper
>>> top_hat = black_top_hat(g, 5)
>>> float(top_hat[4, 4]), float(top_hat[0, 0])
(160.0, 0.0)
>>> otsu_threshold(np.array([1.0, 2, 2, 9, 10, 10]))
2.0
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _filter(a: np.ndarray, size: int, reduce) -> np.ndarray:
    """``reduce`` (np.min or np.max) over a ``size`` x ``size`` window centred on each pixel;
    the edges are extended."""
    half = size // 2
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (half, size - 1 - half)
        a = reduce(sliding_window_view(np.pad(a, pad, mode="edge"), size, axis=axis), axis=-1)
    return a


def min_filter(a: np.ndarray, size: int) -> np.ndarray:
    return _filter(np.asarray(a, np.float64), size, np.min)


def max_filter(a: np.ndarray, size: int) -> np.ndarray:
    return _filter(np.asarray(a, np.float64), size, np.max)


def black_top_hat(gray: np.ndarray, size: int) -> np.ndarray:
    """Dark details narrower than ``size`` pixels: ``closing(gray) - gray`` (>= 0)."""
    return min_filter(max_filter(gray, size), size) - np.asarray(gray, np.float64)


def median3(a: np.ndarray) -> np.ndarray:
    """3x3 median (edges extended)."""
    windows = sliding_window_view(np.pad(np.asarray(a, np.float64), 1, mode="edge"), (3, 3))
    return np.median(windows.reshape(a.shape + (9,)), axis=-1)


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
    k = component k, sizes [size of component 1, 2, ...])."""
    labels = np.zeros(mask.shape, np.int32)
    height, width = mask.shape
    sizes = []
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        sizes.append(0)
        label = len(sizes)
        labels[start] = label
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            sizes[-1] += 1
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = label
                        queue.append((ny, nx))
    return labels, sizes
