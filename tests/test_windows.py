"""Sliding windows: the output-size formula, the window view, im2col's layout, col2im as its adjoint."""

import numpy as np
import pytest
from helpers import pool_out_size, randn

from convscope import windows
from convscope.windows import col2im, im2col, output_size, pad2d, pair, reduce_windows, row_bands, sliding_windows


# ----- output size: hand-computed cases -------------------------------------------------------
@pytest.mark.parametrize("args, kwargs, expected", [
    ((32, 5), {}, 28),                                        # LeNet C1 without padding
    ((28, 5), dict(padding=2), 28),                           # "same" by padding
    ((28, 2), dict(stride=2), 14),
    ((7, 3), dict(stride=2), 3),
    ((6, 3), dict(stride=2), 2),                              # floor drops the partial window
    ((6, 3), dict(stride=2, ceil_mode=True), 3),              # ceil keeps it
    ((5, 2), dict(stride=2, ceil_mode=True), 3),
    ((4, 2), dict(stride=2, ceil_mode=True), 2),              # exact fit: ceil == floor
    ((7, 3), dict(dilation=2), 3),                            # dilated kernel spans 5
    ((8, 3), dict(stride=2, padding=1, dilation=2), 3),
    ((5, 2), dict(stride=2, padding=1, ceil_mode=True), 3),   # a 4th window would start in the padding
    ((2, 2), dict(stride=3, padding=1, ceil_mode=True), 1),   # same rule, tiny
    ((6, 3), dict(stride=2, padding=1, ceil_mode=True), 4),   # last window overhangs the padding
    ((3, 5), {}, 0),                                          # kernel larger than the input
], ids=lambda v: None if isinstance(v, int) else "-".join(map(str, v)) if isinstance(v, tuple)
    else "-".join(f"{k}{v}" for k, v in v.items()) or "defaults")
def test_output_size_cases(args, kwargs, expected):
    assert output_size(*args, **kwargs) == expected


def test_output_size_matches_definition_on_a_grid():
    for size in range(1, 10):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        for ceil in (False, True):
                            too_small = size + 2 * p < d * (k - 1) + 1
                            expected = 0 if too_small else pool_out_size(size, k, s, p, d, ceil)
                            assert output_size(size, k, s, p, d, ceil) == expected, (size, k, s, p, d, ceil)


def test_pair():
    assert pair(3) == (3, 3)
    assert pair(np.int64(2)) == (2, 2)
    assert pair([1, 2]) == (1, 2)
    for bad in [(1, 2, 3), 2.5, "3", None]:
        with pytest.raises(ValueError, match="int or a pair"):
            pair(bad)


# ----- padding and the window view ------------------------------------------------------------
def test_pad2d_by_hand():
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    out = pad2d(x, (1, 0, 0, 2), value=-1.0)
    np.testing.assert_array_equal(out[0, 0], [[-1, -1, -1, -1],
                                              [0, 1, -1, -1],
                                              [2, 3, -1, -1]])


def test_pad2d_keeps_channel_major_layout():
    x = np.zeros((3, 2, 4, 4)).transpose(1, 0, 2, 3)  # C outermost in memory
    out = pad2d(x, (1, 1, 1, 1))
    assert out.shape == (2, 3, 6, 6)
    assert out.strides[1] > out.strides[0]


def test_pad2d_and_col2im_store_batch_last():
    x = np.arange(24.0).reshape(2, 3, 2, 2)  # NCHW in memory
    padded = pad2d(x, (0, 0, 0, 0))
    assert padded.transpose(1, 2, 3, 0).flags.c_contiguous
    np.testing.assert_array_equal(padded, x)
    assert pad2d(padded, (0, 0, 0, 0)) is padded  # already batch-last: no copy
    back = col2im(lambda i, j: np.ones((2, 3, 1, 1)), (2, 3, 2, 2), (2, 2), (1, 1), (1, 1), (1, 1), np.float64)
    assert back.transpose(1, 2, 3, 0).flags.c_contiguous


WINDOW_CASES = {
    "k2_s1": ((2, 2, 5, 6), (2, 2), (1, 1), (1, 1)),
    "k3x2_s2x1": ((1, 3, 7, 6), (3, 2), (2, 1), (1, 1)),
    "dilated_k2_d2x3": ((2, 1, 7, 8), (2, 2), (1, 2), (2, 3)),
}


def _out_hw(shape, kernel, stride, dilation):
    return tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(shape[2:], kernel, stride, dilation))


