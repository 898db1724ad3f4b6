"""Sliding windows: the one idea behind convolution and every pooling layer.

A k x k window slides over each (padded) feature map with a given stride and dilation.
:func:`sliding_windows` returns every window at once as a zero-copy strided view of shape
``(N, C, kH, kW, H_out, W_out)``: entry ``[n, c, i, j, y, x]`` is input pixel
``(y*stride + i*dilation, x*stride + j*dilation)`` of the padded map.

* convolution = windows, then one matrix product (:func:`im2col` lays the windows out as
  the columns of a matrix);
* max / average / L2 pooling = windows, then a reduction over the two kernel axes;
* transposed convolution = the same windows read the other way: a matrix product gives each
  input pixel a window-sized patch (its value times the kernel), and :func:`col2im` adds the
  patches into the (larger) output where their windows lie.

:func:`col2im` is the way back: it adds each window's gradient into the pixels it came from.
:func:`row_bands` cuts the output rows into bands, so a backward pass can rebuild and use the
window matrix one cache-sized band at a time.

Memory layout: arrays have the NCHW shape everywhere, but what this module creates is stored
*batch-last*, (C, H, W, N) in memory and seen as NCHW through a transposed view. Then the
windows of one kernel offset, across the batch, are long contiguous runs (W_out*N numbers at
stride 1, N at larger strides) instead of rows of W_out, so the copies in im2col and the adds
in col2im run at memory speed (3-9x faster than NCHW at LeNet's shapes). A matrix product
over these columns gives a batch-last result for free, and element-wise NumPy operations
keep the layout. With batch 1 it is plain NCHW.

Output size along one axis (``floor`` by default, ``ceil`` with ``ceil_mode``)::

    out = floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1

>>> output_size(28, kernel=5, padding=2)
28
>>> output_size(5, kernel=2, stride=2, ceil_mode=True)
3

A transposed convolution runs the formula backwards (:func:`transposed_output_size`)::

    out = (size - 1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1

>>> transposed_output_size(14, kernel=4, stride=2, padding=1)
28
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import DTypeLike


def pair(value: int | tuple[int, int], name: str = "value") -> tuple[int, int]:
    """``3 -> (3, 3)``; a 2-sequence passes through as a tuple of ints."""
    kind = type(value)
    if kind is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return value  # the common case, checked fast: every conv and pooling call passes here
    if kind is int:
        return value, value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                ceil_mode: bool = False) -> int:
    """Number of window positions along one axis (PyTorch's rule, ceil_mode included).

    With ``ceil_mode`` a last, partial window is kept only if it starts inside the input or
    its left padding, never entirely in the right padding.
    """
    return _positions(size, padding, padding, kernel, stride, dilation, ceil_mode)


def transposed_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                           output_padding: int = 0) -> int:
    """Output length of a transposed convolution along one axis: the input length a conv with
    the same window would shrink to ``size`` (``output_padding`` picks among the lengths that
    a stride > 1 maps to the same ``size``)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _positions(size, before, after, kernel, stride, dilation, ceil_mode):
    """:func:`output_size` with ``before`` and ``after`` padding (they differ for "same")."""
    span = size + before + after - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = -(-span // stride) + 1 if ceil_mode else span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    return out


# ----- the geometry of one sliding window ----------------------------------------------
class Window(NamedTuple):
    """How a window slides over the H and W axes: the geometry of a conv or pooling layer.

    Every field is an (H, W) pair except ``padding``, which is (top, bottom, left, right)
    (an even kernel with ``padding="same"`` pads one more row at the bottom). Make one with
    :func:`conv_window`, :func:`pool_window` or :func:`conv_transpose_window`, which check
    the arguments.

    A ``transposed`` window belongs to a transposed convolution: the windows lie on the
    *output* (each input pixel paints one), ``padding`` is cropped off the output's borders
    and ``output_padding`` adds rows and columns at its bottom and right.

    >>> w = pool_window(3, stride=2, padding=1, ceil_mode=True)
    >>> w.output_hw((6, 6)), w.pads((6, 6))
    ((4, 4), (1, 2, 1, 2))
    """

    kernel: tuple
    stride: tuple
    dilation: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)
    ceil_mode: bool = False
    transposed: bool = False
    output_padding: tuple = (0, 0)

    def output_hw(self, in_hw: tuple[int, int]) -> tuple[int, int]:
        """(H_out, W_out) for an input of (H, W); 0 where the input is too small."""
        (k_h, k_w), (s_h, s_w), (d_h, d_w), (top, bottom, left, right) = self[:4]
        if self.transposed:
            return tuple(max(0, transposed_output_size(size, k, s, p, d, op)) for size, k, s, p, d, op in
                         zip(in_hw, self.kernel, self.stride, (top, left), self.dilation, self.output_padding))
        return (_positions(in_hw[0], top, bottom, k_h, s_h, d_h, self.ceil_mode),
                _positions(in_hw[1], left, right, k_w, s_w, d_w, self.ceil_mode))

    def pads(self, in_hw: tuple[int, int], out_hw: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """Padding (top, bottom, left, right) that makes every window of ``output_hw`` fit:
        ``padding``, plus the overhang of a last, partial ceil_mode window at the bottom/right.
        ``out_hw``: the output size, if already computed."""
        top, bottom, left, right = self.padding
        out_hw = self.output_hw(in_hw) if out_hw is None else out_hw
        ends = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out_hw, self.stride, self.dilation, self.kernel)]
        return top, max(ends[0] - in_hw[0] - top, bottom), left, max(ends[1] - in_hw[1] - left, right)

    def before(self) -> tuple[int, int]:
        """Padding before the first row and column, (top, left): where window 0 starts."""
        return self.padding[0], self.padding[2]


