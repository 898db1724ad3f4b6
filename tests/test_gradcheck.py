"""Float64 central-difference gradient checks of every functional op and every layer."""

import numpy as np
import pytest
from helpers import (
    ADAPTIVE_CASES,
    CONV_CASES,
    POOL_CASES,
    UNDILATED_POOL_CASES,
    away_from_zero,
    cases,
    check_gradients,
    distinct,
    f64,
    gradcheck,
    gradcheck_module,
    randn,
    to_float64,
)

from convscope import Tensor, nn
from convscope import functional as F

RNG = np.random.default_rng


# ----- windowed ops over the shared shape tables ------------------------------------------------
@pytest.mark.parametrize("case", cases(CONV_CASES))
def test_conv2d(case, bands):
    arrays = [randn(*case.x, seed=1), randn(*case.w, seed=2)] + ([randn(case.w[0], seed=3)] if case.bias else [])
    gradcheck(lambda x, w, b=None: F.conv2d(x, w, b, **case.kwargs), *arrays)


@pytest.mark.parametrize("case", cases(POOL_CASES))
def test_max_pool2d(case):
    gradcheck(lambda x: F.max_pool2d(x, **case.kwargs_dilated), distinct(case.x))


@pytest.mark.parametrize("case", cases(POOL_CASES))
def test_sum_pool2d(case):
    gradcheck(lambda x: F.sum_pool2d(x, **case.kwargs_dilated), randn(*case.x))


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["count_pad", "exclude_pad"])
@pytest.mark.parametrize("case", cases(UNDILATED_POOL_CASES))
def test_avg_pool2d(case, count_include_pad):
    gradcheck(lambda x: F.avg_pool2d(x, **case.kwargs, count_include_pad=count_include_pad), randn(*case.x))


@pytest.mark.parametrize("p", [1, 2, 3], ids=["p1", "p2", "p3"])
@pytest.mark.parametrize("case", cases(UNDILATED_POOL_CASES))
def test_lp_pool2d(case, p):
    gradcheck(lambda x: F.lp_pool2d(x, p, **case.kwargs), away_from_zero(case.x))


@pytest.mark.parametrize("case", cases(ADAPTIVE_CASES))
def test_adaptive_avg_pool2d(case):
    shape, size = case
    gradcheck(lambda x: F.adaptive_avg_pool2d(x, size), randn(*shape))


# ----- dense ops, activations, normalisation --------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("x_shape", [(1, 4), (3, 4), (2, 3, 4)], ids=["batch1", "batch3", "leading_dims"])
def test_linear(x_shape, bias):
    arrays = [randn(*x_shape, seed=1), randn(5, 4, seed=2)] + ([randn(5, seed=3)] if bias else [])
    gradcheck(lambda x, w, b=None: F.linear(x, w, b), *arrays)


@pytest.mark.parametrize("fn", [F.relu, F.leaky_relu, lambda x: F.leaky_relu(x, 0.2), F.sigmoid, F.tanh],
                         ids=["relu", "leaky_relu", "leaky_relu_0.2", "sigmoid", "tanh"])
def test_elementwise_activation(fn):
    gradcheck(fn, away_from_zero((2, 3, 4)) * 2)  # relu kinks stay 0.2 away


