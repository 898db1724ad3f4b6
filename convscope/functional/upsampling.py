"""Resizing feature maps: each output row reads one or two input rows, then each column does.

Interpolation is separable: resizing (H, W) to (H_out, W_out) resizes every column from H to
H_out, then every row from W to W_out. Along one axis, output position ``o`` reads

* ``"nearest"``: one input position, ``src = floor(o * scale)`` (PyTorch's legacy nearest);
* ``"bilinear"``: two neighbours ``i0 = floor(src)`` and ``i1 = i0 + 1`` (the last position
  repeats at the edge), mixed ``(1 - l)*x[i0] + l*x[i1]`` with ``l = src - i0``, where
  ``src = (o + 0.5)*scale - 0.5`` (``align_corners=False``, clamped at 0) or ``o*scale``
  (``align_corners=True``: the corner pixels' centres line up).

``scale`` is PyTorch's: ``1/scale_factor`` when a scale factor is given, else
``in/out``; with ``align_corners=True`` it is ``(in - 1)/(out - 1)``. An axis whose length
does not change is copied, as PyTorch does, even when its scale factor is not 1. The backward pass sends
each output gradient back to the positions it read, with the same weights (a scatter-add).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..tensor import ShapeError, Tensor

MODES = ("nearest", "bilinear")


class Taps(NamedTuple):
    """What the outputs along one axis read: positions ``near`` (weight ``1 - weight``) and,
    for bilinear, ``far`` (weight ``weight``); both never decrease along the axis."""

    near: np.ndarray
    far: np.ndarray | None = None
    weight: np.ndarray | None = None


def check_resize(size, scale_factor, mode, align_corners) -> None:
    """Raise ValueError for arguments PyTorch's ``interpolate`` refuses (or convscope lacks)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"give exactly one of size and scale_factor, got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    if align_corners is not None and mode != "bilinear":
        raise ValueError(f"align_corners can only be set with mode='bilinear', got mode={mode!r}, "
                         f"align_corners={align_corners!r}")
    if size is not None and not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                                    for s in _two(size)):
        raise ValueError(f"size must be a positive int or a pair of them, got {size!r}")
    if scale_factor is not None and not all(isinstance(f, (int, float, np.number)) and not isinstance(f, bool)
                                            and f > 0 for f in _two(scale_factor)):
        raise ValueError(f"scale_factor must be a positive number or a pair of them, got {scale_factor!r}")


def _two(value):
    return tuple(value) if isinstance(value, (tuple, list)) and len(value) == 2 else (value, value)


def resized_hw(in_hw: tuple[int, int], size=None, scale_factor=None) -> tuple[int, int]:
    """The output (H_out, W_out): ``size``, or ``floor(H * scale_factor)`` per axis.

    >>> resized_hw((28, 28), scale_factor=1.5)
    (42, 42)
    """
    if size is not None:
        return tuple(int(s) for s in _two(size))
    return tuple(math.floor(n * float(f)) for n, f in zip(in_hw, _two(scale_factor)))


