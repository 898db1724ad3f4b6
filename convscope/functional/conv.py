"""2-D convolution (cross-correlation): sliding windows, then one matrix product.

Feature maps are stored batch-last, so the window matrix's copies run W_out*N numbers at a
time. The forward pass builds the whole window matrix for its one product and lets it go;
the backward pass rebuilds it a band of output rows at a time (:func:`row_bands`), so that
each band is still in cache when its gradient products read it.
"""

from __future__ import annotations

import numpy as np

from ..tensor import DTypeError, ShapeError, Tensor
from ..windows import batch_last, col2im, conv_window, im2col, pad2d, row_bands


def _check_conv_input(x, weight, groups):
    if x.ndim != 4:
        raise ShapeError(f"expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ShapeError(f"expected a 4-D weight (C_out, C_in/groups, kH, kW), got {weight.shape}")
    c_in = weight.shape[1] * groups
    if x.shape[1] != c_in:
        plural = "channel" if c_in == 1 else "channels"
        raise ShapeError(f"expected input with {c_in} {plural}, got shape {x.shape}")
    if weight.shape[0] % groups:
        raise ShapeError(f"out_channels {weight.shape[0]} is not divisible by groups={groups}")
    if x.dtype != weight.dtype:
        raise DTypeError(f"expected {weight.dtype} input like the weights, got {x.dtype}; "
                         f"convert with Tensor(x, dtype=np.{weight.dtype})")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, int] | str = 0, dilation: int | tuple[int, int] = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of ``x`` with ``weight``, as ``torch.nn.functional.conv2d``.

    Args:
        x (Tensor): input (N, C_in, H, W).
        weight (Tensor): filters (C_out, C_in/groups, kH, kW).
        bias (Tensor or None): (C_out,), added to every output pixel. Default None.
        stride, dilation (int or pair): default 1.
        padding (int, pair, "valid" or "same"): zeros added around the input. Default 0.
        groups (int): split channels into this many independent convolutions. Default 1.

    Shape:
        Output (N, C_out, H_out, W_out) with
        ``H_out = floor((H + 2*padding - dilation*(kH-1) - 1)/stride) + 1`` (same for W).

    >>> x = Tensor(np.ones((1, 1, 4, 4)))
    >>> conv2d(x, Tensor(np.ones((2, 1, 3, 3))), padding=1).shape
    (1, 2, 4, 4)
    """
    _check_conv_input(x, weight, groups)
    window = conv_window(weight.shape[2:], stride, padding, dilation)
    kernel, stride, dilation, pads = window.kernel, window.stride, window.dilation, window.padding
    out_hw = window.output_hw(x.shape[2:])
    if min(out_hw) < 1:
        raise ShapeError(f"input {x.shape} is smaller than the dilated kernel {kernel} with padding {padding}")
    n, c, h, w = x.shape
    xp = pad2d(x.data, pads)
    wmat = weight.data.reshape(groups, weight.shape[0] // groups, -1)  # (groups, C_out/g, C/g*kH*kW)
    cols = im2col(xp, kernel, stride, dilation, out_hw).reshape(groups, wmat.shape[2], -1)
    out = np.matmul(wmat, cols).reshape(weight.shape[0], *out_hw, n)  # one product, batch-last
    del cols  # the backward rebuilds it band by band
    if bias is not None:
        out += bias.data[:, None, None, None]

    def backward(g):
        g2 = g.transpose(1, 2, 3, 0).reshape(wmat.shape[:2] + (-1,))  # a view: g is batch-last
        gb = g2.sum(axis=2).reshape(-1) if bias is not None and bias.requires_grad else None
        gw = np.zeros_like(wmat) if weight.requires_grad else None
        gxp = batch_last(xp.shape, x.dtype) if x.requires_grad else None
        row_bytes = wmat.shape[2] * groups * out_hw[1] * n * x.dtype.itemsize
        for rows, span in row_bands(out_hw[0], row_bytes, kernel[0], stride[0], dilation[0]):
            band_hw = (len(rows), out_hw[1])
            g_band = g2[:, :, rows.start * band_hw[1] * n:rows.stop * band_hw[1] * n]  # columns of these rows
            if gw is not None:
                cols = im2col(xp[:, :, span], kernel, stride, dilation, band_hw).reshape(groups, wmat.shape[2], -1)
                # g cols^T, computed as (cols g^T)^T: OpenBLAS runs these long, thin products
                # about 2x faster this way round with its AVX-512 kernels, a little with AVX2
                gw += np.matmul(cols, g_band.transpose(0, 2, 1)).transpose(0, 2, 1)
            if gxp is not None:
                gcols = np.matmul(wmat.transpose(0, 2, 1), g_band).reshape(c, *kernel, *band_hw, n)
                # gcols bound as a default: col2im calls the patch right here, in this band
                col2im(lambda i, j, gcols=gcols: gcols[:, i, j].transpose(3, 0, 1, 2), None, kernel, stride, dilation,
                       band_hw, x.dtype, out=gxp[:, :, span])
        gx = None if gxp is None else gxp[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w]
        return gx, None if gw is None else gw.reshape(weight.shape), gb

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out.transpose(3, 0, 1, 2), parents, backward, "conv2d")

