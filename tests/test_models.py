"""The model zoo: shapes, parameter counts, gradients through residual blocks, learning."""

import numpy as np
import pytest
from helpers import gradcheck_module

from convscope import Tensor, models, optim
from convscope import functional as F
from convscope.models import BasicBlock


@pytest.mark.parametrize("name, shape, params", [
    ("lenet5", (1, 28, 28), 61_706),           # LeCun et al. layout with 10 outputs
    ("vgg", (1, 28, 28), 870_826),
    ("resnet", (3, 32, 32), 78_042),
])
def test_zoo_shapes_and_sizes(name, shape, params):
    model = models.build(name, rng=np.random.default_rng(0), in_channels=shape[0])
    out = model.eval()(Tensor(np.zeros((2,) + shape, np.float32)))
    assert out.shape == (2, 10)
    assert sum(p.size for p in model.parameters()) == params


def test_unknown_model_name():
    with pytest.raises(ValueError, match=f"unknown model 'alexnet'; the zoo has {', '.join(sorted(models.ZOO))}"):
        models.build("alexnet")


@pytest.mark.parametrize("stride, c_in, c_out", [(1, 2, 2), (2, 2, 3)], ids=["identity", "projection"])
def test_residual_block_gradients(stride, c_in, c_out):
    block = BasicBlock(c_in, c_out, stride, rng=np.random.default_rng(0))
    gradcheck_module(block, np.random.default_rng(1).standard_normal((3, c_in, 5, 5)))


@pytest.mark.parametrize("name, shape", [("lenet5", (1, 28, 28)), ("resnet", (3, 32, 32))])
def test_models_learn_a_separable_toy_problem(name, shape):
    rng = np.random.default_rng(0)
    labels = np.arange(16) % 2
    x = rng.standard_normal((16,) + shape).astype(np.float32) * 0.1
    x[labels == 1, :, : shape[1] // 2] += 1.0  # class 1: bright top half
    model = models.build(name, rng=rng, in_channels=shape[0], num_classes=2)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(Tensor(x)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
