"""Modules: parameter names, state dicts, train/eval, repr, validation, layer-naming errors, init."""

import copy
import math

import numpy as np
import pytest

from convscope import Tensor, nn, no_grad
from convscope import functional as F
from convscope.models import LeNet5
from convscope.nn import init

RNG = np.random.default_rng


def t32(array):
    return Tensor(array, dtype=np.float32)


class TwoStage(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=rng), nn.BatchNorm2d(2), nn.ReLU())
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5, rng=rng), nn.Linear(2 * 4 * 4, 3, rng=rng))

    def forward(self, x):
        return self.classifier(self.features(x))


# ----- parameters and state dicts ----------------------------------------------------------------
def test_named_parameters_use_dotted_names():
    names = [name for name, _ in TwoStage(RNG(0)).named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                     "classifier.2.weight", "classifier.2.bias"]


def test_lenet5_parameters():
    model = LeNet5(rng=RNG(0))
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert shapes == {"0.weight": (6, 1, 5, 5), "0.bias": (6,), "3.weight": (16, 6, 5, 5), "3.bias": (16,),
                      "7.weight": (120, 400), "7.bias": (120,), "9.weight": (84, 120), "9.bias": (84,),
                      "11.weight": (10, 84), "11.bias": (10,)}
    assert sum(p.size for p in model.parameters()) == 61706
    assert all(p.dtype == np.float32 and p.requires_grad for p in model.parameters())


def test_state_dict_holds_parameters_and_buffers():
    state = TwoStage(RNG(0)).state_dict()
    assert list(state) == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                           "classifier.2.weight", "classifier.2.bias",
                           "features.1.running_mean", "features.1.running_var"]


def test_state_dict_round_trip_reproduces_outputs():
    source, target = TwoStage(RNG(0)), TwoStage(RNG(1))
    source.train()(t32(RNG(2).standard_normal((4, 1, 4, 4))))  # move the running statistics
    saved = copy.deepcopy(source.state_dict())
    target.load_state_dict(saved)
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)
    x = t32(RNG(3).standard_normal((2, 1, 4, 4)))
    np.testing.assert_array_equal(source.eval()(x).data, target.eval()(x).data)
    saved["features.0.weight"][...] = 0  # the model copied the arrays; it holds no reference
    assert np.any(target.features[0].weight.data != 0)


def test_load_state_dict_shape_mismatch_names_the_key():
    state = dict(TwoStage(RNG(0)).state_dict())
    state["classifier.2.weight"] = np.zeros((3, 5))
    with pytest.raises(ValueError, match=r"classifier\.2\.weight.*\(3, 5\).*\(3, 32\)"):
        TwoStage(RNG(0)).load_state_dict(state)


def test_load_state_dict_missing_and_unexpected_keys():
    state = dict(TwoStage(RNG(0)).state_dict())
    del state["features.0.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match="features.0.bias.*extra"):
        TwoStage(RNG(0)).load_state_dict(state)
    TwoStage(RNG(0)).load_state_dict(state, strict=False)


def test_zero_grad_clears_every_gradient():
    model = TwoStage(RNG(0))
    F.cross_entropy(model(t32(np.ones((2, 1, 4, 4)))), [0, 1]).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ----- train / eval ---------------------------------------------------------------------------------
def test_train_and_eval_propagate_to_every_submodule():
    model = TwoStage(RNG(0))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not any(m.training for m in model.modules())


def test_dropout_only_in_training():
    layer, x = nn.Dropout(0.5, rng=RNG(0)), t32(np.ones((10, 10)))
    assert np.any(layer(x).data == 0)
    np.testing.assert_array_equal(layer.eval()(x).data, x.data)


def test_batchnorm_running_stats_move_in_training_only():
    bn, x = nn.BatchNorm2d(2), t32(RNG(0).standard_normal((4, 2, 3, 3)) + 5)
    bn(x)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.data.mean(axis=(0, 2, 3)), rtol=1e-5)
    frozen = bn.running_mean.copy()
    out = bn.eval()(x)
    np.testing.assert_array_equal(bn.running_mean, frozen)
    expected = (x.data - frozen[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(out.data, expected, rtol=1e-5)


# ----- repr -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, text", [
    (nn.Conv2d(1, 6, 5, rng=RNG(0)), "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))"),
    (nn.Conv2d(4, 8, (2, 3), stride=2, padding=1, dilation=2, groups=2, bias=False, rng=RNG(0)),
     "Conv2d(4, 8, kernel_size=(2, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=2, bias=False)"),
    (nn.Conv2d(2, 2, 4, padding="same", rng=RNG(0)), "padding='same'"),
    (nn.MaxPool2d(3, 2, 1, ceil_mode=True),
     "MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True)"),
    (nn.AvgPool2d(2), "AvgPool2d(kernel_size=(2, 2), stride=(2, 2))"),
    (nn.LPPool2d(2, 3), "LPPool2d(norm_type=2, kernel_size=(3, 3)"),
    (nn.AdaptiveAvgPool2d(1), "AdaptiveAvgPool2d(output_size=(1, 1))"),
    (nn.Linear(400, 120, rng=RNG(0)), "Linear(in_features=400, out_features=120, bias=True)"),
    (nn.BatchNorm2d(3, momentum=0.2), "BatchNorm2d(3, eps=1e-05, momentum=0.2)"),
    (nn.Dropout(0.25), "Dropout(p=0.25)"),
    (nn.LeakyReLU(0.2), "LeakyReLU(negative_slope=0.2)"),
    (nn.Softmax(dim=0), "Softmax(dim=0)"),
], ids=["conv", "conv_all_options", "conv_same", "maxpool", "avgpool", "lppool", "adaptive", "linear",
        "batchnorm", "dropout", "leaky_relu", "softmax"])