@pytest.mark.parametrize("dim", [-1, 0, 1], ids=["dim-1", "dim0", "dim1"])
@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_family(fn, dim):
    gradcheck(lambda x: fn(x, dim=dim), randn(3, 4, 2) * 2)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5)], ids=["NC", "NCHW"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm(training, shape):
    c = shape[1]
    running_mean, running_var = randn(c, seed=5) * 0.1, 1 + np.abs(randn(c, seed=6))

    def fn(x, w, b):
        # fresh running statistics each call: training mode updates them in place
        return F.batch_norm(x, running_mean.copy(), running_var.copy(), w, b, training=training)

    gradcheck(fn, randn(*shape, seed=1) * 2 + 1, 1 + randn(c, seed=2) * 0.3, randn(c, seed=3))


def test_batch_norm_without_affine():
    gradcheck(lambda x: F.batch_norm(x, np.zeros(3), np.ones(3), training=True), randn(4, 3, 2, 2))


LOSS_CASES = {
    "NC": ((5, 4), (5,)),
    "NCHW": ((2, 3, 2, 3), (2, 2, 3)),
}


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1], ids=["hard", "smoothed"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", LOSS_CASES.values(), ids=LOSS_CASES.keys())
def test_cross_entropy(shapes, reduction, label_smoothing):
    logits_shape, target_shape = shapes
    target = RNG(7).integers(0, logits_shape[1], target_shape)
    gradcheck(lambda z: F.cross_entropy(z, target, reduction, label_smoothing), randn(*logits_shape) * 2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", LOSS_CASES.values(), ids=LOSS_CASES.keys())
def test_nll_loss(shapes, reduction):
    logits_shape, target_shape = shapes
    target = RNG(7).integers(0, logits_shape[1], target_shape)
    gradcheck(lambda z: F.nll_loss(z, target, reduction), randn(*logits_shape))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    gradcheck(lambda a, b: F.mse_loss(a, b, reduction), randn(2, 3, 4, seed=1), randn(2, 3, 4, seed=2))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1], ids=["hard", "smoothed"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_weighted_with_ignored_pixels(reduction, label_smoothing):
    target = RNG(7).integers(0, 3, (2, 2, 3))
    target[0, 1, :2] = -100
    gradcheck(lambda z: F.cross_entropy(z, target, reduction, label_smoothing, weight=[0.5, 2.0, 1.5]),
              randn(2, 3, 2, 3) * 2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(reduction):
    # w.r.t. logits (one exactly 0, some large), soft targets, weight and pos_weight
    x = randn(3, 4) * 3
    x[0, 0], x[1, 1], x[2, 2] = 0.0, 30.0, -30.0
    gradcheck(lambda z, y, w, pw: F.binary_cross_entropy_with_logits(z, y, w, pw, reduction),
              x, RNG(1).random((3, 4)), RNG(2).random((3, 1)), RNG(3).random(4) + 0.5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", [
    lambda a, b, r: F.huber_loss(a, b, r, delta=0.7),
    lambda a, b, r: F.smooth_l1_loss(a, b, r, beta=0.7),
    lambda a, b, r: F.smooth_l1_loss(a, b, r, beta=0.0),
], ids=["huber", "smooth_l1", "smooth_l1_beta0"])
def test_huber_and_smooth_l1(loss, reduction):
    # differences from 0.2 to 1.5 in size, on both sides of the threshold 0.7, away from kinks
    target = randn(3, 4, seed=2)
    gradcheck(lambda a, b: loss(a, b, reduction), target + away_from_zero((3, 4), seed=1), target)


@pytest.mark.parametrize("widths", [(1, 2), (1, 0, 2, 1), (0, 1, 1, 0, 1, 1)], ids=["last_axis", "image", "three_axes"])
def test_pad(widths):
    gradcheck(lambda x: F.pad(x, widths, value=0.5), randn(2, 2, 3, 4))


@pytest.mark.parametrize("dim", [0, 1, -1], ids=["dim0", "dim1", "dim-1"])
def test_cat(dim):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for k, s in enumerate(shapes):
        s[dim] = k + 1
    gradcheck(lambda *ts: F.cat(ts, dim=dim), *[randn(*s, seed=k) for k, s in enumerate(shapes)])


@pytest.mark.parametrize("start, end", [(1, -1), (0, -1), (1, 2), (2, 3)], ids=["default", "all", "C_H", "H_W"])
def test_flatten(start, end):
    gradcheck(lambda x: F.flatten(x, start, end), randn(2, 3, 2, 2))


@pytest.mark.parametrize("p", [0.0, 0.3, 0.7])
def test_dropout_with_fixed_mask(p):
    # the same seed gives the same mask on every call, so dropout is a fixed linear map
    gradcheck(lambda x: F.dropout(x, p, training=True, rng=RNG(0)), randn(3, 4, 5))


# ----- layers (float32 parameters converted to float64) -------------------------------------------
LAYERS = {
    "conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1, rng=RNG(0)), (2, 2, 5, 5)),
    "conv2d_depthwise_same_even": (lambda: nn.Conv2d(2, 4, (2, 3), padding="same", groups=2, rng=RNG(0)), (1, 2, 5, 4)),
    "conv2d_stride_dilation_no_bias": (lambda: nn.Conv2d(2, 2, 2, stride=2, dilation=2, bias=False, rng=RNG(0)),
                                       (1, 2, 7, 6)),
    "linear": (lambda: nn.Linear(6, 4, rng=RNG(0)), (3, 6)),
    "batchnorm2d_train": (lambda: nn.BatchNorm2d(3), (2, 3, 3, 3)),
    "batchnorm2d_eval": (lambda: nn.BatchNorm2d(3).eval(), (2, 3, 3, 3)),
    "avgpool2d_ceil": (lambda: nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), (1, 2, 5, 5)),
    "lppool2d": (lambda: nn.LPPool2d(2, 2, stride=1), (1, 2, 4, 4)),
    "adaptive_avg": (lambda: nn.AdaptiveAvgPool2d((2, 3)), (1, 2, 5, 5)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 2, 2)),
    "sigmoid": (lambda: nn.Sigmoid(), (2, 3)),
    "tanh": (lambda: nn.Tanh(), (2, 3)),
    "softmax": (lambda: nn.Softmax(), (2, 3, 2)),
    "dropout_eval": (lambda: nn.Dropout(0.5).eval(), (2, 3)),
}


