"""interpolate and Upsample: gradients, a per-pixel reference, the matrix composition, hand cases,
errors, and PyTorch (where installed) over sizes, scale factors and both align_corners."""

import math

import numpy as np
import pytest
from helpers import cases, gradcheck, randn

from convscope import Tensor, nn
from convscope import functional as F
from convscope.tensor import ShapeError

# (input shape, keyword arguments)
CASES = {
    "nearest_x2": ((2, 3, 3, 4), dict(scale_factor=2)),
    "nearest_x3_x1": ((1, 2, 3, 2), dict(scale_factor=(3, 1))),
    "nearest_size_5x7": ((2, 1, 3, 4), dict(size=(5, 7))),
    "nearest_down_2x3": ((1, 2, 5, 7), dict(size=(2, 3))),
    "nearest_x1.5": ((1, 1, 4, 5), dict(scale_factor=1.5)),
    "bilinear_x2": ((2, 2, 3, 4), dict(scale_factor=2, mode="bilinear")),
    "bilinear_size_5x7": ((1, 2, 3, 4), dict(size=(5, 7), mode="bilinear")),
    "bilinear_x2.5_x1.5": ((1, 1, 3, 4), dict(scale_factor=(2.5, 1.5), mode="bilinear")),
    "bilinear_down": ((1, 2, 6, 7), dict(size=(4, 3), mode="bilinear")),
    "bilinear_corners_x2": ((2, 1, 3, 4), dict(scale_factor=2, mode="bilinear", align_corners=True)),
    "bilinear_corners_size": ((1, 2, 4, 3), dict(size=(7, 5), mode="bilinear", align_corners=True)),
    "bilinear_corners_to_1": ((1, 1, 3, 4), dict(size=(1, 2), mode="bilinear", align_corners=True)),
    "bilinear_from_1": ((1, 1, 1, 2), dict(size=(3, 4), mode="bilinear")),
    "bilinear_kept_axis_copied": ((1, 1, 2, 5), dict(scale_factor=(4 / 3, 1.5), mode="bilinear")),
    "nearest_kept_axis_copied": ((1, 1, 3, 2), dict(scale_factor=(1.2, 2.6))),
}


# ----- the references -------------------------------------------------------------------------------
def source(o, n_in, n_out, factor, align_corners):
    """Where output position o reads, as PyTorch defines it (float64; an axis that keeps its
    length is copied, whatever the scale factor)."""
    if n_in == n_out:
        return float(o)
    if align_corners:
        return o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    scale = 1 / factor if factor else n_in / n_out
    return max((o + 0.5) * scale - 0.5, 0.0)


def naive_interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Per output pixel: the nearest pixel, or the 4-neighbour bilinear formula."""
    n, c, h, w = x.shape
    factors = scale_factor if isinstance(scale_factor, tuple) else (scale_factor, scale_factor)
    if size is None:
        size = (math.floor(h * factors[0]), math.floor(w * factors[1]))
    out = np.zeros((n, c, *size))
    for i, j in np.ndindex(*size):
        if mode == "nearest":
            si = i if h == size[0] else min(math.floor(i / factors[0] if factors[0] else i * h / size[0]), h - 1)
            sj = j if w == size[1] else min(math.floor(j / factors[1] if factors[1] else j * w / size[1]), w - 1)
            out[:, :, i, j] = x[:, :, si, sj]
            continue
        sy, sx = source(i, h, size[0], factors[0], align_corners), source(j, w, size[1], factors[1], align_corners)
        y0, x0 = int(sy), int(sx)
        y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
        ly, lx = sy - y0, sx - x0
        out[:, :, i, j] = ((1 - ly) * (1 - lx) * x[:, :, y0, x0] + (1 - ly) * lx * x[:, :, y0, x1]
                           + ly * (1 - lx) * x[:, :, y1, x0] + ly * lx * x[:, :, y1, x1])
    return out


def resize_matrix(n_in, n_out, factor, mode, align_corners):
    """The (n_out, n_in) matrix of one axis: one 1 per row (nearest) or two weights (bilinear)."""
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        if mode == "nearest":
            m[o, o if n_in == n_out else min(math.floor(o / factor if factor else o * n_in / n_out), n_in - 1)] = 1
        else:
            s = source(o, n_in, n_out, factor, align_corners)
            i0 = int(s)
            m[o, i0] += 1 - (s - i0)
            m[o, min(i0 + 1, n_in - 1)] += s - i0
    return m


def composition(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Interpolation as two matrix products, A_h @ x @ A_w^T: autograd gives its backward."""
    h, w = x.shape[2:]
    factors = scale_factor if isinstance(scale_factor, tuple) else (scale_factor, scale_factor)
    if size is None:
        size = (math.floor(h * factors[0]), math.floor(w * factors[1]))
    a_h = resize_matrix(h, size[0], factors[0], mode, align_corners)
    a_w = resize_matrix(w, size[1], factors[1], mode, align_corners)
    return Tensor(a_h, dtype=np.float64) @ x @ Tensor(a_w.T, dtype=np.float64)


