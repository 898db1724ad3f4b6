"""Shared test tools: a float64 gradient checker and the shape tables every kind of test uses.

The gradient check projects the output onto a fixed random array ``R`` (``loss = sum(out * R)``),
so every output element contributes with its own weight, then compares the engine's gradient
of that loss with central differences ``(f(x + eps) - f(x - eps)) / (2 * eps)`` for every
element of every input, parameters included.
"""

from dataclasses import dataclass, field

import numpy as np
import pytest

from convscope import Tensor, no_grad


# ----- gradient checking --------------------------------------------------------------------
def f64(array, requires_grad=True):
    """A float64 Tensor (contiguous copy) that collects a gradient."""
    return Tensor(np.array(array, dtype=np.float64), requires_grad=requires_grad, dtype=np.float64)


def numerical_gradient(loss, tensor, eps=1e-6):
    """Central differences of the scalar ``loss()`` with respect to every element of ``tensor``."""
    grad = np.zeros_like(tensor.data)
    with no_grad():
        for index in np.ndindex(tensor.shape):
            original = tensor.data[index]
            tensor.data[index] = original + eps
            plus = loss()
            tensor.data[index] = original - eps
            minus = loss()
            tensor.data[index] = original
            grad[index] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(forward, tensors, seed=0, eps=1e-6, rtol=1e-6, atol=1e-6):
    """Compare autograd with central differences for ``forward()`` w.r.t. each of ``tensors``.

    ``forward`` takes no arguments and reads ``tensors`` (inputs or layer parameters, all
    float64); it must compute the same function every time it is called.
    """
    for t in tensors:
        assert t.dtype == np.float64, f"gradient checks need float64 tensors, got {t.dtype}"
        t.grad = None
    out = forward()
    assert out.dtype == np.float64, f"the op turned float64 inputs into {out.dtype}"
    projection = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(projection, dtype=np.float64)).sum().backward()
    for k, t in enumerate(tensors):
        analytic = np.zeros_like(t.data) if t.grad is None else t.grad
        assert analytic.shape == t.shape and analytic.dtype == np.float64
        numeric = numerical_gradient(lambda: float(np.sum(forward().data * projection)), t, eps)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {k} (shape {t.shape})")


def gradcheck(fn, *arrays, **tolerances):
    """Gradient check of ``fn(*tensors)`` for every one of ``arrays`` (made float64 Tensors)."""
    tensors = [f64(a) for a in arrays]
    check_gradients(lambda: fn(*tensors), tensors, **tolerances)


def to_float64(module):
    """Convert a module's parameters (float32 by default) to float64, in place."""
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def gradcheck_module(module, x, **tolerances):
    """Gradient check of ``module(x)`` w.r.t. the input and every parameter."""
    to_float64(module)
    x = f64(x)
    check_gradients(lambda: module(x), [x] + module.parameters(), **tolerances)


# ----- inputs -----------------------------------------------------------------------------
def distinct(shape, seed=0):
    """Values with no ties, at least 0.05 apart (a shuffled ramp): max pooling has one winner."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) - n / 2) * 0.05


def away_from_zero(shape, seed=0, low=0.2, high=1.5):
    """Random values with random signs and ``|x| >= low``: far from kinks at 0."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ----- shape tables (shared by gradient checks, naive references and torch parity) ---------
@dataclass(frozen=True)
class ConvCase:
    x: tuple
    w: tuple
    kwargs: dict = field(default_factory=dict)
    bias: bool = True


