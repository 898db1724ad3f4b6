"""Pooling: sliding windows, then a reduction (max, sum/average, or an L_p norm)."""

from __future__ import annotations

import numpy as np

from ..tensor import ShapeError, Tensor
from ..windows import col2im, pad2d, pair, pool_window, reduce_windows, sliding_windows


class _Pooling:
    """One pooling call's :class:`~convscope.windows.Window`, with its input and output sizes."""

    def __init__(self, x, kernel_size, stride, padding, dilation, ceil_mode, name):
        if x.ndim != 4:
            raise ShapeError(f"{name}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
        try:
            self.window = pool_window(kernel_size, stride, padding, dilation, ceil_mode)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        self.in_hw = x.shape[2:]
        self.out_hw = self.window.output_hw(self.in_hw)
        if min(self.out_hw) < 1:
            raise ShapeError(f"{name}: input {x.shape} is smaller than kernel_size {self.window.kernel}")
        self.pads = self.window.pads(self.in_hw, self.out_hw)  # a last ceil_mode window may overhang: pad just enough

    def windows(self, padded):
        w = self.window
        return sliding_windows(padded, w.kernel, w.stride, w.dilation, self.out_hw)

    def col2im(self, patch, padded_shape, dtype):
        """Scatter window gradients back and crop the padding off."""
        w = self.window
        full = col2im(patch, padded_shape, w.kernel, w.stride, w.dilation, self.out_hw, dtype)
        (h, wd), top, left = self.in_hw, self.pads[0], self.pads[2]
        return full[:, :, top:top + h, left:left + wd]


def max_pool2d(x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
               ceil_mode: bool = False) -> Tensor:
    """Largest value in each window, as ``torch.nn.functional.max_pool2d``.

    Padding is ``-inf``, so it never wins. The gradient goes to the first maximal element of
    each window in row-major order (PyTorch's choice when values tie).

    Args:
        x (Tensor): (N, C, H, W).
        kernel_size (int or pair): window size.
        stride (int or pair): default ``kernel_size`` (non-overlapping windows).
        padding (int or pair): at most half the kernel. Default 0.
        dilation (int or pair): default 1.
        ceil_mode (bool): round the output size up (keep a last partial window). Default False.

    Shape:
        ``H_out = floor((H + 2*padding - dilation*(k-1) - 1)/stride) + 1`` (ceil with ceil_mode).

    >>> max_pool2d(Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2).numpy()[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    geo = _Pooling(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    padded = pad2d(x.data, geo.pads, -np.inf)
    windows = geo.windows(padded)
    out = reduce_windows(windows, np.maximum)

    def backward(g):
        unclaimed = np.ones_like(out, dtype=bool)  # stored batch-last, like out and g

        def patch(i, j):  # called for offsets in row-major order: the first maximum claims g
            hit = np.equal(windows[:, :, i, j], out)
            hit &= unclaimed
            np.bitwise_xor(unclaimed, hit, out=unclaimed)  # hit is a subset: clears exactly its bits
            return g * hit

        return (geo.col2im(patch, padded.shape, x.dtype),)

    return Tensor.from_op(out, (x,), backward, "max_pool2d")


def sum_pool2d(x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
               ceil_mode: bool = False) -> Tensor:
    """Sum of each window (zero padding): the shared core of average and L_p pooling."""
    return _sum_windows(x, _Pooling(x, kernel_size, stride, padding, dilation, ceil_mode, "sum_pool2d"))


def _sum_windows(x, geo):
    padded = pad2d(x.data, geo.pads, 0.0)
    out = reduce_windows(geo.windows(padded), np.add)

    def backward(g):
        return (geo.col2im(lambda i, j: g, padded.shape, x.dtype),)

    return Tensor.from_op(out, (x,), backward, "sum_pool2d")


def _window_counts(geo, count_include_pad, dtype):
    """How many pixels each window averages over, shape (H_out, W_out).

    Pixels in the ceil_mode overhang never count; padding counts if ``count_include_pad``.
    """
    (h, w), (ph, pw), pads = geo.in_hw, geo.window.before(), geo.pads
    counted = np.zeros((1, 1, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=dtype)
    if count_include_pad:
        counted[:, :, :h + 2 * ph, :w + 2 * pw] = 1
    else:
        counted[:, :, ph:ph + h, pw:pw + w] = 1
    return reduce_windows(geo.windows(counted), np.add)[0, 0]


def avg_pool2d(x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean of each window, as ``torch.nn.functional.avg_pool2d``.

    Args:
        x (Tensor): (N, C, H, W).
        kernel_size, stride (default kernel_size), padding (default 0), ceil_mode: as in
            :func:`max_pool2d`.
        count_include_pad (bool): divide by the window size including zero padding
            (True, default) or by the number of real pixels in the window (False).

    Shape:
        ``H_out = floor((H + 2*padding - k)/stride) + 1`` (ceil with ceil_mode).

    >>> avg_pool2d(Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2).numpy()[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    geo = _Pooling(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    return _sum_windows(x, geo) * (1.0 / _window_counts(geo, count_include_pad, x.dtype))


def _root(s, p):
    """``s ** (1/p)`` for ``s >= 0``, with gradient 0 where ``s == 0`` (the norm's subgradient)."""
    data = s.data
    out = data ** (1.0 / p)

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(data > 0, out / (p * data), 0)
        return (g * scale,)

    return Tensor.from_op(out, (s,), backward, "root")


def lp_pool2d(x: Tensor, norm_type: float, kernel_size: int | tuple[int, int],
              stride: int | tuple[int, int] | None = None, ceil_mode: bool = False,
              padding: int | tuple[int, int] = 0) -> Tensor:
    """L_p norm of each window: ``(sum |x|^p) ** (1/p)``; ``norm_type=2`` is L2 pooling.

    Unlike PyTorch, which computes ``(sum x^p) ** (1/p)`` and so gives NaN or wrong signs
    for negative inputs with odd p, convscope uses ``|x|``: a true norm for any p >= 1.
    For non-negative inputs (e.g. after ReLU) both agree. Zero padding adds nothing.

    Args:
        norm_type (float): p >= 1. ``1`` sums absolute values; large p approaches max pooling.
        kernel_size, stride (default kernel_size), ceil_mode: as in :func:`max_pool2d`, in
            PyTorch's order.
        padding (int or pair): zeros around the input (an addition; PyTorch has none). Default 0.

    >>> lp_pool2d(Tensor(np.array([[[[3.0, -4.0]]]])), 2, (1, 2)).numpy().ravel()
    array([5.])
    """
    p = float(norm_type)
    if not p >= 1:
        raise ValueError(f"lp_pool2d: norm_type must be >= 1, got {norm_type!r}")
    geo = _Pooling(x, kernel_size, stride, padding, 1, ceil_mode, "lp_pool2d")
    return _root(_sum_windows(x.abs() ** p, geo), p)


def _average_matrix(size, out, dtype):
    """(out, size) matrix whose row i averages PyTorch's adaptive bin i of an axis."""
    m = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool2d(x: Tensor, output_size: int | tuple[int, int]) -> Tensor:
    """Average over PyTorch's adaptive bins so the output is ``output_size`` (global: 1).

    Bin i of an axis of length L covers ``[floor(i*L/out), ceil((i+1)*L/out))``. Written as
    two products with fixed averaging matrices: ``A_h @ x @ A_w.T``.

    >>> adaptive_avg_pool2d(Tensor(np.ones((2, 3, 5, 7))), 1).shape
    (2, 3, 1, 1)
    """
    if x.ndim != 4:
        raise ShapeError(f"adaptive_avg_pool2d: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    oh, ow = pair(output_size, "output_size")
    h, w = x.shape[2:]
    a_h = Tensor(_average_matrix(h, oh, x.dtype), dtype=x.dtype)
    a_w = Tensor(_average_matrix(w, ow, x.dtype).T, dtype=x.dtype)
    return a_h @ x @ a_w