@pytest.mark.parametrize("case", cases(CASES))
def test_matches_the_per_pixel_reference(case):
    shape, kwargs = case
    x = randn(*shape, seed=1)
    np.testing.assert_allclose(F.interpolate(Tensor(x, dtype=np.float64), **kwargs).data,
                               naive_interpolate(x, **kwargs), atol=1e-12)


@pytest.mark.parametrize("case", cases(CASES))
def test_backward_matches_the_matrix_composition(case):
    shape, kwargs = case
    ours, ref = Tensor(randn(*shape, seed=2), requires_grad=True, dtype=np.float64), None
    ref = Tensor(ours.data.copy(), requires_grad=True, dtype=np.float64)
    out, expected = F.interpolate(ours, **kwargs), composition(ref, **kwargs)
    np.testing.assert_allclose(out.data, expected.data, atol=1e-12)
    g = randn(*out.shape, seed=3)
    out.backward(g)
    expected.backward(g)
    np.testing.assert_allclose(ours.grad, ref.grad, atol=1e-12)


@pytest.mark.parametrize("case", cases(CASES))
def test_gradients_float64(case):
    shape, kwargs = case
    gradcheck(lambda t: F.interpolate(t, **kwargs), randn(*shape, seed=4))


def test_output_stays_batch_last_and_float32():
    x = F.conv2d(Tensor(np.ones((3, 1, 4, 4), np.float32)), Tensor(np.ones((2, 1, 1, 1), np.float32)))
    out = F.interpolate(x, scale_factor=2, mode="bilinear")
    assert out.dtype == np.float32 and out.data.transpose(1, 2, 3, 0).flags.c_contiguous


# ----- by hand --------------------------------------------------------------------------------------
X = Tensor(np.array([[[[0.0, 1.0], [2.0, 3.0]]]]))


@pytest.mark.parametrize("kwargs, expected", [
    (dict(scale_factor=2), [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]),
    (dict(size=(3, 2)), [[0, 1], [0, 1], [2, 3]]),  # src = floor(dst * 2/3): 0, 0, 1
    (dict(size=(2, 4), mode="bilinear"), [[0, 0.25, 0.75, 1], [2, 2.25, 2.75, 3]]),
    (dict(size=(3, 3), mode="bilinear", align_corners=True), [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]]),
    (dict(size=(1, 1), mode="bilinear"), [[1.5]]),
    (dict(size=(1, 1), mode="bilinear", align_corners=True), [[0]]),
], ids=["nearest_x2", "nearest_3x2", "bilinear_row", "corners", "bilinear_to_1", "corners_to_1"])
def test_hand_cases(kwargs, expected):
    np.testing.assert_allclose(F.interpolate(X, **kwargs).data[0, 0], expected)


def test_nearest_gradient_adds_the_copies():
    x = Tensor(X.data.copy(), requires_grad=True)
    F.interpolate(x, size=(3, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[2, 2], [1, 1]])  # row 0 was copied twice


