"""convscope.trace: one recorded pass gives every layer's shapes, outputs, windows, receptive
fields and, with gradients, the input and layer gradients; nothing is left on the model."""

import numpy as np
import pytest

from convscope import Tensor, nn
from convscope import functional as F
from convscope.models import SmallResNet, lenet5
from convscope.summary import summarize
from convscope.trace import hooked, trace
from convscope.windows import Window

RNG = np.random.default_rng


def digit():
    return RNG(1).random((1, 1, 28, 28), dtype=np.float32)


def test_layers_in_call_order_with_shapes_windows_and_fields():
    t = trace(lenet5(rng=RNG(0)), digit())
    assert [layer.name for layer in t.layers] == [str(i) for i in range(12)]
    assert [layer.kind for layer in t.layers[:3]] == ["Conv2d", "ReLU", "MaxPool2d"]
    conv, pool = t["0"], t["2"]
    assert conv.input_shape == (1, 1, 28, 28) and conv.output_shape == (1, 6, 28, 28)
    assert conv.window == Window((5, 5), (1, 1), (1, 1), (2, 2, 2, 2)) and t["1"].window is None
    assert pool.window.kernel == (2, 2) and pool.field.rf == (6, 6) and pool.field.jump == (2, 2)
    assert t["5"].field.rf == (16, 16) and t["6"].field is None  # after Flatten: the whole image
    assert t.first("pool") is pool and t.first("conv") is conv


def test_outputs_are_the_models_own():
    model, x = lenet5(rng=RNG(0)), digit()
    t = trace(model, x)
    manual = Tensor(x)
    for i, layer in enumerate(model):  # the same layers, run by hand
        manual = layer(manual)
        np.testing.assert_array_equal(t[str(i)].values, manual.data)
        assert t[str(i)].input.shape == t[str(i)].input_shape
    np.testing.assert_array_equal(t.output.data, manual.data)
    np.testing.assert_allclose(t.probabilities(), F.softmax(manual, dim=1).data)


def test_summary_rows_come_from_the_trace():
    model = SmallResNet(rng=RNG(0))
    t = trace(model, np.zeros((1, 3, 32, 32), np.float32), keep_outputs=False)
    rows = summarize(model, (3, 32, 32))
    assert [(r.name, r.output_shape, r.receptive_field) for r in rows] == \
        [(layer.name, layer.output_shape, layer.field and layer.field.rf) for layer in t.layers]
    assert all(layer.output is None for layer in t.layers)


def reference_gradients(model, x, layer_index, target):
    """d(score)/d(input) and d(score)/d(output of layer ``layer_index``), computed by running
    the layers by hand with autograd (no trace involved)."""
    model.eval()
    inp = Tensor(x.copy(), requires_grad=True)
    h, tapped = inp, None
    for i, layer in enumerate(model):
        h = layer(h)
        if i == layer_index:
            tapped = Tensor(h.data.copy(), requires_grad=True)  # a leaf: its own gradient
            h = tapped
    h[0, target].backward()
    with_tap = tapped.grad
    model.zero_grad()
    inp2 = Tensor(x.copy(), requires_grad=True)
    model(inp2)[0, target].backward()
    model.zero_grad()
    return inp2.grad, with_tap


@pytest.mark.parametrize("target", [None, 3])
def test_one_backward_gives_input_and_layer_gradients(target):
    model, x = lenet5(rng=RNG(0)), digit()
    t = trace(model, x, gradients=True)
    chosen = t.backward(target)
    assert chosen == (t.predicted() if target is None else target)
    input_grad, layer_grad = reference_gradients(model, x, 3, chosen)
    np.testing.assert_allclose(t.input_gradient, input_grad, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t["3"].gradient, layer_grad, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in model.parameters())  # weights stay frozen


def test_backward_twice_does_not_accumulate():
    t = trace(lenet5(rng=RNG(0)), digit(), gradients=True)
    t.backward(2)
    first = t.input_gradient.copy()
    t.backward(5)
    t.backward(2)
    np.testing.assert_array_equal(t.input_gradient, first)


def test_backward_needs_a_gradient_trace():
    with pytest.raises(RuntimeError, match="gradients=True"):
        trace(lenet5(rng=RNG(0)), digit()).backward()


def test_nothing_is_left_on_the_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=RNG(0)), nn.Dropout(0.5, rng=RNG(1)), nn.BatchNorm2d(2))
    model.train()
    model[1].eval()  # a mixed state must come back exactly
    before = [(dict(vars(m)), m.training) for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    t = trace(model, np.ones((2, 1, 5, 5), np.float32), gradients=True)
    t.backward(0)
    assert [(dict(vars(m)), m.training) for m in model.modules()] == before
    assert [p.requires_grad for p in model.parameters()] == flags
    np.testing.assert_array_equal(model[2].running_mean, 0)  # eval mode: no statistics update


def test_a_layer_called_twice_gets_two_names():
    relu = nn.ReLU()

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = relu

        def forward(self, x):
            return self.relu(-self.relu(x))

    t = trace(Twice(), np.ones((1, 1, 2, 2), np.float32))
    assert [layer.name for layer in t.layers] == ["relu", "relu#2"]


def test_residual_block_field_is_the_longer_branch():
    t = trace(SmallResNet(rng=RNG(0)), np.zeros((1, 3, 32, 32), np.float32), keep_outputs=False)
    block = t["stages.0"]
    assert block.field.rf == max(t["stages.0.conv2"].field.rf, t["stem.0"].field.rf)


def test_hooked_restores_forward_after_an_error():
    model = lenet5(rng=RNG(0))

    def hook(*call):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), hooked(model, hook):
        model(Tensor(digit()))
    assert all("forward" not in vars(m) for m in model.modules())


def test_unknown_layer_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="no layer named 'conv9'.*0, 1, 2"):
        trace(lenet5(rng=RNG(0)), digit())["conv9"]


def test_gradients_need_the_outputs():
    with pytest.raises(ValueError, match="keep_outputs=False cannot go with it"):
        trace(lenet5(rng=RNG(0)), digit(), gradients=True, keep_outputs=False)
