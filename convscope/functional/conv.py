"""2-D convolution (cross-correlation): sliding windows, then one matrix product; and the
transposed convolution, the same two steps the other way round.

* ``conv2d``: im2col (every window as a column), then weights times columns;
* ``conv_transpose2d``: weights times input pixels (one window-sized patch per pixel), then
  col2im (each patch added where its window lies on the output). Its backward is conv2d's
  forward and conv2d's backward is its forward: the two ops are each other's adjoint.

Feature maps are stored batch-last, so the window matrix's copies run W_out*N numbers at a
time. conv2d's forward builds the whole window matrix for its one product and lets it go;
the passes that use the window matrix of the smaller side (conv2d's backward, both passes of
conv_transpose2d) build it a band of rows at a time (:func:`row_bands`), so that each band is
still in cache when its products read it.
"""

from __future__ import annotations

import numpy as np

from ..tensor import DTypeError, ShapeError, Tensor
from ..windows import batch_last, col2im, conv_transpose_window, conv_window, im2col, pad2d, row_bands, to_batch_last


def _check_conv_input(x, weight, groups, transposed=False):
    layout = "(C_in, C_out/groups, kH, kW)" if transposed else "(C_out, C_in/groups, kH, kW)"
    if x.ndim != 4:
        raise ShapeError(f"expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ShapeError(f"expected a 4-D weight {layout}, got {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    c_in = weight.shape[0] if transposed else weight.shape[1] * groups
    if x.shape[1] != c_in:
        plural = "channel" if c_in == 1 else "channels"
        raise ShapeError(f"expected input with {c_in} {plural}, got shape {x.shape}")
    if weight.shape[0] % groups:
        side = "in_channels" if transposed else "out_channels"
        raise ShapeError(f"{side} {weight.shape[0]} is not divisible by groups={groups}")
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



def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
                     padding: int | tuple[int, int] = 0, output_padding: int | tuple[int, int] = 0,
                     groups: int = 1, dilation: int | tuple[int, int] = 1) -> Tensor:
    """Transposed 2-D convolution, as ``torch.nn.functional.conv_transpose2d``.

    Each input pixel paints its value times a kernel onto a window of the output, the windows
    ``stride`` pixels apart; where they overlap the paint adds up. This is the adjoint of
    ``conv2d`` with the same window (what conv2d's backward does to a gradient), which is why
    it maps a conv's output size back to its input size: a learned upsampling.

    Args:
        x (Tensor): input (N, C_in, H, W).
        weight (Tensor): kernels (C_in, C_out/groups, kH, kW): input channel first.
        bias (Tensor or None): (C_out,), added to every output pixel. Default None.
        stride, dilation (int or pair): default 1.
        padding (int or pair): rows and columns cropped off each border of the output. Default 0.
        output_padding (int or pair): rows and columns added at the bottom and right, smaller
            than the stride or the dilation. Default 0.
        groups (int): split channels into this many independent convolutions. Default 1.

    Shape:
        Output (N, C_out, H_out, W_out) with
        ``H_out = (H - 1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1`` (same for W).

    >>> x = Tensor(np.ones((1, 1, 2, 2)))
    >>> conv_transpose2d(x, Tensor(np.ones((1, 1, 3, 3))), stride=2).numpy()[0, 0]
    array([[1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.],
           [2., 2., 4., 2., 2.],
           [1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.]])
    """
    _check_conv_input(x, weight, groups, transposed=True)
    window = conv_transpose_window(weight.shape[2:], stride, padding, output_padding, dilation)
    kernel, stride, dilation, (top, left) = window.kernel, window.stride, window.dilation, window.before()
    out_hw = window.output_hw(x.shape[2:])
    if min(out_hw) < 1:
        raise ShapeError(f"input {x.shape} gives an empty output {out_hw}: padding {(top, left)} crops "
                         f"more than the {kernel} kernels paint")
    n, c, h, w = x.shape
    c_out = weight.shape[1] * groups
    # the canvas every window fits on, before the padding is cropped (output_padding may reach past it)
    canvas = (n, c_out) + tuple(max((i - 1) * s + d * (k - 1) + 1, p + o) for i, s, d, k, p, o in
                                zip((h, w), stride, dilation, kernel, (top, left), out_hw))
    xmat = to_batch_last(x.data).transpose(1, 2, 3, 0).reshape(groups, c // groups, -1)  # (g, C_in/g, H*W*N)
    wmat = weight.data.reshape(groups, c // groups, -1)  # (g, C_in/g, C_out/g*kH*kW)
    full = batch_last(canvas, x.dtype)
    row_bytes = wmat.shape[2] * groups * w * n * x.dtype.itemsize
    for rows, span in row_bands(h, row_bytes, kernel[0], stride[0], dilation[0]):
        band_hw = (len(rows), w)
        patches = np.matmul(wmat.transpose(0, 2, 1), xmat[:, :, rows.start * w * n:rows.stop * w * n])
        patches = patches.reshape(c_out, *kernel, *band_hw, n)  # pixel (y, x)'s patch, tap (i, j)
        col2im(lambda i, j, patches=patches: patches[:, i, j].transpose(3, 0, 1, 2), None, kernel, stride,
               dilation, band_hw, x.dtype, out=full[:, :, span])
    out = full[:, :, top:top + out_hw[0], left:left + out_hw[1]]
    if bias is not None:
        out += bias.data[:, None, None]

    def backward(g):
        gb = g.sum(axis=(0, 2, 3)) if bias is not None and bias.requires_grad else None
        gfull = pad2d(g, (top, canvas[2] - top - out_hw[0], left, canvas[3] - left - out_hw[1]))
        gx = batch_last(x.shape, x.dtype) if x.requires_grad else None
        gxmat = None if gx is None else gx.transpose(1, 2, 3, 0).reshape(xmat.shape)  # a view
        gw = np.zeros_like(wmat) if weight.requires_grad else None
        for rows, span in row_bands(h, row_bytes, kernel[0], stride[0], dilation[0]):
            columns = slice(rows.start * w * n, rows.stop * w * n)
            gcols = im2col(gfull[:, :, span], kernel, stride, dilation, (len(rows), w))
            gcols = gcols.reshape(groups, wmat.shape[2], -1)  # the windows of g: an ordinary conv
            if gxmat is not None:
                gxmat[:, :, columns] = np.matmul(wmat, gcols)
            if gw is not None:  # x gcols^T, computed as (gcols x^T)^T: see conv2d's backward
                gw += np.matmul(gcols, xmat[:, :, columns].transpose(0, 2, 1)).transpose(0, 2, 1)
        return gx, None if gw is None else gw.reshape(weight.shape), gb

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, parents, backward, "conv_transpose2d")
