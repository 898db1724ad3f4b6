"""Every pool against a naive-loop NumPy reference written from the definition, and by hand."""

import math

import numpy as np
import pytest
from helpers import (
    ADAPTIVE_CASES,
    POOL_CASES,
    UNDILATED_POOL_CASES,
    away_from_zero,
    cases,
    distinct,
    f64,
    pair,
    pool_out_size,
    randn,
)

from convscope import Tensor
from convscope import functional as F


# ----- the references: explicit loops over n, c, output y, x and kernel taps -------------------
def windows(shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Yield (n, c, y, x, taps) per output pixel; taps lists the (iy, ix) of real input pixels,
    in row-major kernel order, and ``start``/``end`` of the window clipped as PyTorch clips it."""
    n_batch, channels, h, w = shape
    (kh, kw) = pair(kernel)
    (sh, sw) = pair(kernel if stride is None else stride)
    (ph, pw), (dh, dw) = pair(padding), pair(dilation)
    ho = pool_out_size(h, kh, sh, ph, dh, ceil_mode)
    wo = pool_out_size(w, kw, sw, pw, dw, ceil_mode)
    for n, c, y, x in np.ndindex(n_batch, channels, ho, wo):
        taps = [(y * sh - ph + i * dh, x * sw - pw + j * dw) for i in range(kh) for j in range(kw)]
        yield n, c, y, x, [(iy, ix) for iy, ix in taps if 0 <= iy < h and 0 <= ix < w]


def out_shape(shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    (kh, kw), (ph, pw), (dh, dw) = pair(kernel), pair(padding), pair(dilation)
    (sh, sw) = pair(kernel if stride is None else stride)
    return shape[:2] + (pool_out_size(shape[2], kh, sh, ph, dh, ceil_mode),
                        pool_out_size(shape[3], kw, sw, pw, dw, ceil_mode))


def naive_max_pool2d(x, g, **geometry):
    """Forward, and the gradient of sum(out * g): all of g to the first maximum of each window."""
    out, gx = np.zeros(out_shape(x.shape, **geometry)), np.zeros_like(x)
    for n, c, y, xo, taps in windows(x.shape, **geometry):
        values = [x[n, c, iy, ix] for iy, ix in taps]
        first = int(np.argmax(values))  # argmax returns the first of tied maxima
        out[n, c, y, xo] = values[first]
        gx[(n, c) + taps[first]] += g[n, c, y, xo]
    return out, gx


def naive_sum_pool2d(x, g, **geometry):
    out, gx = np.zeros(out_shape(x.shape, **geometry)), np.zeros_like(x)
    for n, c, y, xo, taps in windows(x.shape, **geometry):
        for iy, ix in taps:
            out[n, c, y, xo] += x[n, c, iy, ix]
            gx[n, c, iy, ix] += g[n, c, y, xo]
    return out, gx


def avg_divisor(y, x, h, w, kernel, stride, padding, count_include_pad):
    """PyTorch's divisor: the window clipped to the padded input (count_include_pad) or to
    the real input; the ceil_mode overhang past the padding never counts."""
    (kh, kw), (ph, pw) = pair(kernel), pair(padding)
    (sh, sw) = pair(kernel if stride is None else stride)
    y0, x0 = y * sh - ph, x * sw - pw
    y1, x1 = min(y0 + kh, h + ph), min(x0 + kw, w + pw)
    if count_include_pad:
        return (y1 - y0) * (x1 - x0)
    return (min(y1, h) - max(y0, 0)) * (min(x1, w) - max(x0, 0))


def naive_avg_pool2d(x, g, count_include_pad, **geometry):
    out, gx = np.zeros(out_shape(x.shape, **geometry)), np.zeros_like(x)
    h, w = x.shape[2:]
    for n, c, y, xo, taps in windows(x.shape, **geometry):
        divisor = avg_divisor(y, xo, h, w, geometry["kernel"], geometry["stride"], geometry["padding"],
                              count_include_pad)
        for iy, ix in taps:
            out[n, c, y, xo] += x[n, c, iy, ix] / divisor
            gx[n, c, iy, ix] += g[n, c, y, xo] / divisor
    return out, gx


def naive_lp_pool2d(x, g, p, **geometry):
    """(sum |x|^p)^(1/p) per window; d/dx = S^(1/p - 1) * |x|^(p-1) * sign(x)."""
    out, gx = np.zeros(out_shape(x.shape, **geometry)), np.zeros_like(x)
    for n, c, y, xo, taps in windows(x.shape, **geometry):
        total = sum(abs(x[n, c, iy, ix]) ** p for iy, ix in taps)
        out[n, c, y, xo] = total ** (1 / p)
        for iy, ix in taps:
            v = x[n, c, iy, ix]
            gx[n, c, iy, ix] += g[n, c, y, xo] * total ** (1 / p - 1) * abs(v) ** (p - 1) * np.sign(v)
    return out, gx


def naive_adaptive_avg_pool2d(x, g, output_size):
    """Bin i of an axis of length L covers [floor(i*L/out), ceil((i+1)*L/out))."""
    oh, ow = pair(output_size)
    h, w = x.shape[2:]
    out, gx = np.zeros(x.shape[:2] + (oh, ow)), np.zeros_like(x)
    for n, c, y, xo in np.ndindex(out.shape):
        rows = range(math.floor(y * h / oh), math.ceil((y + 1) * h / oh))
        cols = range(math.floor(xo * w / ow), math.ceil((xo + 1) * w / ow))
        for iy in rows:
            for ix in cols:
                out[n, c, y, xo] += x[n, c, iy, ix] / (len(rows) * len(cols))
                gx[n, c, iy, ix] += g[n, c, y, xo] / (len(rows) * len(cols))
    return out, gx


def geometry(case, dilated=True):
    kw = dict(kernel=case.kernel, stride=case.stride, padding=case.padding, ceil_mode=case.ceil_mode)
    return dict(kw, dilation=case.dilation) if dilated else kw


def check_against(op_out, x, expected_out, expected_gx, g):
    assert op_out.shape == expected_out.shape
    np.testing.assert_allclose(op_out.data, expected_out, rtol=1e-10, atol=1e-12)
    op_out.backward(g)
    np.testing.assert_allclose(x.grad, expected_gx, rtol=1e-10, atol=1e-12)


# ----- every pool against its reference, forward and gradient ------------------------------------
@pytest.mark.parametrize("case", cases(POOL_CASES))
def test_max_pool2d_matches_naive_reference(case):
    x_np = distinct(case.x)
    g = randn(*out_shape(case.x, **geometry(case)), seed=1)
    x = f64(x_np)
    check_against(F.max_pool2d(x, **case.kwargs_dilated), x, *naive_max_pool2d(x_np, g, **geometry(case)), g)


@pytest.mark.parametrize("case", cases(POOL_CASES))
def test_max_pool2d_ties_send_gradient_to_first_maximum(case):
    x_np = np.round(randn(*case.x, seed=2))  # many ties among small integers
    g = randn(*out_shape(case.x, **geometry(case)), seed=1)
    x = f64(x_np)
    check_against(F.max_pool2d(x, **case.kwargs_dilated), x, *naive_max_pool2d(x_np, g, **geometry(case)), g)


@pytest.mark.parametrize("case", cases(POOL_CASES))
def test_sum_pool2d_matches_naive_reference(case):
    x_np = randn(*case.x)
    g = randn(*out_shape(case.x, **geometry(case)), seed=1)
    x = f64(x_np)
    check_against(F.sum_pool2d(x, **case.kwargs_dilated), x, *naive_sum_pool2d(x_np, g, **geometry(case)), g)


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["count_pad", "exclude_pad"])
@pytest.mark.parametrize("case", cases(UNDILATED_POOL_CASES))
def test_avg_pool2d_matches_naive_reference(case, count_include_pad):
    x_np = randn(*case.x)
    geo = geometry(case, dilated=False)
    g = randn(*out_shape(case.x, **geo), seed=1)
    x = f64(x_np)
    out = F.avg_pool2d(x, **case.kwargs, count_include_pad=count_include_pad)
    check_against(out, x, *naive_avg_pool2d(x_np, g, count_include_pad, **geo), g)


@pytest.mark.parametrize("p", [1, 2, 3], ids=["p1", "p2", "p3"])
@pytest.mark.parametrize("case", cases(UNDILATED_POOL_CASES))
def test_lp_pool2d_matches_naive_reference(case, p):
    x_np = away_from_zero(case.x)  # negatives included: the norm uses |x|
    geo = geometry(case, dilated=False)
    g = randn(*out_shape(case.x, **geo), seed=1)
    x = f64(x_np)
    check_against(F.lp_pool2d(x, p, **case.kwargs), x, *naive_lp_pool2d(x_np, g, p, **geo), g)


@pytest.mark.parametrize("case", cases(ADAPTIVE_CASES))
def test_adaptive_avg_pool2d_matches_naive_reference(case):
    shape, size = case
    x_np = randn(*shape)
    g = randn(*shape[:2], *pair(size), seed=1)
    x = f64(x_np)
    check_against(F.adaptive_avg_pool2d(x, size), x, *naive_adaptive_avg_pool2d(x_np, g, size), g)


@pytest.mark.parametrize("case", cases({k: POOL_CASES[k] for k in ("k2", "ceil_pad_overhang")}))
def test_pools_keep_float32(case):
    x = Tensor(distinct(case.x).astype(np.float32))
    for out in (F.max_pool2d(x, **case.kwargs), F.avg_pool2d(x, **case.kwargs),
                F.lp_pool2d(x, 2, **case.kwargs), F.adaptive_avg_pool2d(x, 2)):
        assert out.dtype == np.float32


# ----- hand-computed cases ----------------------------------------------------------------------
def test_max_pool_4x4_by_hand():
    x = Tensor(np.array([[1.0, 3.0, 2.0, 0.0],
                         [5.0, 4.0, 7.0, 8.0],
                         [9.0, 2.0, 1.0, 6.0],
                         [0.0, 3.0, 4.0, 5.0]]).reshape(1, 1, 4, 4), requires_grad=True)
    out = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(out.data[0, 0], [[5, 8], [9, 6]])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 0, 0, 0],
                                                 [1, 0, 0, 1],
                                                 [1, 0, 0, 1],
                                                 [0, 0, 0, 0]])


def test_max_pool_padding_never_wins_over_negatives():
    x = Tensor(-np.arange(1.0, 5.0).reshape(1, 1, 2, 2))  # all negative
    out = F.max_pool2d(x, 2, stride=1, padding=1)
    np.testing.assert_array_equal(out.data[0, 0], [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]])


def test_avg_pool_with_padding_by_hand():
    x = Tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))  # 1..9
    # windows (padded coordinates): rows {-1, 0} and {1, 2}, the same for columns
    excluded = F.avg_pool2d(x, 2, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_allclose(excluded.data[0, 0], [[1.0, (2 + 3) / 2], [(4 + 7) / 2, (5 + 6 + 8 + 9) / 4]])
    included = F.avg_pool2d(x, 2, stride=2, padding=1, count_include_pad=True)
    np.testing.assert_allclose(included.data[0, 0], [[1 / 4, 5 / 4], [11 / 4, 7.0]])


def test_avg_pool_ceil_mode_partial_window_by_hand():
    x = Tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    out = F.avg_pool2d(x, 2, stride=2, ceil_mode=True)  # the overhang past the input never counts
    np.testing.assert_allclose(out.data[0, 0], [[3.0, 4.5], [7.5, 9.0]])


def test_lp_pool_by_hand():
    x = Tensor(np.array([[3.0, -4.0], [0.0, 12.0]]).reshape(1, 1, 2, 2))
    assert F.lp_pool2d(x, 2, (1, 2)).data.ravel().tolist() == [5.0, 12.0]
    assert F.lp_pool2d(x, 1, 2).data.item() == 19.0
    np.testing.assert_allclose(F.lp_pool2d(x, 3, 2).data.item(), (27 + 64 + 1728) ** (1 / 3))


def test_lp_pool_gradient_at_all_zero_window_is_zero():
    x = Tensor(np.zeros((1, 1, 2, 2)), requires_grad=True)
    F.lp_pool2d(x, 2, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((1, 1, 2, 2)))


def test_adaptive_avg_pool_nondivisible_bins_by_hand():
    x = Tensor(np.array([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 1, 1, 5))
    out = F.adaptive_avg_pool2d(x, (1, 3))  # bins [0, 2), [1, 4), [3, 5): they overlap
    np.testing.assert_allclose(out.data.ravel(), [1.5, 3.0, 4.5])


def test_sum_pool_by_hand():
    x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(F.sum_pool2d(x, 2).data[0, 0], [[10, 18], [42, 50]])


# ----- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d, F.sum_pool2d], ids=["max", "avg", "sum"])
def test_pools_reject_bad_geometry(op):
    with pytest.raises(ValueError, match="at most half"):
        op(Tensor(np.zeros((1, 1, 6, 6))), 2, padding=2)
    with pytest.raises(ValueError, match="smaller than kernel_size"):
        op(Tensor(np.zeros((1, 1, 2, 2))), 3)
    with pytest.raises(ValueError, match="4-D input"):
        op(Tensor(np.zeros((1, 6, 6))), 2)


@pytest.mark.parametrize("op, name", [(lambda x: F.avg_pool2d(x, 2), "avg_pool2d"),
                                      (lambda x: F.lp_pool2d(x, 2, 2), "lp_pool2d")], ids=["avg", "lp"])
def test_pool_errors_name_the_op_that_was_called(op, name):
    # avg and lp pooling are built on sum_pool2d, but the user called avg_pool2d / lp_pool2d
    with pytest.raises(ValueError, match=f"^{name}: expected a 4-D input"):
        op(Tensor(np.zeros((1, 6, 6))))


def test_lp_pool_rejects_p_below_one():
    with pytest.raises(ValueError, match="norm_type"):
        F.lp_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 0.5, 2)


def test_adaptive_pool_rejects_3d_input():
    with pytest.raises(ValueError, match="4-D input"):
        F.adaptive_avg_pool2d(Tensor(np.zeros((1, 4, 4))), 2)