@pytest.mark.parametrize("make, shape", LAYERS.values(), ids=LAYERS.keys())
def test_layer(make, shape):
    layer = make()
    if isinstance(layer, nn.BatchNorm2d):  # non-trivial affine parameters and running statistics
        layer.weight.data[...] = 1 + randn(*layer.weight.shape, seed=8) * 0.3
        layer.bias.data[...] = randn(*layer.bias.shape, seed=9)
        layer.running_mean[...], layer.running_var[...] = 0.2, 1.5
    gradcheck_module(layer, randn(*shape) + 0.1)


def test_layers_with_kinks_away_from_zero():
    gradcheck_module(nn.ReLU(), away_from_zero((2, 3)))
    gradcheck_module(nn.LeakyReLU(0.1), away_from_zero((2, 3)))
    gradcheck_module(nn.MaxPool2d(2, stride=1, padding=1), distinct((1, 2, 4, 4)))


def test_dropout_layer_in_training_with_fixed_mask():
    layer = nn.Dropout(0.4)
    x = f64(randn(3, 4))

    def forward():
        layer.rng = RNG(3)
        return layer(x)

    check_gradients(forward, [x])


@pytest.mark.parametrize("loss, target", [
    (nn.CrossEntropyLoss(label_smoothing=0.05), RNG(1).integers(0, 4, 3)),
    (nn.CrossEntropyLoss(weight=[1.0, 2.0, 0.5, 1.0], ignore_index=2), np.array([0, 2, 3])),
    (nn.MSELoss(reduction="sum"), randn(3, 4, seed=5)),
    (nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 3.0, 0.5]), RNG(2).random((3, 4))),
    (nn.HuberLoss(delta=0.5), randn(3, 4, seed=5) + away_from_zero((3, 4), seed=6)),
    (nn.SmoothL1Loss(beta=0.5), randn(3, 4, seed=5) + away_from_zero((3, 4), seed=6)),
], ids=["cross_entropy", "cross_entropy_weighted", "mse", "bce_with_logits", "huber", "smooth_l1"])
def test_loss_layers(loss, target):
    gradcheck(lambda z: loss(z, target), randn(3, 4))


def test_tiny_cnn_end_to_end():
    rng = RNG(0)
    model = to_float64(nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, rng=rng), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 2, padding="same", rng=rng), nn.Tanh(), nn.AvgPool2d(2, ceil_mode=True),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 3, rng=rng)))
    for p in model.parameters():  # move biases and BN affine away from their neutral start
        p.data += randn(*p.shape, seed=p.size) * 0.1
    x, target = f64(randn(2, 2, 7, 7)), np.array([0, 2])
    loss = nn.CrossEntropyLoss()
    check_gradients(lambda: loss(model(x), target), [x] + model.parameters())


# ----- the checker itself -----------------------------------------------------------------------
def test_checker_catches_a_wrong_gradient():
    def almost_square(x):  # forward x^2, backward off by 1e-4 relative
        return Tensor.from_op(x.data ** 2, (x,), lambda g: (g * 2 * x.data * (1 + 1e-4),))

    with pytest.raises(AssertionError, match="gradient of input 0"):
        gradcheck(almost_square, randn(3, 2))


def test_checker_sees_a_gradient_that_autograd_misses():
    x, w = f64(randn(4, 3, seed=1)), f64(randn(2, 3, seed=2))
    with pytest.raises(AssertionError, match="gradient of input 1"):
        check_gradients(lambda: F.linear(x, w.detach()), [x, w])  # detach shares data: numeric != 0
