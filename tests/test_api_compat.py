"""PyTorch habits users arrive with: argument orders, module helpers, scheduler behaviour."""

import numpy as np
import pytest

from convscope import Tensor, nn, optim
from convscope import functional as F


def test_sgd_positional_order_is_pytorchs():
    p = nn.Parameter(np.ones(2))
    opt = optim.SGD([p], 0.1, 0.9, 0.0, 0.01, True)  # lr, momentum, dampening, weight_decay, nesterov
    assert (opt.lr, opt.momentum, opt.dampening, opt.weight_decay, opt.nesterov) == (0.1, 0.9, 0.0, 0.01, True)


def test_module_helpers():
    block = nn.Module()
    block.add_module("conv", nn.Conv2d(1, 2, 3, rng=np.random.default_rng(0)))
    block.register_parameter("scale", nn.Parameter(np.ones(1)))
    assert [name for name, _ in block.named_parameters()] == ["scale", "conv.weight", "conv.bias"]
    seen = []
    nn.Sequential(block, nn.ReLU()).apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Conv2d", "Module", "ReLU", "Sequential"]
    with pytest.raises(TypeError, match="not a Module"):
        block.add_module("x", 3)


def test_batch_norm_without_affine_or_running_statistics():
    bn = nn.BatchNorm2d(3, affine=False)
    assert bn.parameters() == [] and "affine=False" in repr(bn)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)) * 5 + 2)
    y = bn(x).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    plain = F.batch_norm(x, None, None, training=True).data
    np.testing.assert_allclose(plain, y, atol=1e-6)
    with pytest.raises(ValueError, match="eval mode needs running_mean"):
        F.batch_norm(x, None, None, training=False)


def test_one_cycle_from_epochs_and_cosine_past_t_max():
    p = nn.Parameter(np.ones(1))
    a = optim.OneCycleLR(optim.SGD([p], lr=0.1, momentum=0.9), max_lr=0.1, epochs=3, steps_per_epoch=4)
    assert a.total_steps == 12
    cosine = optim.CosineAnnealingLR(optim.SGD([p], lr=1.0), T_max=4)
    lrs = []
    for _ in range(8):
        lrs.append(cosine.get_last_lr()[0])
        cosine.step()
    np.testing.assert_allclose(lrs, [(1 + np.cos(np.pi * t / 4)) / 2 for t in range(8)], atol=1e-12)


def test_reductions_take_pytorch_names():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    np.testing.assert_array_equal(x.sum(dim=1, keepdim=True).data, [[3.0], [12.0]])
    np.testing.assert_array_equal(x.mean(dim=0).data, [1.5, 2.5, 3.5])
    x.max(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0, 1], [0, 0, 1]])