def test_repr_shows_hyperparameters(layer, text):
    assert text in repr(layer)


def test_repr_shows_count_include_pad_when_not_default():
    # count_include_pad=False changes every border value; a summary must tell the two apart
    assert "count_include_pad=False" in repr(nn.AvgPool2d(3, 1, 1, count_include_pad=False))


def test_repr_shows_loss_hyperparameters_when_not_default():
    assert "label_smoothing=0.1" in repr(nn.CrossEntropyLoss(label_smoothing=0.1))
    assert "reduction='sum'" in repr(nn.MSELoss(reduction="sum"))


def test_sequential_repr_lists_children():
    text = repr(nn.Sequential(nn.Conv2d(1, 2, 3, rng=RNG(0)), nn.ReLU()))
    assert text.splitlines() == ["Sequential(", "  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))",
                                 "  (1): ReLU()", ")"]


# ----- constructor validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel_size=0), "kernel_size must be >= 1"),
    (dict(kernel_size=(3, 3, 3)), "kernel_size must be an int or a pair"),
    (dict(kernel_size=2.5), "kernel_size must be an int or a pair"),
    (dict(kernel_size=3, stride=0), "stride must be >= 1"),
    (dict(kernel_size=3, dilation=0), "dilation must be >= 1"),
    (dict(kernel_size=3, padding=-1), "padding must be >= 0"),
    (dict(kernel_size=3, padding="full"), "'valid' or 'same'"),
    (dict(kernel_size=3, padding="same", stride=2), "padding='same' needs stride 1"),
    (dict(kernel_size=3, groups=3), "divisible by groups=3"),
    (dict(kernel_size=3, groups=0), "groups must be a positive int"),
], ids=["kernel_0", "kernel_triple", "kernel_float", "stride_0", "dilation_0", "padding_negative",
        "padding_string", "same_stride2", "groups_not_dividing", "groups_0"])
def test_conv2d_constructor_validation(kwargs, match):
    with pytest.raises(ValueError, match=match) as error:
        nn.Conv2d(4, 6, **kwargs)
    assert str(error.value).startswith("Conv2d(4, 6")


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Conv2d(0, 6, 3), "in_channels must be a positive int"),
    (lambda: nn.Conv2d(3, 2.5, 3), "out_channels must be a positive int"),
    (lambda: nn.Linear(0, 3), "in_features must be a positive int"),
    (lambda: nn.MaxPool2d(0), "kernel_size and stride must be >= 1"),
    (lambda: nn.MaxPool2d(2, padding=2), "at most half of kernel_size"),
    (lambda: nn.AvgPool2d((2, 2, 2)), "kernel_size must be an int or a pair"),
    (lambda: nn.LPPool2d(0.5, 2), "norm_type must be >= 1"),
    (lambda: nn.Dropout(1.0), "p must be in \\[0, 1\\)"),
    (lambda: nn.BatchNorm2d(0), "num_features must be a positive int"),
    (lambda: nn.Sequential(nn.ReLU(), "relu"), "argument 1 is str, not a Module"),
    (lambda: nn.HuberLoss(delta=0), "HuberLoss\\(delta=0\\): delta must be positive"),
    (lambda: nn.SmoothL1Loss(beta=-0.5), "SmoothL1Loss\\(beta=-0.5\\): beta must be >= 0"),
    (lambda: nn.BCEWithLogitsLoss(reduction="avg"), "BCEWithLogitsLoss: reduction must be .* got 'avg'"),
], ids=["conv_in_0", "conv_out_float", "linear_0", "pool_kernel_0", "pool_padding", "pool_kernel_triple",
        "lp_norm", "dropout_p", "batchnorm_0", "sequential_non_module", "huber_delta_0", "smooth_l1_beta",
        "bce_reduction"])