def conv_window(kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                padding: int | tuple[int, int] | str = 0, dilation: int | tuple[int, int] = 1) -> Window:
    """The :class:`Window` of a convolution, checked.

    ``padding`` is an int, a pair, ``"valid"`` (none) or ``"same"`` (keep H and W; stride 1
    only; an even kernel's extra row/column goes at the bottom/right, as in PyTorch).

    >>> conv_window(4, padding="same").padding
    (1, 2, 1, 2)
    """
    kernel = _at_least(kernel_size, "kernel_size", 1)
    stride, dilation = _at_least(stride, "stride", 1), _at_least(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        if padding == "same" and stride != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
        totals = [d * (k - 1) if padding == "same" else 0 for k, d in zip(kernel, dilation)]
        pads = (totals[0] // 2, totals[0] - totals[0] // 2, totals[1] // 2, totals[1] - totals[1] // 2)
    else:
        ph, pw = _at_least(padding, "padding", 0)
        pads = (ph, ph, pw, pw)
    return Window(kernel, stride, dilation, pads)


def pool_window(kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
                ceil_mode: bool = False) -> Window:
    """The :class:`Window` of a pooling layer, checked: ``stride`` defaults to ``kernel_size``
    and ``padding`` may be at most half the kernel (a window must see some real input)."""
    kernel, padding, dilation = pair(kernel_size, "kernel_size"), pair(padding, "padding"), pair(dilation, "dilation")
    stride = kernel if stride is None else pair(stride, "stride")
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"kernel_size and stride must be >= 1 and padding >= 0, got kernel_size={kernel_size!r}, "
                         f"stride={stride!r}, padding={padding!r}")
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"padding {padding} must be at most half of kernel_size {kernel}")
    return Window(kernel, stride, dilation, (padding[0], padding[0], padding[1], padding[1]), bool(ceil_mode))


def conv_transpose_window(kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                          padding: int | tuple[int, int] = 0, output_padding: int | tuple[int, int] = 0,
                          dilation: int | tuple[int, int] = 1) -> Window:
    """The transposed :class:`Window` of a transposed convolution, checked as PyTorch does:
    ``output_padding`` must be smaller than the stride or the dilation (a larger one would
    add rows that no window reaches).

    >>> conv_transpose_window(3, stride=2, padding=1, output_padding=1).output_hw((14, 14))
    (28, 28)
    """
    kernel = _at_least(kernel_size, "kernel_size", 1)
    stride, dilation = _at_least(stride, "stride", 1), _at_least(dilation, "dilation", 1)
    (ph, pw), extra = _at_least(padding, "padding", 0), _at_least(output_padding, "output_padding", 0)
    if any(op >= s and op >= d for op, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"output_padding must be smaller than either stride or dilation, got "
                         f"output_padding={output_padding!r}, stride={stride!r}, dilation={dilation!r}")
    return Window(kernel, stride, dilation, (ph, ph, pw, pw), transposed=True, output_padding=extra)


def _at_least(value, name, minimum):
    result = pair(value, name)
    if min(result) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return result


def batch_last(shape: tuple[int, int, int, int], dtype: DTypeLike, fill: float = 0) -> np.ndarray:
    """A new (N, C, H, W) array filled with ``fill``, stored batch-last."""
    n, c, h, w = shape
    return np.full((c, h, w, n), fill, dtype=dtype).transpose(3, 0, 1, 2)


