"""The plain definitions that :mod:`convscope.data.imageops` replaced with faster whole-array
steps, kept as the references the tests and ``benchmarks/prepare_digit.py`` compare against:

* min / max filters as a reduction over every window (``sliding_window_view``);
* the 3x3 median as ``np.median`` of the nine neighbours;
* 8-connected components by breadth-first search from each unlabelled pixel, row by row;
* :func:`find_ink` and its helpers as they were before, so that a whole preparation can be
  run the old way (:func:`reference_preprocess_image`) and compared.

Also :func:`drawing`: a digit-like drawing as a live canvas sends it, for tests and timings.
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convscope.data import preprocess
from convscope.data.imageops import otsu_threshold


# ----- filters, median, components -----------------------------------------------------------
def _filter(a, size, reduce):
    """``reduce`` (np.min or np.max) over a ``size`` x ``size`` window centred on each pixel;
    the edges are extended."""
    half = size // 2
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (half, size - 1 - half)
        a = reduce(sliding_window_view(np.pad(a, pad, mode="edge"), size, axis=axis), axis=-1)
    return a


def min_filter(a, size):
    return _filter(np.asarray(a, np.float64), size, np.min)


def max_filter(a, size):
    return _filter(np.asarray(a, np.float64), size, np.max)


def black_top_hat(gray, size):
    return min_filter(max_filter(gray, size), size) - np.asarray(gray, np.float64)


def median3(a):
    windows = sliding_window_view(np.pad(np.asarray(a, np.float64), 1, mode="edge"), (3, 3))
    return np.median(windows.reshape(a.shape + (9,)), axis=-1)


def components(mask):
    """(labels, sizes) by breadth-first search; components numbered by their first pixel."""
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


# ----- the preparation as it was ---------------------------------------------------------------
def find_ink(gray, notes):
    gray = np.asarray(gray, np.float64)
    if max(gray.shape) > preprocess.WORK_SIDE:
        factor = preprocess.WORK_SIDE / max(gray.shape)
        notes.append(f"shrank it to {preprocess.WORK_SIDE} px a side to find the digit (sizes below are at that "
                     "scale)")
        gray = preprocess._resize(gray, max(1, round(gray.shape[0] * factor)), max(1, round(gray.shape[1] * factor)))
        gray = np.asarray(gray, np.float64)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() <= gray.mean():
        gray = 255.0 - gray
    else:
        notes.append("inverted colours (dark digit on a light background -> light on dark)")
    size = max(9, round(max(gray.shape) / 8)) | 1
    strength = black_top_hat(median3(gray), size)
    if strength.max() < 16:
        raise ValueError("the image is blank: no digit found")
    mask = strength > max(otsu_threshold(strength), 0.2 * strength.max())
    labels, sizes = components(mask)
    keep = _digit_pieces(labels, sizes, strength)
    dropped = len(sizes) - len(keep)
    notes.append(f"removed the paper and the light across it (black top-hat, {size} px window); kept the "
                 f"digit's {len(keep)} piece{'s' if len(keep) > 1 else ''}"
                 + (f", dropped {dropped} speck{'s' if dropped > 1 else ''} or edge{'s' if dropped > 1 else ''}"
                    if dropped else ""))
    pieces = np.isin(labels, keep)
    near = max_filter(pieces.astype(np.float64), 5) > 0
    return np.where(near, np.maximum(black_top_hat(gray, size), 0), 0.0)


def _digit_pieces(labels, sizes, strength):
    largest, flat, count = int(np.argmax(sizes)) + 1, labels.ravel(), len(sizes) + 1
    ys, xs = (a.ravel() for a in np.indices(labels.shape))
    top, left = np.full(count, labels.size), np.full(count, labels.size)
    bottom, right, peak = np.zeros(count, int), np.zeros(count, int), np.zeros(count)
    np.minimum.at(top, flat, ys)
    np.minimum.at(left, flat, xs)
    np.maximum.at(bottom, flat, ys)
    np.maximum.at(right, flat, xs)
    np.maximum.at(peak, flat, strength.ravel())
    reach = 0.5 * max(bottom[largest] - top[largest], right[largest] - left[largest], 1)
    keep = []
    for k, n in enumerate(sizes, start=1):
        near = (top[k] <= bottom[largest] + reach and bottom[k] >= top[largest] - reach
                and left[k] <= right[largest] + reach and right[k] >= left[largest] - reach)
        if k == largest or (n >= 0.02 * max(sizes) and near and peak[k] >= 0.5 * strength.max()):
            keep.append(k)
    return keep


@contextmanager
def old_preparation():
    """Within it, convscope's preparation (``mnist_style``, ``preprocess_image``) runs the old
    :func:`find_ink` in place of today's."""
    today = preprocess.find_ink
    preprocess.find_ink = find_ink
    try:
        yield
    finally:
        preprocess.find_ink = today


def reference_preprocess_image(path, meta):
    """``preprocess_image`` as it was."""
    with old_preparation():
        return preprocess.preprocess_image(path, meta)


# ----- a drawn digit ------------------------------------------------------------------------------
def drawing(rng, side=280, strokes=3, width=18, ink=255, paper=0):
    """A PIL image (``side`` x ``side``, mode L) of ``strokes`` random pen strokes, ``width``
    pixels wide, drawn at 4x and scaled down so their edges are soft as on a canvas."""
    from PIL import Image, ImageDraw

    big = Image.new("L", (4 * side, 4 * side), paper)
    draw = ImageDraw.Draw(big)
    for _ in range(strokes):
        points = rng.uniform(0.15, 0.85, (int(rng.integers(2, 7)), 2)) * 4 * side
        draw.line([tuple(p) for p in points], fill=ink, width=4 * width, joint="curve")
    return big.resize((side, side), Image.LANCZOS)
