"""conv_transpose2d and ConvTranspose2d: gradients, a naive scatter reference, hand cases, the
adjoint of conv2d, the layer's checks, and PyTorch (where installed) over many configurations."""

from dataclasses import dataclass, field

import numpy as np
import pytest
from helpers import cases, gradcheck, gradcheck_module, pair, randn

from convscope import Tensor, nn
from convscope import functional as F
from convscope.tensor import ShapeError
from convscope.windows import transposed_output_size


@dataclass(frozen=True)
class Case:
    x: tuple
    w: tuple  # (C_in, C_out/groups, kH, kW)
    kwargs: dict = field(default_factory=dict)
    bias: bool = True


CASES = {
    "3x3_basic": Case((2, 3, 4, 4), (3, 2, 3, 3)),
    "batch1_no_bias": Case((1, 2, 3, 3), (2, 3, 2, 2), bias=False),
    "stride2_k4_pad1": Case((2, 2, 3, 4), (2, 2, 4, 4), dict(stride=2, padding=1)),
    "stride2_outpad1": Case((1, 2, 3, 3), (2, 1, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "stride3_gt_kernel": Case((1, 1, 3, 2), (1, 2, 2, 2), dict(stride=3)),
    "stride3_outpad2": Case((2, 1, 2, 3), (1, 2, 2, 3), dict(stride=3, padding=1, output_padding=2)),
    "nonsquare_pairs": Case((1, 2, 3, 4), (2, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0))),
    "dilation2": Case((1, 2, 3, 3), (2, 2, 3, 3), dict(dilation=2, padding=1)),
    "dilation_outpad": Case((1, 1, 3, 3), (1, 2, 2, 2), dict(dilation=3, output_padding=2)),
    "groups2": Case((2, 4, 3, 3), (4, 3, 3, 3), dict(groups=2, stride=2)),
    "depthwise": Case((1, 3, 3, 4), (3, 1, 2, 2), dict(groups=3, stride=2, padding=1)),
    "1x1": Case((2, 3, 3, 2), (3, 2, 1, 1)),
}


def arrays(case, seed=0):
    c_out = case.w[1] * case.kwargs.get("groups", 1)
    return [randn(*case.x, seed=seed + 1), randn(*case.w, seed=seed + 2)] + (
        [randn(c_out, seed=seed + 3)] if case.bias else [])


# ----- the reference: every input pixel paints its value times the kernel -----------------------
def naive_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = map(pair, (stride, padding, output_padding, dilation))
    n, c_in, h, wd = x.shape
    _, per_group, kh, kw = w.shape
    out_h = transposed_output_size(h, kh, sh, ph, dh, oph)
    out_w = transposed_output_size(wd, kw, sw, pw, dw, opw)
    out = np.zeros((n, per_group * groups, out_h, out_w))
    for b_, c, i, j, o, u, v in np.ndindex(n, c_in, h, wd, per_group, kh, kw):
        y, xo = i * sh - ph + u * dh, j * sw - pw + v * dw
        if 0 <= y < out_h and 0 <= xo < out_w:
            out[b_, c // (c_in // groups) * per_group + o, y, xo] += x[b_, c, i, j] * w[c, o, u, v]
    return out if b is None else out + b[None, :, None, None]


@pytest.mark.parametrize("case", cases(CASES))
def test_matches_the_naive_scatter(case, bands):
    ours = F.conv_transpose2d(*[Tensor(a, dtype=np.float64) for a in arrays(case)], **case.kwargs)
    np.testing.assert_allclose(ours.data, naive_conv_transpose2d(*arrays(case), **case.kwargs), atol=1e-12)


@pytest.mark.parametrize("case", cases(CASES))
def test_gradients_float64(case, bands):
    gradcheck(lambda *t: F.conv_transpose2d(*t, **case.kwargs), *arrays(case))


@pytest.mark.parametrize("case", cases(CASES))
def test_is_the_adjoint_of_conv2d(case):
    """<conv_transpose2d(x, w), y> = <x, conv2d(y, w)>: the same weight array, the same window.
    (An output_padding of at least the stride adds rows that windows past x's size read: cropped.)"""
    x, w = arrays(case)[:2]
    kwargs = {k: v for k, v in case.kwargs.items() if k != "output_padding"}
    up = F.conv_transpose2d(Tensor(x, dtype=np.float64), Tensor(w, dtype=np.float64), **case.kwargs).data
    y = randn(*up.shape, seed=9)
    down = F.conv2d(Tensor(y, dtype=np.float64), Tensor(w, dtype=np.float64), **kwargs).data
    down = down[:, :, :x.shape[2], :x.shape[3]]
    assert down.shape == x.shape
    np.testing.assert_allclose(np.sum(up * y), np.sum(x * down), rtol=1e-12)


def test_layer_gradients_float64():
    layer = nn.ConvTranspose2d(4, 2, (3, 2), stride=2, padding=1, output_padding=1, groups=2,
                               rng=np.random.default_rng(0))
    gradcheck_module(layer, randn(2, 4, 3, 3, seed=1))


# ----- by hand --------------------------------------------------------------------------------------
X = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])


