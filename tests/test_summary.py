"""convscope.summary: rows match the real model; receptive fields follow the formula."""

import numpy as np
import pytest

from convscope import Tensor, nn, no_grad
from convscope.models import SmallResNet, SmallVGG, lenet5
from convscope.summary import hooked, summarize, summary


def rng():
    return np.random.default_rng(0)


def sequential_shapes(model, input_shape):
    """Independent reference: run each child of a Sequential by hand, record output shapes."""
    x = Tensor(np.zeros((1,) + input_shape, np.float32))
    shapes = []
    with no_grad():
        for layer in model.eval():
            x = layer(x)
            shapes.append(x.shape)
    return shapes


def by_name(rows):
    return {r.name: r for r in rows}


@pytest.mark.parametrize("make, input_shape", [(lambda: lenet5(rng=rng()), (1, 28, 28)),
                                               (lambda: SmallVGG(rng=rng()), (1, 28, 28))],
                         ids=["lenet5", "vgg"])
def test_rows_match_sequential_model(make, input_shape):
    model = make()
    rows = summarize(model, input_shape)
    assert [r.name for r in rows] == [str(i) for i in range(len(model))]
    assert [r.output_shape for r in rows] == sequential_shapes(model, input_shape)
    for row, layer in zip(rows, model):
        assert row.params == sum(p.size for p in layer.parameters())
    assert sum(r.params for r in rows) == sum(p.size for p in model.parameters())


def test_lenet5_numbers():
    rows = by_name(summarize(lenet5(rng=rng()), (1, 28, 28)))
    assert sum(r.params for r in rows.values()) == 61706
    assert rows["0"].params == 6 * 25 + 6
    assert rows["0"].mult_adds == 6 * 28 * 28 * 25
    assert rows["7"].mult_adds == 400 * 120
    assert rows["0"].arithmetic == "(28 + 2*2 - 5)/1 + 1 = 28"
    assert rows["5"].arithmetic == "(10 + 2*0 - 2)/2 + 1 = 5"
    assert rows["0"].dense_weights == (1 * 28 * 28) * (6 * 28 * 28)
    assert rows["3"].dense_weights == (6 * 14 * 14) * (16 * 10 * 10)


def test_lenet5_receptive_field():
    rows = by_name(summarize(lenet5(rng=rng()), (1, 28, 28)))
    assert rows["3"].receptive_field == (14, 14)  # last conv layer
    assert rows["5"].receptive_field == (16, 16)  # last pooling layer
    assert rows["5"].jump == (4, 4)
    assert rows["6"].receptive_field is None      # after Flatten: the whole image


@pytest.mark.parametrize("layers, expected", [
    ([nn.Conv2d(1, 1, 3)], [(3, 1)]),
    ([nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3)], [(3, 2), (7, 2)]),
    ([nn.Conv2d(1, 1, 3, dilation=2), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)], [(5, 1), (6, 2), (10, 2)]),
    ([nn.AvgPool2d(3, stride=1), nn.LPPool2d(2, 2), nn.ReLU()], [(3, 1), (4, 2), (4, 2)]),
    ([nn.Conv2d(1, 1, (3, 1)), nn.MaxPool2d((1, 2))], [((3, 1), (1, 1)), ((3, 2), (1, 2))]),
], ids=["one-conv", "strided", "dilated-pool", "pools", "rectangular"])
def test_receptive_field_is_computed_from_hyperparameters(layers, expected):
    rows = summarize(nn.Sequential(*layers), (1, 20, 20))
    for row, want in zip(rows, expected):
        rf, jump = want
        rf = rf if isinstance(rf, tuple) else (rf, rf)
        jump = jump if isinstance(jump, tuple) else (jump, jump)
        assert (row.receptive_field, row.jump) == (rf, jump)


def test_resnet_rows_and_residual_receptive_field():
    model = SmallResNet(rng=rng())
    rows = by_name(summarize(model, (3, 32, 32)))
    assert sum(r.params for r in rows.values()) == sum(p.size for p in model.parameters())
    assert {"stages.0.conv1", "stages.1.shortcut.0", "stages.1", "fc"} <= set(rows)
    assert rows["stages.1"].kind == "BasicBlock"
    assert rows["stages.1"].output_shape == (1, 32, 16, 16)
    # block 1: main branch 7 -> conv s2: 9 -> conv: 13; shortcut 1x1 s2: 7. The sum takes 13.
    assert rows["stages.1.conv2"].receptive_field == (13, 13)
    assert rows["stages.1.shortcut.0"].receptive_field == (7, 7)
    assert rows["stages.1"].receptive_field == (13, 13)
    assert rows["stages.1"].jump == (2, 2)
    assert rows["stages.2"].receptive_field == (25, 25)
    assert rows["pool"].receptive_field == (25 + 7 * 4, 25 + 7 * 4)


def test_summarize_leaves_no_trace():
    model = SmallResNet(rng=rng()).train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    summarize(model, (2, 3, 32, 32))
    assert all(m.training for m in model.modules())
    assert all("forward" not in vars(m) for m in model.modules())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_hooked_restores_after_an_error():
    model = lenet5(rng=rng())
    with pytest.raises(ValueError), hooked(model, lambda *call: None):
        model(Tensor(np.zeros((1, 3, 28, 28), np.float32)))  # wrong channel count
    assert all("forward" not in vars(m) for m in model.modules())


def test_batch_shape_is_kept():
    rows = summarize(lenet5(rng=rng()), (4, 1, 28, 28))
    assert rows[0].output_shape == (4, 6, 28, 28)
    with pytest.raises(ValueError, match="input_shape"):
        summarize(lenet5(rng=rng()), (28, 28))


def test_summary_text():
    text = summary(lenet5(rng=rng()), (1, 28, 28))
    for piece in ["Conv2d", "6x28x28", "16x5x5", "61,706", "(28 + 2*2 - 5)/1 + 1 = 28",
                  "(14 + 2*0 - 5)/1 + 1 = 10", "3,687,936", "Mult-adds", "RF", "Jump"]:
        assert piece in text
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line[:1].isdigit()}
    assert lines["3"][-2:] == ["14", "2"] and lines["5"][-2:] == ["16", "4"]


def test_summary_of_resnet_mentions_blocks():
    text = summary(SmallResNet(rng=rng()), (3, 32, 32))
    assert "stages.1  " in text and "BasicBlock" in text and "78,042" in text
    assert "floor((32 + 2*1 - 3)/2) + 1 = 16" in text


def test_field_centres():
    rows = by_name(summarize(lenet5(rng=rng()), (1, 28, 28)))
    # conv "3" output (0, 0) sees pool outputs 0..4, centred on input pixels 0.5, 2.5, ..., 8.5
    assert rows["0"].start == (0, 0) and rows["2"].start == (0.5, 0.5) and rows["3"].start == (4.5, 4.5)
    rows = summarize(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1)), (1, 9, 9))
    assert rows[0].start == (0, 0) and rows[0].jump == (2, 2)
