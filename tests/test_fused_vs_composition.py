"""Hand-written backward passes against the plain compositions they replace (STYLE.md, 3)."""

import numpy as np
import pytest

from convscope import Tensor
from convscope.functional import batch_norm, cross_entropy
from convscope.functional.loss import cross_entropy_reference
from convscope.functional.normalization import batch_norm_reference


def _grads(fn, *arrays):
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    projection = np.random.default_rng(7).standard_normal(out.shape)
    (out * Tensor(projection)).sum().backward()
    return out.data, [t.grad for t in tensors]


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 2, 2)], ids=["NC", "NCHW"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_fused_cross_entropy_matches_composition(shape, reduction, smoothing):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal(shape) * 3
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    fused = _grads(lambda z: cross_entropy(z, target, reduction, smoothing), logits)
    plain = _grads(lambda z: cross_entropy_reference(z, target, reduction, smoothing), logits)
    np.testing.assert_allclose(fused[0], plain[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused[1][0], plain[1][0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3, 2)], ids=["NC", "NCHW"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_fused_weighted_cross_entropy_with_ignore_index_matches_composition(shape, reduction, smoothing):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal(shape) * 3
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    target.flat[::3] = 1  # the ignored class: an index inside [0, C) is ignored too
    kwargs = dict(weight=[0.5, 1.0, 2.0, 3.0], ignore_index=1)
    fused = _grads(lambda z: cross_entropy(z, target, reduction, smoothing, **kwargs), logits)
    plain = _grads(lambda z: cross_entropy_reference(z, target, reduction, smoothing, **kwargs), logits)
    np.testing.assert_allclose(fused[0], plain[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused[1][0], plain[1][0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 2)], ids=["NC", "NCHW"])
def test_training_batch_norm_matches_composition(shape):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(3), rng.standard_normal(3)
    stats = (np.zeros(3), np.ones(3))
    fused = _grads(lambda x_, w_, b_: batch_norm(x_, *stats, w_, b_, training=True), x, w, b)
    plain = _grads(lambda x_, w_, b_: batch_norm_reference(x_, w_, b_), x, w, b)
    np.testing.assert_allclose(fused[0], plain[0], rtol=1e-10, atol=1e-12)
    for got, want in zip(fused[1], plain[1]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


def test_float32_cross_entropy_gradient_keeps_its_rounding():
    """Class weights must not change a plain float32 run: the gradient is softmax - onehot,
    over N, worked in float32 exactly as before weights existed (so seeded runs reproduce)."""
    from convscope import Tensor
    from convscope.functional import cross_entropy
    rng = np.random.default_rng(0)
    logits = Tensor(rng.standard_normal((64, 10)).astype(np.float32), requires_grad=True)
    labels = rng.integers(0, 10, 64)
    cross_entropy(logits, labels).backward()
    shifted = logits.data - logits.data.max(axis=1, keepdims=True)
    expected = np.exp(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))
    expected[np.arange(64), labels] -= 1
    expected *= np.float32(1.0) * (1.0 / 64)
    assert logits.grad.dtype == np.float32
    np.testing.assert_array_equal(logits.grad, expected)