CONV_CASES = {
    "3x3_basic": ConvCase((2, 3, 6, 6), (4, 3, 3, 3)),
    "batch1_no_bias": ConvCase((1, 2, 5, 5), (3, 2, 3, 3), bias=False),
    "stride2_pad1": ConvCase((2, 2, 7, 7), (3, 2, 3, 3), dict(stride=2, padding=1)),
    "nonsquare_pairs": ConvCase((1, 2, 6, 8), (2, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2))),
    "valid_2x3": ConvCase((2, 2, 5, 6), (3, 2, 2, 3), dict(padding="valid")),
    "same_3x3": ConvCase((2, 2, 5, 6), (3, 2, 3, 3), dict(padding="same")),
    "same_even_2x2": ConvCase((1, 2, 5, 5), (2, 2, 2, 2), dict(padding="same")),
    "same_even_4x3": ConvCase((2, 1, 6, 7), (2, 1, 4, 3), dict(padding="same")),
    "same_dilated_2x4": ConvCase((1, 2, 7, 6), (2, 2, 2, 4), dict(padding="same", dilation=(2, 1))),
    "dilation2": ConvCase((1, 2, 7, 7), (2, 2, 3, 3), dict(dilation=2)),
    "dilation_pair_pad1": ConvCase((2, 1, 8, 6), (2, 1, 3, 2), dict(dilation=(2, 3), padding=1)),
    "groups2_pad1": ConvCase((2, 4, 5, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),
    "depthwise": ConvCase((2, 3, 5, 6), (3, 1, 3, 3), dict(groups=3)),
    "depthwise_x2_stride2": ConvCase((1, 2, 6, 5), (4, 1, 3, 3), dict(groups=2, stride=2, padding=1)),
    "1x1": ConvCase((2, 3, 4, 5), (2, 3, 1, 1)),
    "stride3_gt_kernel": ConvCase((1, 1, 8, 7), (2, 1, 2, 2), dict(stride=3)),
}


@dataclass(frozen=True)
class PoolCase:
    x: tuple
    kernel: object
    stride: object = None
    padding: object = 0
    dilation: object = 1
    ceil_mode: bool = False

    @property
    def kwargs(self):
        """Keyword arguments for ops without dilation (avg, lp)."""
        return dict(kernel_size=self.kernel, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode)

    @property
    def kwargs_dilated(self):
        return dict(self.kwargs, dilation=self.dilation)


POOL_CASES = {
    "k2": PoolCase((2, 2, 6, 6), 2),
    "k3_s2_batch1": PoolCase((1, 3, 7, 7), 3, 2),
    "k3_s2_p1": PoolCase((2, 1, 7, 6), 3, 2, 1),
    "nonsquare_k2x3_s2x1": PoolCase((2, 1, 6, 7), (2, 3), (2, 1)),
    "pairs_k3x4_s2x3_p1x2": PoolCase((1, 2, 6, 8), (3, 4), (2, 3), (1, 2)),
    "overlap_s1_p1": PoolCase((1, 2, 5, 5), 3, 1, 1),
    "ceil_partial": PoolCase((2, 1, 5, 5), 2, 2, ceil_mode=True),
    "ceil_partial_nonsquare": PoolCase((1, 2, 5, 8), (2, 3), 2, ceil_mode=True),
    "ceil_pad_overhang": PoolCase((1, 2, 6, 6), 3, 2, 1, ceil_mode=True),
    "ceil_would_start_in_pad": PoolCase((2, 1, 5, 7), 2, 2, 1, ceil_mode=True),
    "dilation2": PoolCase((1, 2, 7, 7), 3, 1, 0, 2),
    "dilation2x1_p1_ceil": PoolCase((1, 1, 8, 7), 2, 2, 1, (2, 1), ceil_mode=True),
}

UNDILATED_POOL_CASES = {k: c for k, c in POOL_CASES.items() if c.dilation == 1}

ADAPTIVE_CASES = {
    "divisible_6x6_to_3x3": ((2, 2, 6, 6), (3, 3)),
    "nondivisible_7x5_to_3x2": ((2, 1, 7, 5), (3, 2)),
    "global_5x6_to_1": ((1, 3, 5, 6), 1),
    "upsample_3x4_to_4x6": ((1, 2, 3, 4), (4, 6)),
    "identity_4x4": ((1, 1, 4, 4), 4),
}


def cases(table):
    """``pytest.mark.parametrize`` arguments with the table's keys as readable ids."""
    return [pytest.param(case, id=name) for name, case in table.items()]


# ----- small definitions the references share -------------------------------------------------
def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def same_padding(kernel, dilation):
    """PyTorch's 'same' padding (top, bottom, left, right): the odd extra goes bottom/right."""
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return totals[0] // 2, totals[0] - totals[0] // 2, totals[1] // 2, totals[1] - totals[1] // 2


def pool_out_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output size; ceil_mode never starts a window in the right padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + stride - 1) // stride + 1 if ceil_mode else span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out