@pytest.mark.parametrize("kwargs, kernel, expected", [
    (dict(stride=2), np.ones((2, 2)), [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]),
    (dict(), np.ones((2, 2)), [[1, 3, 2], [4, 10, 6], [3, 7, 4]]),
    (dict(padding=1), np.ones((2, 2)), [[10]]),
    (dict(stride=2, output_padding=1), np.ones((1, 1)), [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]),
    (dict(dilation=2), np.array([[1.0, 10.0]]), [[1, 2, 10, 20], [3, 4, 30, 40]]),
], ids=["stride2_blocks", "overlap_adds", "padding_crops", "output_padding_adds_zeros", "dilated_taps"])
def test_hand_cases(kwargs, kernel, expected):
    out = F.conv_transpose2d(Tensor(X), Tensor(kernel[None, None]), **kwargs)
    np.testing.assert_array_equal(out.data[0, 0], expected)


def test_hand_gradient_sums_each_window():
    x = Tensor(X.copy(), requires_grad=True)
    F.conv_transpose2d(x, Tensor(np.ones((1, 1, 2, 2))), stride=2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[4, 4], [4, 4]])  # each pixel painted 4 outputs


def test_bias_and_groups_by_hand():
    x = np.ones((1, 2, 1, 1))
    w = np.array([[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]])  # (C_in=2, C_out/groups=2, 1, 1)
    ungrouped = F.conv_transpose2d(Tensor(x), Tensor(w), Tensor(np.array([0.5, -0.5])))
    assert ungrouped.data.ravel().tolist() == [4.5, 5.5]  # channel o sums w[c, o] over c
    grouped = F.conv_transpose2d(Tensor(x), Tensor(w), groups=2)
    assert grouped.data.ravel().tolist() == [1, 2, 3, 4]  # input channel c feeds outputs 2c, 2c+1


# ----- the layer ------------------------------------------------------------------------------------
def test_layer_shapes_and_pytorch_default_init():
    layer = nn.ConvTranspose2d(6, 4, kernel_size=(3, 5), stride=2, groups=2, rng=np.random.default_rng(0))
    assert layer.weight.shape == (6, 2, 3, 5) and layer.bias.shape == (4,)
    bound = 1 / np.sqrt(2 * 3 * 5)  # fan_in = C_out/groups * kH * kW, as PyTorch computes it
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.8 * bound
    assert np.abs(layer.bias.data).max() <= bound
    out = layer(Tensor(np.zeros((3, 6, 7, 9), np.float32)))
    assert out.shape == (3, 4, 15, 21) and out.dtype == np.float32
    assert layer.mult_adds((1, 6, 7, 9), out.shape) == 6 * 7 * 9 * 2 * 3 * 5


def test_layer_config_rebuilds_it():
    layer = nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1, output_padding=1, bias=False, rng=np.random.default_rng(0))
    config = layer.config()
    assert config == {"in_channels": 2, "out_channels": 3, "kernel_size": [4, 4], "stride": [2, 2],
                      "padding": [1, 1], "output_padding": [1, 1], "groups": 1, "bias": False, "dilation": [1, 1]}
    assert repr(nn.ConvTranspose2d(**config)) == repr(layer) == \
        "ConvTranspose2d(2, 3, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), bias=False)"