def test_layer_constructor_validation(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_module_subclass_must_call_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Broken()


# ----- shape errors name the layer ------------------------------------------------------------------------
def test_conv_shape_error_names_the_layer():
    with pytest.raises(ValueError) as error:
        nn.Conv2d(1, 6, 5, rng=RNG(0))(t32(np.zeros((64, 3, 32, 32))))
    message = str(error.value)
    for part in ("Conv2d(1, 6", "expected input with 1 channel", "(64, 3, 32, 32)"):
        assert part in message


def test_shape_error_inside_a_model_names_the_innermost_layer_once():
    with pytest.raises(ValueError) as error:
        LeNet5(rng=RNG(0))(t32(np.zeros((64, 3, 32, 32))))
    message = str(error.value)
    assert message.startswith("Conv2d(1, 6") and message.count("Conv2d") == 1
    assert "LeNet5" not in message


def test_linear_shape_error_names_the_layer():
    model = nn.Sequential(nn.Flatten(), nn.Linear(400, 120, rng=RNG(0)))
    with pytest.raises(ValueError) as error:
        model(t32(np.zeros((2, 16, 4, 4))))
    message = str(error.value)
    assert "Linear(in_features=400, out_features=120" in message
    assert "400 features" in message and "(2, 256)" in message


@pytest.mark.parametrize("layer, shape, name", [
    (nn.BatchNorm2d(4), (2, 3, 5, 5), "BatchNorm2d(4"),
    (nn.MaxPool2d(3), (1, 1, 2, 2), "MaxPool2d(kernel_size=(3, 3)"),
    (nn.AvgPool2d(2), (1, 4, 4), "AvgPool2d(kernel_size=(2, 2)"),
], ids=["batchnorm", "maxpool", "avgpool"])
def test_other_shape_errors_name_the_layer(layer, shape, name):
    with pytest.raises(ValueError) as error:
        layer(t32(np.zeros(shape)))
    assert str(error.value).startswith(name)


# ----- layers call functional ---------------------------------------------------------------------------
def test_layers_match_their_functional_op():
    x = t32(RNG(0).standard_normal((2, 4, 7, 6)))
    conv = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2, rng=RNG(1))
    conv.bias.data[...] = RNG(2).standard_normal(6)
    expected = F.conv2d(x, conv.weight, conv.bias, (2, 1), 1, (1, 2), 2)
    np.testing.assert_array_equal(conv(x).data, expected.data)
    np.testing.assert_array_equal(nn.AvgPool2d(3, 2, 1, True, False)(x).data,
                                  F.avg_pool2d(x, 3, 2, 1, True, False).data)
    np.testing.assert_array_equal(nn.LPPool2d(3, 2)(x).data, F.lp_pool2d(x, 3, 2).data)


# ----- init ------------------------------------------------------------------------------------------------
SHAPE = (256, 128, 3, 3)  # fan_in 1152, fan_out 2304; 294,912 draws
FAN_IN, FAN_OUT = 128 * 9, 256 * 9


@pytest.mark.parametrize("fill, kwargs, std", [
    (init.kaiming_uniform_, {}, math.sqrt(2 / FAN_IN)),
    (init.kaiming_uniform_, dict(mode="fan_out"), math.sqrt(2 / FAN_OUT)),
    (init.kaiming_uniform_, dict(nonlinearity="leaky_relu", a=0.2), math.sqrt(2 / 1.04 / FAN_IN)),
    (init.kaiming_normal_, {}, math.sqrt(2 / FAN_IN)),
    (init.kaiming_normal_, dict(nonlinearity="tanh"), 5 / 3 / math.sqrt(FAN_IN)),
    (init.xavier_uniform_, {}, math.sqrt(2 / (FAN_IN + FAN_OUT))),
    (init.xavier_uniform_, dict(gain=2.0), 2 * math.sqrt(2 / (FAN_IN + FAN_OUT))),
    (init.xavier_normal_, {}, math.sqrt(2 / (FAN_IN + FAN_OUT))),
], ids=["kaiming_uniform", "kaiming_uniform_fan_out", "kaiming_uniform_leaky", "kaiming_normal",
        "kaiming_normal_tanh", "xavier_uniform", "xavier_uniform_gain2", "xavier_normal"])