# ----- the layer and the errors ---------------------------------------------------------------------
def test_upsample_layer():
    layer = nn.Upsample(scale_factor=2, mode="bilinear")
    assert layer(Tensor(np.zeros((2, 3, 5, 4), np.float32))).shape == (2, 3, 10, 8)
    assert repr(layer) == "Upsample(scale_factor=2, mode='bilinear')"
    assert repr(nn.Upsample(size=7)) == "Upsample(size=(7, 7))"
    config = nn.Upsample(size=(5, 6), mode="bilinear", align_corners=True).config()
    assert config == {"size": [5, 6], "scale_factor": None, "mode": "bilinear", "align_corners": True}
    assert nn.Upsample(**config).config() == config


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "give exactly one of size and scale_factor, got size=None, scale_factor=None"),
    (dict(size=4, scale_factor=2), "give exactly one of size and scale_factor"),
    (dict(scale_factor=2, align_corners=True),
     "align_corners can only be set with mode='bilinear', got mode='nearest'"),
    (dict(scale_factor=2, mode="bicubic"), "mode must be one of nearest, bilinear, got 'bicubic'"),
    (dict(scale_factor=0), "scale_factor must be a positive number or a pair of them, got 0"),
    (dict(size=(4, 0)), r"size must be a positive int or a pair of them, got \(4, 0\)"),
], ids=["neither", "both", "corners_nearest", "mode", "factor0", "size0"])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.interpolate(X, **kwargs)
    with pytest.raises(ValueError, match="Upsample: " + match):
        nn.Upsample(**kwargs)


def test_bad_inputs_say_what_was_received():
    with pytest.raises(ShapeError, match=r"expected a 4-D input \(N, C, H, W\), got shape \(2, 2\)"):
        F.interpolate(Tensor(np.zeros((2, 2))), scale_factor=2)
    with pytest.raises(ShapeError, match=r"Upsample\(scale_factor=0.1\): interpolate: input \(1, 1, 2, 2\) "
                                         r"with scale_factor=0.1 gives an empty output \(0, 0\)"):
        nn.Upsample(scale_factor=0.1)(X)


# ----- PyTorch as a further oracle -------------------------------------------------------------------
def random_config(rng):
    mode = str(rng.choice(["nearest", "bilinear"]))
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)))
    if rng.random() < 0.5:
        kwargs = dict(size=(int(rng.integers(1, 17)), int(rng.integers(1, 17))))
    else:
        factors = [float(rng.choice([0.5, 0.75, 1, 1.25, 4 / 3, 1.5, 2, 2.5, 3, 1 / 3, 3.7])) for _ in range(2)]
        if min(math.floor(n * f) for n, f in zip(shape[2:], factors)) < 1:
            factors = [2.0, 3.0]
        kwargs = dict(scale_factor=tuple(factors) if factors[0] != factors[1] else factors[0])
    if mode == "bilinear":
        kwargs["align_corners"] = [None, False, True][int(rng.integers(0, 3))]
    return shape, dict(kwargs, mode=mode)


RANDOM = {f"random{seed}": random_config(np.random.default_rng(seed)) for seed in range(60)}


@pytest.mark.parametrize("case", cases(CASES) + cases(RANDOM))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_parity(case, dtype):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    shape, kwargs = case
    x = randn(*shape, seed=6).astype(dtype)
    ours, theirs = Tensor(x, requires_grad=True, dtype=dtype), torch.tensor(x, requires_grad=True)
    out, ref = F.interpolate(ours, **kwargs), torch.nn.functional.interpolate(theirs, **kwargs)
    g = randn(*out.shape, seed=7).astype(dtype)
    out.backward(g)
    ref.backward(torch.tensor(g))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for what, a, b in [("output", out.data, ref), ("gradient", ours.grad, theirs.grad)]:
        b = b.detach().numpy()
        assert a.shape == b.shape and a.dtype == b.dtype, what
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max() + 1e-12, err_msg=what)
