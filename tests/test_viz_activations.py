"""capture_activations, pooling comparison and the shift-invariance study."""

import numpy as np
import pytest

from convscope import Tensor, nn, no_grad
from convscope.models import SmallResNet, lenet5
from convscope.viz.activations import capture_activations, compare_pooling, first_pool_input
from convscope.viz.invariance import correlation, invariance_study, invariance_table, shift


def test_capture_returns_every_layer_of_a_sequential():
    model = lenet5(rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    acts = capture_activations(model, x)
    assert isinstance(acts, dict) and list(acts) == [str(i) for i in range(12)]
    with no_grad():
        y = Tensor(x)
        for i, layer in enumerate(model):
            y = layer(y)
            np.testing.assert_array_equal(acts[str(i)], y.data)


def test_capture_reaches_inside_residual_blocks():
    model = SmallResNet(width=4, rng=np.random.default_rng(0)).train()
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    acts = capture_activations(model, x)
    for name, shape in [("stem.0", (1, 4, 32, 32)), ("stages.0.conv1", (1, 4, 32, 32)),
                        ("stages.1.shortcut.0", (1, 8, 16, 16)), ("stages.1", (1, 8, 16, 16)),
                        ("stages.2.bn2", (1, 16, 8, 8)), ("fc", (1, 10))]:
        assert acts[name].shape == shape
    assert (acts["stages.1"] >= 0).all()  # the block output is after its final ReLU
    assert all(m.training and "forward" not in vars(m) for m in model.modules())
    assert not any(k.startswith("stages.0.shortcut") for k in acts)  # identity: nothing to see


def test_a_layer_called_twice_is_captured_twice():
    relu = nn.ReLU()
    model = nn.Sequential(relu, nn.Conv2d(1, 1, 1, rng=np.random.default_rng(0)), relu)
    assert list(capture_activations(model, np.ones((1, 1, 2, 2), np.float32))) == ["0", "1", "0#2"]


def test_compare_pooling_by_hand():
    fmap = np.array([[1.0, 2.0, 0.0, 0.0],
                     [3.0, 4.0, 0.0, 5.0],
                     [0.0, 0.0, 1.0, 1.0],
                     [0.0, 0.0, 1.0, 1.0]])
    pooled = compare_pooling(fmap, 2)
    np.testing.assert_allclose(pooled["max"], [[4, 5], [0, 1]])
    np.testing.assert_allclose(pooled["average"], [[2.5, 1.25], [0, 1]])
    np.testing.assert_allclose(pooled["L2"], [[np.sqrt(30), 5], [0, 2]])


def test_first_pool_input():
    fmaps, layer = first_pool_input(lenet5(rng=np.random.default_rng(0)), np.zeros((1, 1, 28, 28), np.float32))
    assert layer == "2" and fmaps.shape == (6, 28, 28)


def test_shift_by_hand():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(shift(x, 1, -1, fill=-1)[0, 0], [[-1, -1, -1], [1, 2, -1], [4, 5, -1]])
    assert correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)


def test_feature_maps_move_with_the_image_and_pooling_changes_less():
    model = lenet5(rng=np.random.default_rng(0))
    x = np.full((1, 1, 28, 28), -0.5, np.float32)
    x[0, 0, 7:21, 12:16] = 2.0  # a "1"
    results, detail = invariance_study(model, x, pixels=2, fill=-0.5)
    assert (results[0].dy, results[0].dx, results[0].map_change) == (0, 0, 0.0)
    assert detail["map_layer"] == "0" and detail["pooled_layer"] == "5"
    assert detail["images"].shape == (9, 1, 28, 28) and detail["maps"].shape == (9, 6, 28, 28)
    for r in results[1:]:
        assert r.aligned_corr > 0.999          # stride-1 conv: the map shifts exactly with the image
        assert r.unaligned_corr < r.aligned_corr
        assert r.pooled_change < r.map_change  # pooled features move less than the raw maps
    table = invariance_table(results, [str(k) for k in range(10)], "0", "5")
    assert len(table.splitlines()) == 3 + 9 and "(+2,-2)" in table