def to_batch_last(x: np.ndarray) -> np.ndarray:
    """``x`` (N, C, H, W) itself if it is stored batch-last, else a batch-last copy."""
    if x.transpose(1, 2, 3, 0).flags.c_contiguous:
        return x
    out = batch_last(x.shape, x.dtype)
    out[...] = x
    return out


def pad2d(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of ``x`` (N, C, H, W) by ``pads = (top, bottom, left, right)``.

    The result is stored batch-last (see the module notes); a batch-last ``x`` with no
    padding is returned as it is.
    """
    top, bottom, left, right = pads
    if not any(pads):
        return to_batch_last(x)
    n, c, h, w = x.shape
    out = batch_last((n, c, h + top + bottom, w + left + right), x.dtype, value)
    out[:, :, top:top + h, left:left + w] = x
    return out


def sliding_windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                    out_hw: tuple[int, int]) -> np.ndarray:
    """Zero-copy view (N, C, kH, kW, H_out, W_out) of every window of padded ``x``."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    n, c = x.shape[:2]
    s_n, s_c, s_h, s_w = x.strides
    return as_strided(
        x,
        shape=(n, c, kh, kw, ho, wo),
        strides=(s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
        writeable=False,
    )


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
           out_hw: tuple[int, int]) -> np.ndarray:
    """Windows of padded ``x`` as matrix columns, shape (C*kH*kW, H_out*W_out*N).

    Row ``c*kH*kW + i*kW + j`` holds kernel tap (c, i, j) for every output pixel, so a
    weight matrix (C_out, C*kH*kW) times these columns is the convolution. Column
    ``(y*W_out + x)*N + n`` is output pixel (y, x) of image n: batch-last, like the inputs,
    so each copied run is W_out*N numbers long rather than one row of W_out.
    """
    windows = sliding_windows(x, kernel, stride, dilation, out_hw)
    n, c, kh, kw, ho, wo = windows.shape
    return windows.transpose(1, 2, 3, 4, 5, 0).reshape(c * kh * kw, ho * wo * n)


def col2im(patch: Callable[[int, int], np.ndarray], padded_shape: tuple[int, int, int, int] | None,
           kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, int],
           dtype: DTypeLike, out: np.ndarray | None = None) -> np.ndarray:
    """Sum window gradients back onto the padded input: the adjoint of the windows view.

    ``patch(i, j)`` gives the gradient reaching kernel offset (i, j) of every window, shape
    (N, C, H_out, W_out). Returns an array of ``padded_shape`` (N, C, H_p, W_p), stored
    batch-last; or, given ``out`` (a view of that shape), adds into it and returns it.
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    if out is None:
        out = batch_last(padded_shape, dtype)
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
        for j in range(kw):
            cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
            out[:, :, rows, cols] += patch(i, j)
    return out


BAND_BYTES = 4 << 20


def row_bands(out_h: int, row_bytes: int, kernel_h: int, stride_h: int,
              dilation_h: int) -> Iterator[tuple[range, slice]]:
    """Cut output rows ``0..out_h`` into bands whose window matrix takes about BAND_BYTES.

    Yields ``(rows, span)``: a range of output rows and the slice of padded input rows their
    windows read (neighbouring spans overlap by the kernel's reach). A window matrix of a few
    MiB stays in cache between being built and being used; LeNet-5's first one is 20 MB at
    batch 256, and building it whole made the backward pass ~1.3 ms (8%) slower per step.
    """
    step = max(1, BAND_BYTES // max(row_bytes, 1))
    for y0 in range(0, out_h, step):
        y1 = min(out_h, y0 + step)
        yield range(y0, y1), slice(y0 * stride_h, (y1 - 1) * stride_h + dilation_h * (kernel_h - 1) + 1)


def reduce_windows(windows: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """Reduce each window over its two kernel axes with a binary ufunc (np.maximum, np.add).

    ``windows`` is (N, C, kH, kW, H_out, W_out); the result is (N, C, H_out, W_out).
    The reduction folds the ufunc over the kernel offsets, a few long passes; NumPy's
    ``windows.max(axis=(2, 3))`` is slower on a strided view (2x2 max pool of (256, 6, 28, 28)
    float32: 0.2 ms against 0.6 ms batch-last, 0.4 ms against 17.5 ms stored NCHW).
    """
    kh, kw = windows.shape[2:4]
    out = windows[:, :, 0, 0].copy(order="K")  # keep the memory layout
    for i in range(kh):
        for j in range(kw):
            if i or j:
                ufunc(out, windows[:, :, i, j], out=out)
    return out
