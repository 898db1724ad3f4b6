"""The Tensor methods and top-level names a PyTorch user reaches for by habit."""

import numpy as np
import pytest
from helpers import f64, gradcheck

import convscope
from convscope import Tensor

try:
    import torch
except ImportError:
    torch = None

RNG = np.random.default_rng


def test_top_level_names():
    for name in ("load_model", "save_model", "io", "models", "data", "train", "nn", "optim", "functional"):
        assert hasattr(convscope, name) and name in convscope.__all__
    assert convscope.models.lenet5 and convscope.train.fit and convscope.data.DataLoader


@pytest.mark.parametrize("op", [
    lambda t: t.view(4, 6), lambda t: t.view((2, -1)), lambda t: t.permute(2, 0, 1),
    lambda t: t.permute((1, 2, 0)), lambda t: t.unsqueeze(1), lambda t: t.unsqueeze(-1),
    lambda t: t.unsqueeze(0).squeeze(), lambda t: t[:, :1].squeeze(1), lambda t: t.clone() * 2,
    lambda t: t.max(dim=1).values, lambda t: t.max(dim=2, keepdim=True).values,
], ids=["view", "view_tuple", "permute", "permute_tuple", "unsqueeze", "unsqueeze_last", "squeeze_all",
        "squeeze_dim", "clone", "max_dim", "max_dim_keepdim"])
def test_differentiable_habits_gradcheck(op):
    x = RNG(0).permutation(24).reshape(2, 3, 4).astype(np.float64) / 7  # distinct values: max has one winner
    gradcheck(op, x)


def test_shape_habits_by_hand():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size == 6 and x.numel() == 6
    assert x.unsqueeze(0).shape == (1, 2, 3) and x.squeeze(0).shape == (2, 3)  # axis 0 is not of length 1
    assert x.float().dtype == np.float32 and x.double().dtype == np.float64
    c = x.clone()
    c.data[0, 0] = 99
    assert x.data[0, 0] == 0


def test_max_with_dim_gives_values_and_indices():
    x = Tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.data, [5.0, 7.0])
    np.testing.assert_array_equal(indices.data, [1, 0])  # ties: the first, as PyTorch
    assert indices.dtype == np.int64 and not indices.requires_grad
    assert x.max(dim=1).sum().item() == 12.0  # still usable as the values
    np.testing.assert_array_equal((x.max(dim=1) * 2).data, [10.0, 14.0])  # arithmetic on the values, not a tuple
    np.testing.assert_array_equal((-x.max(dim=1)).data, [-5.0, -7.0])
    assert x.max(dim=1).values.shape == (2,) and x.max(dim=1).indices.shape == (2,)
    assert x.max().item() == 7.0 and x.max(axis=0).shape == (3,)


def test_argmax_and_comparisons_give_gradient_free_tensors():
    logits = Tensor([[0.1, 2.0, 0.3], [1.5, 0.2, 0.1]], requires_grad=True)
    labels = np.array([1, 2])
    predicted = logits.argmax(dim=1)
    np.testing.assert_array_equal(predicted.data, [1, 0])
    assert int(logits.argmax()) == 1 and logits.argmax(1, keepdim=True).shape == (2, 1)
    accuracy = (predicted == labels).float().mean().item()
    assert accuracy == 0.5
    assert ((logits > 1).data == [[False, True, False], [True, False, False]]).all()
    assert (logits <= 0.1).float().sum().item() == 2 and (logits != 0.2).float().sum().item() == 5
    assert not (logits >= 0).requires_grad
    with pytest.raises(ValueError, match="ambiguous"):
        bool(logits > 0)
    assert bool(Tensor([3.0]) > 2) and float(Tensor([2.5])) == 2.5
    assert len({logits, predicted}) == 2  # hashable by identity


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
def test_habits_match_torch():
    data = RNG(1).standard_normal((2, 3, 4))
    ours, theirs = f64(data), torch.tensor(data, requires_grad=True)
    for mine, ref in [(ours.permute(2, 0, 1).unsqueeze(1), theirs.permute(2, 0, 1).unsqueeze(1)),
                      (ours.view(6, 4)[:, 1:2].squeeze(1), theirs.view(6, 4)[:, 1:2].squeeze(1))]:
        np.testing.assert_allclose(mine.data, ref.detach().numpy())
    values, indices = ours.max(dim=2)
    tv, ti = theirs.max(dim=2)
    np.testing.assert_allclose(values.data, tv.detach().numpy())
    np.testing.assert_array_equal(indices.data, ti.numpy())
    np.testing.assert_array_equal(ours.argmax(dim=0).data, theirs.argmax(dim=0).numpy())
