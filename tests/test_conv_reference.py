"""conv2d against a naive-loop NumPy reference written from the definition, and by hand."""

import numpy as np
import pytest
from helpers import CONV_CASES, cases, f64, pair, randn, same_padding

from convscope import Tensor
from convscope import functional as F


# ----- the reference: explicit loops over n, c_out, y, x, c_in and kernel taps -----------------
def resolve_padding(padding, kernel, dilation):
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        return same_padding(kernel, dilation)
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def conv_out_shape(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    kh, kw = w_shape[2:]
    top, bottom, left, right = resolve_padding(padding, (kh, kw), (dh, dw))
    return (x_shape[0], w_shape[0], (x_shape[2] + top + bottom - dh * (kh - 1) - 1) // sh + 1,
            (x_shape[3] + left + right - dw * (kw - 1) - 1) // sw + 1)


def tap_positions(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Yield (n, co, y, x_out, c, ci, i, j, iy, ix) for every tap that lands on a real pixel.

    Output pixel (y, x_out) of filter co reads input channel c = group * C_in/groups + ci at
    (iy, ix) = (y*stride - top + i*dilation, x_out*stride - left + j*dilation).
    """
    _, _, h, w = x_shape
    c_out, c_per_group, kh, kw = w_shape
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    top, _, left, _ = resolve_padding(padding, (kh, kw), (dh, dw))
    out_per_group = c_out // groups
    for n, co, y, xo in np.ndindex(conv_out_shape(x_shape, w_shape, stride, padding, dilation)):
        group = co // out_per_group
        for ci, i, j in np.ndindex(c_per_group, kh, kw):
            iy, ix = y * sh - top + i * dh, xo * sw - left + j * dw
            if 0 <= iy < h and 0 <= ix < w:
                yield n, co, y, xo, group * c_per_group + ci, ci, i, j, iy, ix


def naive_conv2d(x, w, b=None, **kw):
    out = np.zeros(conv_out_shape(x.shape, w.shape, **kw))
    if b is not None:
        out += b[None, :, None, None]
    for n, co, y, xo, c, ci, i, j, iy, ix in tap_positions(x.shape, w.shape, **kw):
        out[n, co, y, xo] += x[n, c, iy, ix] * w[co, ci, i, j]
    return out


def naive_conv2d_backward(x, w, g, **kw):
    """Gradients of sum(out * g) w.r.t. x, w and b, by the same loops."""
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for n, co, y, xo, c, ci, i, j, iy, ix in tap_positions(x.shape, w.shape, **kw):
        gx[n, c, iy, ix] += g[n, co, y, xo] * w[co, ci, i, j]
        gw[co, ci, i, j] += g[n, co, y, xo] * x[n, c, iy, ix]
    return gx, gw, g.sum(axis=(0, 2, 3))


# ----- conv2d against the reference, forward and gradients ----------------------------------------
@pytest.mark.parametrize("case", cases(CONV_CASES))
def test_conv2d_matches_naive_reference(case, bands):
    x_np, w_np = randn(*case.x, seed=1), randn(*case.w, seed=2)
    b_np = randn(case.w[0], seed=3) if case.bias else None
    x, w = f64(x_np), f64(w_np)
    b = f64(b_np) if case.bias else None
    out = F.conv2d(x, w, b, **case.kwargs)
    expected = naive_conv2d(x_np, w_np, b_np, **case.kwargs)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)

    g = randn(*expected.shape, seed=4)
    out.backward(g)
    gx, gw, gb = naive_conv2d_backward(x_np, w_np, g, **case.kwargs)
    np.testing.assert_allclose(x.grad, gx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.grad, gw, rtol=1e-10, atol=1e-12)
    if case.bias:
        np.testing.assert_allclose(b.grad, gb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", cases({k: CONV_CASES[k] for k in ("3x3_basic", "groups2_pad1", "same_even_4x3")}))
def test_conv2d_float32_matches_reference(case):
    x_np, w_np, b_np = randn(*case.x, seed=1), randn(*case.w, seed=2), randn(case.w[0], seed=3)
    out = F.conv2d(Tensor(x_np.astype(np.float32)), Tensor(w_np.astype(np.float32)),
                   Tensor(b_np.astype(np.float32)), **case.kwargs)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, naive_conv2d(x_np, w_np, b_np, **case.kwargs), rtol=1e-5, atol=1e-5)


# ----- hand-computed cases ------------------------------------------------------------------
def test_3x3_input_2x2_kernel_by_hand():
    x = Tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), requires_grad=True)  # 1..9
    w = Tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), requires_grad=True)
    b = Tensor(np.array([0.5]), requires_grad=True)
    out = F.conv2d(x, w, b)
    np.testing.assert_allclose(out.data[0, 0], [[37.5, 47.5], [67.5, 77.5]])
    out.sum().backward()
    np.testing.assert_allclose(x.grad[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])  # taps covering each pixel
    np.testing.assert_allclose(w.grad[0, 0], [[12, 16], [24, 28]])              # sum of each tap's pixels
    np.testing.assert_allclose(b.grad, [4.0])


def test_stride_and_padding_by_hand():
    x = Tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    out = F.conv2d(x, Tensor(np.ones((1, 1, 2, 2))), stride=2, padding=1)
    np.testing.assert_allclose(out.data[0, 0], [[1, 2 + 3], [4 + 7, 5 + 6 + 8 + 9]])


def test_same_even_kernel_pads_extra_on_bottom_right():
    # A 2x2 kernel needs one padding row and column in total; like PyTorch, both go after.
    x = Tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    out = F.conv2d(x, Tensor(np.ones((1, 1, 2, 2))), padding="same")
    np.testing.assert_allclose(out.data[0, 0], [[12, 16, 9],
                                                [24, 28, 15],
                                                [15, 17, 9]])


def test_same_4x3_kernel_padding_placement():
    # A one-hot kernel at tap (i, j) shifts the image: out[y, x] = in[y - top + i, x - left + j].
    # For 4x3, total padding is 3 rows (top 1, bottom 2) and 2 columns (left 1, right 1).
    x = np.arange(20.0).reshape(1, 1, 4, 5)
    w = np.zeros((1, 1, 4, 3))
    w[0, 0, 0, 0] = 1.0  # reads in[y - 1, x - 1]
    out = F.conv2d(Tensor(x), Tensor(w), padding="same").data[0, 0]
    expected = np.zeros((4, 5))
    expected[1:, 1:] = x[0, 0, :3, :4]
    np.testing.assert_array_equal(out, expected)


def test_groups_keep_channels_apart_by_hand():
    x = np.stack([np.ones((3, 3)), 10 * np.ones((3, 3))])[None]  # channel 0 ones, channel 1 tens
    out = F.conv2d(Tensor(x), Tensor(np.ones((2, 1, 3, 3))), groups=2)
    np.testing.assert_array_equal(out.data.ravel(), [9.0, 90.0])


def test_dilation_by_hand():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    out = F.conv2d(Tensor(x), Tensor(np.ones((1, 1, 2, 2))), dilation=2)
    np.testing.assert_array_equal(out.data[0, 0, 0], [0 + 2 + 10 + 12, 1 + 3 + 11 + 13, 2 + 4 + 12 + 14])


# ----- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, w_shape, kwargs, error, match", [
    ((2, 3, 5, 5), (4, 1, 3, 3), {}, ValueError, "expected input with 1 channel, got shape"),
    ((2, 3, 5, 5), (4, 2, 3, 3), {}, ValueError, "expected input with 2 channels"),
    ((3, 5, 5), (4, 3, 3, 3), {}, ValueError, "4-D input"),
    ((1, 4, 5, 5), (3, 2, 3, 3), dict(groups=2), ValueError, "not divisible by groups"),
    ((1, 1, 2, 2), (1, 1, 3, 3), {}, ValueError, "smaller than"),
    ((1, 1, 5, 5), (1, 1, 3, 3), dict(padding="same", stride=2), ValueError, "stride 1"),
    ((1, 1, 5, 5), (1, 1, 3, 3), dict(padding="full"), ValueError, "'valid' or 'same'"),
    ((1, 1, 5, 5), (1, 1, 3, 3), dict(padding=-1), ValueError, ">= 0"),
], ids=["channels_singular", "channels_plural", "3d_input", "groups", "too_small", "same_stride2",
        "bad_padding_string", "negative_padding"])
def test_conv2d_rejects_bad_arguments(x_shape, w_shape, kwargs, error, match):
    with pytest.raises(error, match=match):
        F.conv2d(Tensor(np.zeros(x_shape)), Tensor(np.zeros(w_shape)), **kwargs)


def test_conv2d_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(Tensor(np.zeros((1, 1, 3, 3))), Tensor(np.zeros((1, 1, 2, 2), dtype=np.float32)))


def test_empty_batch_gives_empty_output_and_zero_weight_gradient():
    x, w = f64(np.zeros((0, 2, 5, 5))), f64(randn(3, 2, 3, 3))
    out = F.conv2d(x, w, padding=1)
    assert out.shape == (0, 3, 5, 5)
    out.sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)
    np.testing.assert_array_equal(w.grad, np.zeros((3, 2, 3, 3)))
