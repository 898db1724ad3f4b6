"""One geometry: windows.Window is what conv and pooling compute with, what layers validate
and expose (``geometry``), and what summaries read; layers describe themselves."""

import numpy as np
import pytest

from convscope import Tensor, nn
from convscope import functional as F
from convscope.windows import Window, conv_window, output_size, pool_window

RNG = np.random.default_rng


# ----- hand-computed cases --------------------------------------------------------------------
def test_conv_window_resolves_padding():
    assert conv_window(5, padding=2) == Window((5, 5), (1, 1), (1, 1), (2, 2, 2, 2), False)
    assert conv_window((4, 3), padding="same").padding == (1, 2, 1, 1)  # the extra row at the bottom
    assert conv_window(3, dilation=2, padding="same").padding == (2, 2, 2, 2)
    assert conv_window(3, stride=2, padding="valid").padding == (0, 0, 0, 0)
    assert conv_window(3, padding=(1, 0)).before() == (1, 0)


def test_pool_window_defaults_and_ceil_overhang():
    w = pool_window(3, stride=2, padding=1, ceil_mode=True)
    assert w.stride == (2, 2) and pool_window(2).stride == (2, 2)
    assert w.output_hw((6, 6)) == (4, 4) and w.pads((6, 6)) == (1, 2, 1, 2)  # a last partial window
    assert pool_window(2).output_hw((7, 5)) == (3, 2) and pool_window(2).pads((7, 5)) == (0, 0, 0, 0)


@pytest.mark.parametrize("call, match", [
    (lambda: conv_window(0), "kernel_size must be >= 1"),
    (lambda: conv_window(3, stride=0), "stride must be >= 1"),
    (lambda: conv_window(3, padding=-1), "padding must be >= 0"),
    (lambda: conv_window(3, padding="full"), "'valid' or 'same'"),
    (lambda: conv_window(3, stride=2, padding="same"), "needs stride 1"),
    (lambda: conv_window(True), "int or a pair"),
    (lambda: pool_window(2, padding=2), "at most half"),
    (lambda: pool_window((2, 2, 2)), "int or a pair"),
], ids=["kernel0", "stride0", "padneg", "padstr", "same_stride", "bool", "pool_pad", "pool_triple"])
def test_windows_refuse_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----- the window is what the ops compute, over random configurations ------------------------
def random_conv(rng):
    k, s, d = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    padding = "same" if s == 1 and rng.random() < 0.3 else int(rng.integers(0, 3))
    return dict(kernel_size=k, stride=s, padding=padding, dilation=d)


@pytest.mark.parametrize("seed", range(12))
def test_conv_output_shape_is_the_window_formula(seed):
    rng = RNG(seed)
    args, size = random_conv(rng), (int(rng.integers(9, 16)), int(rng.integers(9, 16)))
    layer = nn.Conv2d(2, 3, rng=rng, **args)
    out = layer(Tensor(rng.random((1, 2) + size, dtype=np.float32)))
    assert out.shape[2:] == layer.geometry(size).output_hw(size)
    if args["padding"] != "same":
        k, s, p, d = args["kernel_size"], args["stride"], args["padding"], args["dilation"]
        assert out.shape[2] == output_size(size[0], k, s, p, d)


