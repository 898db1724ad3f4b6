"""Cases a review of the trace / geometry / self-describing-layers change found: each one is
what a user does by habit, and each once gave a wrong file, picture or number."""

import numpy as np
import pytest

from convscope import Tensor, nn
from convscope.data import Dataset
from convscope.explain import explain
from convscope.io import load_model, save_model
from convscope.models import lenet5
from convscope.summary import summarize, summary
from convscope.trace import trace
from convscope.viz.saliency import layer_gradient, saliency

RNG = np.random.default_rng


def digit():
    return RNG(1).random((1, 1, 28, 28), dtype=np.float32)


def test_attributes_changed_after_construction_are_saved_and_shown(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 5, padding=2, rng=RNG(0)), nn.LeakyReLU(), nn.Dropout(0.5, rng=RNG(1)))
    model[0].padding = (0, 0)  # PyTorch habit: change a layer in place
    model[1].negative_slope = 0.3
    model[2].p = 0.25
    save_model(tmp_path / "m.safetensors", model, input_shape=(1, 28, 28))
    loaded, _ = load_model(tmp_path / "m.safetensors")
    assert loaded[1].negative_slope == 0.3 and loaded[2].p == 0.25 and loaded[0].padding == (0, 0)
    assert repr(loaded) == repr(model) and "negative_slope=0.3" in repr(model) and "padding" not in repr(model[0])
    rows = summarize(model, (1, 28, 28))
    assert rows[0].output_shape == (1, 2, 24, 24) and rows[0].arithmetic == "(28 + 2*0 - 5)/1 + 1 = 24"


def test_ceil_mode_arithmetic_matches_the_output():
    row = summarize(nn.Sequential(nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True)), (1, 5, 5))[0]
    assert row.output_shape == (1, 1, 3, 3)
    assert row.arithmetic.endswith("= 3 (the last window would start in the padding: dropped)")


class Block(nn.Module):
    """A block that keeps a kernel_size for its children: not a window of its own."""

    def __init__(self, kernel_size=3):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(1, 1, kernel_size, padding=1, rng=RNG(0))

    def forward(self, x):
        return self.conv(x)


class Reflect(nn.Module):
    """Pad by reflection (a padding string no window knows)."""

    def __init__(self, kernel_size=3, padding="reflect"):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding

    def forward(self, x):
        return x


def test_default_geometry_is_only_for_leaves_and_never_raises():
    model = nn.Sequential(Block(), Reflect())
    assert model[0].geometry((8, 8)) is None and model[1].geometry((8, 8)) is None
    rows = summarize(model, (1, 8, 8))
    assert [(r.name, r.arithmetic) for r in rows] == [("0.conv", "(8 + 2*1 - 3)/1 + 1 = 8"), ("0", None), ("1", None)]
    assert "Pad by reflection" in explain(model, (1, 8, 8))


def test_saliency_never_reuses_another_classes_gradient():
    model = lenet5(rng=RNG(0))
    t = trace(model, digit(), gradients=True)
    first, _ = saliency(t, target=3)
    t.backward(7)
    again, _ = saliency(t, target=3)
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(saliency(model, digit(), target=3)[0], first)


def test_unknown_layer_for_layer_gradient_is_a_value_error():
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        layer_gradient(lenet5(rng=RNG(0)), digit(), "nope")


def test_backward_guard_and_reset_cover_every_output():
    model = lenet5(rng=RNG(0))
    x = Tensor(digit(), requires_grad=True)
    with pytest.raises(RuntimeError, match="gradients=True"):
        trace(model, x).backward()
    t = trace(model, digit(), gradients=True)
    t.backward(2)
    t.backward(1)
    expected = np.zeros(10, np.float32)
    expected[1] = 1
    np.testing.assert_array_equal(t.output.grad[0], expected)  # the model's output too: no accumulation


class Pair(nn.Module):
    """Return two tensors."""

    def forward(self, x):
        return x, x * 2


class UsePair(nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = Pair()
        self.conv = nn.Conv2d(1, 2, 3, rng=RNG(0))

    def forward(self, x):
        a, b = self.pair(x)
        return nn.Flatten()(self.conv(a + b))


def test_layers_returning_tuples_are_left_out_of_the_trace():
    t = trace(UsePair(), np.ones((1, 1, 5, 5), np.float32), gradients=True)
    assert [layer.name for layer in t.layers] == ["conv"]
    t.backward(0)
    assert t.input_gradient.shape == (1, 1, 5, 5)


def test_float_labels_with_class_names_are_refused():
    with pytest.raises(ValueError, match="expected integer class labels to go with class_names, got shape \\(4,\\) "
                                         "dtype float64"):
        Dataset(np.zeros((4, 3, 3), np.uint8), np.array([0.0, 1.0, 1.0, 0.0]), ["a", "b"])


def test_softmax_is_not_explained_as_elementwise():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, rng=RNG(0)), nn.Softmax())
    text = explain(model, (1, 2, 2), "math")
    assert "## Layer 2: Softmax" in text and "elementwise" not in text.split("## Layer 2")[1].split("##")[0]


@pytest.mark.parametrize("layer, text", [(nn.Dropout(), "Dropout(p=0.5)"),
                                         (nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
                                         (nn.Softmax(), "Softmax(dim=1)")], ids=["dropout", "leaky", "softmax"])
def test_default_valued_reprs_show_their_value(layer, text):
    assert repr(layer) == text


class Stack(nn.Sequential):
    """A Sequential subclass that adds nothing but a name."""


def test_sequential_subclasses_save_and_load(tmp_path):
    model = Stack(nn.Conv2d(1, 2, 3, rng=RNG(0)), nn.ReLU())
    save_model(tmp_path / "s.safetensors", model, input_shape=(1, 5, 5))
    loaded, _ = load_model(tmp_path / "s.safetensors")
    assert type(loaded) is Stack and repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded[0].weight.data, model[0].weight.data)


def test_a_role_typo_fails_when_the_class_is_defined():
    with pytest.raises(TypeError, match="role is 'pooling'; expected None or one of conv, pool"):
        class Bad(nn.Module):
            role = "pooling"


def test_summary_still_names_a_model_of_unusual_layers():
    assert "Reflect" in summary(nn.Sequential(Reflect()), (1, 4, 4))