@pytest.mark.parametrize("case", WINDOW_CASES.values(), ids=WINDOW_CASES.keys())
def test_sliding_windows_entry_definition(case):
    shape, kernel, stride, dilation = case
    x = randn(*shape)
    out_hw = _out_hw(shape, kernel, stride, dilation)
    w = sliding_windows(x, kernel, stride, dilation, out_hw)
    assert w.shape == shape[:2] + kernel + out_hw
    for n, c, i, j, y, xo in np.ndindex(w.shape):
        assert w[n, c, i, j, y, xo] == x[n, c, y * stride[0] + i * dilation[0], xo * stride[1] + j * dilation[1]]


@pytest.mark.parametrize("case", WINDOW_CASES.values(), ids=WINDOW_CASES.keys())
def test_im2col_row_and_column_layout(case):
    shape, kernel, stride, dilation = case
    x = randn(*shape)
    out_hw = _out_hw(shape, kernel, stride, dilation)
    cols = im2col(x, kernel, stride, dilation, out_hw)
    n, c = shape[:2]
    kh, kw = kernel
    assert cols.shape == (c * kh * kw, n * out_hw[0] * out_hw[1])
    w = sliding_windows(x, kernel, stride, dilation, out_hw)
    for ci, i, j, ni, y, xo in np.ndindex(c, kh, kw, n, *out_hw):
        row, col = ci * kh * kw + i * kw + j, (y * out_hw[1] + xo) * n + ni  # batch-last columns
        assert cols[row, col] == w[ni, ci, i, j, y, xo]


@pytest.mark.parametrize("case", WINDOW_CASES.values(), ids=WINDOW_CASES.keys())
def test_col2im_is_the_adjoint_of_the_window_view(case):
    # <windows(x), P> == <x, col2im(P)> for all x, P: col2im is exactly the transpose.
    shape, kernel, stride, dilation = case
    out_hw = _out_hw(shape, kernel, stride, dilation)
    x, p = randn(*shape, seed=1), randn(*shape[:2], *kernel, *out_hw, seed=2)
    back = col2im(lambda i, j: p[:, :, i, j], shape, kernel, stride, dilation, out_hw, np.float64)
    assert back.shape == shape
    lhs = np.sum(sliding_windows(x, kernel, stride, dilation, out_hw) * p)
    np.testing.assert_allclose(lhs, np.sum(x * back), rtol=1e-12)


def test_col2im_counts_overlaps_by_hand():
    # 1x4 row, kernel 1x2, stride 1: pixels 1 and 2 belong to two windows each.
    back = col2im(lambda i, j: np.ones((1, 1, 1, 3)), (1, 1, 1, 4), (1, 2), (1, 1), (1, 1), (1, 3), np.float64)
    np.testing.assert_array_equal(back[0, 0], [[1, 2, 2, 1]])


def test_col2im_adds_into_a_given_view():
    target = np.ones((1, 1, 3, 4))
    back = col2im(lambda i, j: np.ones((1, 1, 1, 3)), None, (1, 2), (1, 1), (1, 1), (1, 3), np.float64,
                  out=target[:, :, 1:2])
    np.testing.assert_array_equal(target[0, 0], [[1, 1, 1, 1], [2, 3, 3, 2], [1, 1, 1, 1]])
    assert np.shares_memory(back, target)


@pytest.mark.parametrize("budget, rows_per_band", [(1, 1), (100, 2), (120, 2), (150, 3), (10 ** 9, 7)])
def test_row_bands_cover_each_output_row_once(monkeypatch, budget, rows_per_band):
    monkeypatch.setattr(windows, "BAND_BYTES", budget)
    bands = list(row_bands(7, 50, kernel_h=3, stride_h=2, dilation_h=2))
    assert [r for rows, _ in bands for r in rows] == list(range(7))
    assert all(len(rows) == rows_per_band for rows, _ in bands[:-1])
    for rows, span in bands:  # the input rows the band's windows read: y*stride + i*dilation
        read = {y * 2 + i * 2 for y in rows for i in range(3)}
        assert (span.start, span.stop) == (min(read), max(read) + 1)


@pytest.mark.parametrize("ufunc, reduce", [(np.maximum, np.max), (np.add, np.sum)], ids=["max", "sum"])
def test_reduce_windows_matches_numpy_reduction(ufunc, reduce):
    x = randn(2, 3, 7, 6)
    w = sliding_windows(x, (3, 2), (2, 1), (1, 1), (3, 5))
    np.testing.assert_allclose(reduce_windows(w, ufunc), reduce(w, axis=(2, 3)), rtol=1e-12)