@pytest.mark.parametrize("seed", range(12))
def test_pool_output_shape_is_the_window_formula(seed):
    rng = RNG(seed)
    k = int(rng.integers(1, 5))
    args = dict(kernel_size=k, stride=int(rng.integers(1, 4)), padding=int(rng.integers(0, k // 2 + 1)),
                ceil_mode=bool(rng.random() < 0.5))
    size = (int(rng.integers(k + 1, 14)), int(rng.integers(k + 1, 14)))
    x = Tensor(rng.random((1, 2) + size, dtype=np.float32))
    for layer in (nn.MaxPool2d(**args), nn.AvgPool2d(**args), nn.LPPool2d(2, **args)):
        assert layer(x).shape[2:] == layer.geometry(size).output_hw(size), repr(layer)


def test_adaptive_pool_geometry_tiles_even_inputs():
    window = nn.AdaptiveAvgPool2d(2).geometry((8, 6))
    assert window.kernel == (4, 3) and window.stride == (4, 3) and window.output_hw((8, 6)) == (2, 2)


def test_pointwise_layers_have_no_window():
    assert all(layer.geometry((5, 5)) is None for layer in (nn.ReLU(), nn.Flatten(), nn.BatchNorm2d(2)))


# ----- layers describe themselves --------------------------------------------------------------
LAYERS = [
    lambda rng: nn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=False, rng=rng),
    lambda rng: nn.Conv2d(3, 6, (2, 5), padding="same", rng=rng),
    lambda rng: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    lambda rng: nn.AvgPool2d((2, 3), count_include_pad=False),
    lambda rng: nn.LPPool2d(3, 2),
    lambda rng: nn.AdaptiveAvgPool2d((2, 3)),
    lambda rng: nn.Linear(7, 3, bias=False, rng=rng),
    lambda rng: nn.BatchNorm2d(5, eps=1e-3, momentum=0.2, affine=False),
    lambda rng: nn.Dropout(0.25, rng=rng),
    lambda rng: nn.LeakyReLU(0.3),
    lambda rng: nn.Softmax(dim=0),
    lambda rng: nn.Flatten(2),
    lambda rng: nn.CrossEntropyLoss(label_smoothing=0.1),
]


@pytest.mark.parametrize("make", LAYERS, ids=lambda f: None)
def test_config_rebuilds_the_same_layer(make):
    layer = make(RNG(0))
    config = layer.config()
    assert "rng" not in config
    rebuilt = type(layer)(**config)
    assert rebuilt.config() == config and repr(rebuilt) == repr(layer)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in layer.parameters()]


def test_config_is_the_constructor_arguments_as_the_layer_keeps_them():
    conv = nn.Conv2d(1, 6, 5, padding=2, rng=RNG(0))
    assert conv.config() == {"in_channels": 1, "out_channels": 6, "kernel_size": [5, 5], "stride": [1, 1],
                             "padding": [2, 2], "dilation": [1, 1], "groups": 1, "bias": True}
    assert nn.MaxPool2d((2, 3)).config() == {"kernel_size": [2, 3], "stride": [2, 3], "padding": [0, 0],
                                              "ceil_mode": False}
    assert nn.Conv2d(2, 2, 4, padding="same", bias=False, rng=RNG(0)).config()["padding"] == "same"


def test_every_module_class_is_registered_for_model_files():
    class Tiny(nn.Module):
        def forward(self, x):
            return x

    assert nn.LAYERS["Conv2d"] is nn.Conv2d and nn.LAYERS[Tiny.file_name()] is Tiny
    assert Tiny.file_name() == "test_geometry.test_every_module_class_is_registered_for_model_files.<locals>.Tiny"


def test_varargs_modules_say_why_they_have_no_config():
    with pytest.raises(TypeError, match="takes \\*args"):
        nn.Sequential(nn.ReLU()).config()


def test_mult_adds_protocol():
    conv = nn.Conv2d(2, 4, 3, rng=RNG(0))
    assert conv.mult_adds((1, 2, 7, 7), (1, 4, 5, 5)) == 4 * 5 * 5 * 2 * 3 * 3
    assert nn.Linear(5, 3, rng=RNG(0)).mult_adds((1, 5), (1, 3)) == 15
    assert nn.ReLU().mult_adds((1, 4), (1, 4)) == 0


# ----- the engine names its ops and can keep a non-leaf gradient -------------------------------
def test_ops_record_their_names():
    x = Tensor(RNG(0).random((1, 1, 6, 6)), requires_grad=True)
    conv = F.conv2d(x, Tensor(np.ones((2, 1, 3, 3))))
    y = F.max_pool2d(F.relu(conv), 2)
    assert (conv.op, y.op, (y * 2).op, y.sum().op, F.linear(F.flatten(y), Tensor(np.ones((3, 8)))).op) == \
        ("conv2d", "max_pool2d", "mul", "sum", "matmul")
    assert x.op is None  # a leaf


def test_retain_grad_keeps_a_non_leaf_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, [6.0, 12.0])
    np.testing.assert_allclose(x.grad, [18.0, 36.0])