@pytest.mark.parametrize("make, match", [
    (lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=2),
     r"ConvTranspose2d\(4, 2, kernel_size=3\): output_padding must be smaller than either stride or dilation, "
     r"got output_padding=2, stride=\(2, 2\), dilation=\(1, 1\)"),
    (lambda: nn.ConvTranspose2d(4, 2, 3, output_padding=1), "smaller than either stride or dilation"),
    (lambda: nn.ConvTranspose2d(4, 2, 3, padding="same"), "padding must be an int or a pair"),
    (lambda: nn.ConvTranspose2d(4, 3, 3, groups=2), "divisible by groups=2"),
    (lambda: nn.ConvTranspose2d(0, 3, 3), "in_channels must be a positive int, got 0"),
    (lambda: nn.ConvTranspose2d(2, 3, 0), "kernel_size must be >= 1"),
    (lambda: nn.ConvTranspose2d(2, 3, 3, padding=-1), "padding must be >= 0"),
], ids=["outpad_ge_stride", "outpad_stride1", "same", "groups", "channels", "kernel0", "padneg"])
def test_layer_refuses_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_output_padding_below_dilation_is_allowed():
    layer = nn.ConvTranspose2d(1, 1, 3, dilation=2, output_padding=1, rng=np.random.default_rng(0))
    assert layer.output_padding == (1, 1) and layer(Tensor(np.zeros((1, 1, 2, 2), np.float32))).shape == (1, 1, 7, 7)


def test_wrong_inputs_say_what_was_expected():
    layer = nn.ConvTranspose2d(4, 2, 3, rng=np.random.default_rng(0))
    expected = r"ConvTranspose2d\(4, 2, .*expected input with 4 channels, got shape \(1, 3, 5, 5\)"
    with pytest.raises(ShapeError, match=expected):
        layer(Tensor(np.zeros((1, 3, 5, 5), np.float32)))
    with pytest.raises(ShapeError, match=r"expected a 4-D input \(N, C, H, W\), got shape \(3, 5, 5\)"):
        layer(Tensor(np.zeros((3, 5, 5), np.float32)))
    with pytest.raises(ShapeError, match=r"expected a 4-D weight \(C_in, C_out/groups, kH, kW\)"):
        F.conv_transpose2d(Tensor(np.zeros((1, 1, 2, 2))), Tensor(np.zeros((1, 1, 2))))
    with pytest.raises(ShapeError, match="empty output"):
        F.conv_transpose2d(Tensor(np.zeros((1, 1, 1, 1))), Tensor(np.zeros((1, 1, 1, 1))), padding=1)


# ----- PyTorch as a further oracle -------------------------------------------------------------------
def random_config(rng):
    s, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    groups = int(rng.choice([1, 1, 2, 3]))
    kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    kwargs = dict(stride=(s, int(rng.integers(1, 4))), padding=padding, dilation=d, groups=groups,
                  output_padding=int(rng.integers(0, max(s, d))) if rng.random() < 0.6 else 0)
    if kwargs["output_padding"] >= max(kwargs["stride"][1], d):
        kwargs["output_padding"] = 0
    x = (int(rng.integers(1, 4)), groups * int(rng.integers(1, 3)), int(rng.integers(2, 7)), int(rng.integers(2, 7)))
    sizes = [transposed_output_size(x[2 + a], kernel[a], kwargs["stride"][a], padding[a], d, kwargs["output_padding"])
             for a in (0, 1)]
    if min(sizes) < 1:  # the padding would crop the whole output: draw again
        return random_config(rng)
    return Case(x, (x[1], int(rng.integers(1, 3)), *kernel), kwargs, bias=bool(rng.random() < 0.7))


RANDOM = {f"random{seed}": random_config(np.random.default_rng(seed)) for seed in range(40)}


@pytest.mark.parametrize("case", cases(CASES) + cases(RANDOM))
def test_torch_parity(case):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    values = [a.astype(np.float32) for a in arrays(case)]
    theirs = [torch.tensor(a, requires_grad=True) for a in values]
    ours = [Tensor(a, requires_grad=True) for a in values]
    out, ref = F.conv_transpose2d(*ours, **case.kwargs), torch.nn.functional.conv_transpose2d(*theirs, **case.kwargs)
    g = randn(*out.shape, seed=5).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for what, a, b in [("output", out.data, ref)] + [(f"gradient {k}", o.grad, t.grad) for k, (o, t) in
                                                     enumerate(zip(ours, theirs))]:
        b = b.detach().numpy()
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max() + 1e-12, err_msg=what)