def test_init_statistics_match_the_formulas(fill, kwargs, std):
    w = fill(nn.Parameter(np.zeros(SHAPE)), RNG(0), **kwargs)
    values = w.data.astype(np.float64)
    assert abs(values.mean()) < 4 * std / math.sqrt(values.size)
    assert values.std() == pytest.approx(std, rel=0.01)
    if "uniform" in fill.__name__:  # U(-b, b) with b = sqrt(3) * std
        bound = math.sqrt(3) * std
        assert values.max() <= bound * (1 + 1e-6) and values.min() >= -bound * (1 + 1e-6)
        assert values.max() > 0.99 * bound
    else:
        assert np.mean(np.abs(values) > 2 * std) == pytest.approx(0.0455, abs=0.003)  # normal tails


@pytest.mark.parametrize("fill", [init.kaiming_uniform_, init.kaiming_normal_, init.xavier_uniform_,
                                  init.xavier_normal_], ids=lambda f: f.__name__)
def test_init_is_reproducible_with_the_same_seed(fill):
    a = fill(nn.Parameter(np.zeros((8, 4, 3, 3))), RNG(5)).data
    b = fill(nn.Parameter(np.zeros((8, 4, 3, 3))), RNG(5)).data
    c = fill(nn.Parameter(np.zeros((8, 4, 3, 3))), RNG(6)).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_layers_are_reproducible_with_the_same_seed():
    a, b = LeNet5(rng=RNG(7)), LeNet5(rng=RNG(7))
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


@pytest.mark.parametrize("make, fan_in", [(lambda: nn.Conv2d(16, 32, 3, rng=RNG(0)), 16 * 9),
                                           (lambda: nn.Linear(400, 120, rng=RNG(0)), 400)],
                         ids=["conv", "linear"])
def test_default_init_is_pytorch_uniform(make, fan_in):
    """Weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch's defaults."""
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight.data, layer.bias.data):
        assert np.abs(p).max() <= bound * (1 + 1e-6)
        assert np.abs(p).max() > 0.9 * bound  # spread over the whole interval, not all zero
    assert layer.weight.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)


def test_init_helpers():
    assert init.fans((10, 4)) == (4, 10)
    assert init.fans((6, 3, 5, 5)) == (75, 150)
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.fans((5,))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.kaiming_normal_(nn.Parameter(np.zeros((2, 2))), RNG(0), nonlinearity="gelu")
    p = nn.Parameter(np.zeros((2, 3)))
    assert init.ones_(p) is p and np.all(p.data == 1)
    assert np.all(init.zeros_(p).data == 0)
    assert np.all((init.uniform_(p, RNG(0), 2, 3).data >= 2))
    assert init.normal_(p, RNG(0), mean=5.0, std=0.0).data.mean() == 5.0


def test_no_grad_inference_builds_no_graph():
    model = LeNet5(rng=RNG(0)).eval()
    with no_grad():
        out = model(t32(np.zeros((1, 1, 28, 28))))
    assert out.shape == (1, 10) and not out.requires_grad


def test_dtype_error_names_the_layer():
    conv = nn.Conv2d(1, 2, 3, rng=RNG(0))
    with pytest.raises(TypeError, match=r"Conv2d\(1, 2.*expected float32 input like the weights, got float64"):
        conv(Tensor(np.zeros((1, 1, 5, 5))))


def test_dropout_mask_follows_the_memory_layout():
    x = Tensor(np.ones((4, 3, 5, 5), np.float32).transpose(1, 2, 3, 0).copy().transpose(3, 0, 1, 2))
    drop = nn.Dropout(0.5, rng=RNG(0))
    out = drop(x).data
    assert out.strides == x.data.strides  # batch-last stays batch-last
    assert set(np.unique(out)) == {0.0, 2.0}
    assert drop.eval()(x) is x