def taps(in_size: int, out_size: int, scale_factor: float | None, mode: str, align_corners: bool,
         dtype: np.dtype) -> Taps:
    """The :class:`Taps` of one axis, computed as PyTorch computes them (nearest in float32,
    bilinear in float32 for float32 maps and float64 for float64 ones), so the same positions
    come out."""
    o = np.arange(out_size)
    if out_size == in_size:  # PyTorch copies an axis whose length stays, whatever the scale factor
        return Taps(o)
    if mode == "nearest":
        if out_size == 2 * in_size:  # PyTorch's exact shortcut
            return Taps(o // 2)
        scale = np.float32(1.0 / scale_factor) if scale_factor else np.float32(in_size) / np.float32(out_size)
        return Taps(np.minimum(np.floor(o.astype(np.float32) * scale).astype(np.int64), in_size - 1))
    real = np.float64 if dtype == np.float64 else np.float32
    if align_corners:
        scale = real(in_size - 1) / real(out_size - 1) if out_size > 1 else real(0)
        src = scale * o.astype(real)
    else:
        scale = real(1.0 / scale_factor) if scale_factor else real(in_size) / real(out_size)
        src = np.maximum(scale * (o.astype(real) + real(0.5)) - real(0.5), 0)
    near = src.astype(np.int64)
    weight = np.clip(src - near, 0, 1).astype(dtype)
    return Taps(near, near + (near < in_size - 1), weight)


def _along(axis, values, ndim):
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def gather(a: np.ndarray, axis: int, t: Taps) -> np.ndarray:
    """Resize ``a`` along ``axis``: each output reads its taps."""
    out = a.take(t.near, axis)
    if t.far is not None:  # near + (far - near)*weight, in place: fresh big arrays are slow to fill
        step = a.take(t.far, axis)
        step -= out
        step *= _along(axis, t.weight, a.ndim)
        out += step
    return out


def scatter(g: np.ndarray, axis: int, t: Taps, size: int) -> np.ndarray:
    """The adjoint of :func:`gather`: add each output's gradient, weighted, into the positions
    it read (``size`` of them along ``axis``).

    The outputs that read one position are neighbours (taps never decrease), so pass r adds
    the r-th output of every position at once (2 passes for a factor 2): their positions all
    differ. Each pass runs as strided slices where its outputs and positions step evenly,
    which NumPy adds at memory speed (an indexed add is ~10x slower)."""
    shape = list(g.shape)
    shape[axis] = size
    out = np.zeros(shape, g.dtype)
    parts = [(t.near, None)] if t.far is None else [(t.near, 1 - t.weight), (t.far, t.weight)]
    source, target = [slice(None)] * g.ndim, [slice(None)] * g.ndim
    for index, weight in parts:
        rank = np.arange(len(index)) - np.searchsorted(index, index)  # place of each output in its run
        for r in range(int(rank.max()) + 1):
            chosen = np.flatnonzero(rank == r)
            for source[axis], target[axis] in _even_steps(chosen, index[chosen]):
                piece = g[tuple(source)]
                out[tuple(target)] += piece if weight is None else piece * _along(axis, weight[source[axis]], g.ndim)
    return out


def _even_steps(sources, targets):
    """Cut two increasing index arrays into pieces where each steps evenly: (slice, slice) pairs."""
    pieces, i, n = [], 0, len(sources)
    while i < n:
        j = i + 1  # the piece is [i, j)
        if j < n:
            ds, dt = sources[j] - sources[i], targets[j] - targets[i]
            while j + 1 < n and sources[j + 1] - sources[j] == ds and targets[j + 1] - targets[j] == dt:
                j += 1
            j += 1
        else:
            ds = dt = 1
        pieces.append((slice(sources[i], sources[j - 1] + 1, ds), slice(targets[i], targets[j - 1] + 1, dt)))
        i = j
    return pieces


def interpolate(x: Tensor, size: int | tuple[int, int] | None = None,
                scale_factor: float | tuple[float, float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """Resize the maps of ``x`` (N, C, H, W), as ``torch.nn.functional.interpolate``.

    Args:
        size (int or pair): the output (H_out, W_out). Or:
        scale_factor (float or pair): ``H_out = floor(H * scale_factor)``; the positions read
            use ``1/scale_factor`` (PyTorch's default, ``recompute_scale_factor=None``).
        mode (str): "nearest" (default; ``src = floor(dst * scale)``) or "bilinear".
        align_corners (bool or None): bilinear only; None means False.

    Shape:
        Output (N, C, H_out, W_out), ``H_out = size`` or ``floor(H * scale_factor)`` (same for W).

    >>> x = Tensor(np.array([[[[0.0, 1.0], [2.0, 3.0]]]]))
    >>> interpolate(x, scale_factor=2).numpy()[0, 0]
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
    >>> interpolate(x, size=3, mode="bilinear", align_corners=True).numpy()[0, 0]
    array([[0. , 0.5, 1. ],
           [1. , 1.5, 2. ],
           [2. , 2.5, 3. ]])
    """
    check_resize(size, scale_factor, mode, align_corners)
    if x.ndim != 4:
        raise ShapeError(f"interpolate: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    in_hw, out_hw = x.shape[2:], resized_hw(x.shape[2:], size, scale_factor)
    if min(out_hw) < 1:
        raise ShapeError(f"interpolate: input {x.shape} with scale_factor={scale_factor!r} gives an empty "
                         f"output {out_hw}")
    factors = (None, None) if scale_factor is None else _two(scale_factor)
    axes = [taps(i, o, f, mode, bool(align_corners), x.dtype) for i, o, f in zip(in_hw, out_hw, factors)]
    out = _in_memory_order(x.data, lambda a, h, w: gather(gather(a, h, axes[0]), w, axes[1]))

    def backward(g):
        return (_in_memory_order(g, lambda a, h, w: scatter(scatter(a, w, axes[1], in_hw[1]), h, axes[0], in_hw[0])),)

    return Tensor.from_op(out, (x,), backward, "interpolate")


def _in_memory_order(a, resize):
    """``resize(array, h_axis, w_axis)`` on ``a`` (N, C, H, W) seen in its memory order: a
    batch-last map as (C, H, W, N), so its copies run along contiguous memory and the result
    stays batch-last; any other as it is."""
    if a.transpose(1, 2, 3, 0).flags.c_contiguous and a.shape[0] > 1:
        return resize(a.transpose(1, 2, 3, 0), 1, 2).transpose(3, 0, 1, 2)
    return resize(a, 2, 3)
