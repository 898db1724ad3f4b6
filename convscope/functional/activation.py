"""Elementwise nonlinearities and softmax."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``: keeps matches, zeroes the rest. Gradient 1 where x > 0, else 0.

    >>> relu(Tensor([-1.0, 0.0, 2.0])).numpy()
    array([0., 0., 2.], dtype=float32)
    """
    a = x.data
    return Tensor.from_op(np.maximum(a, 0), (x,), lambda g: (g * (a > 0),), "relu")


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` where x > 0, else ``negative_slope * x``."""
    a = x.data
    slope = np.where(a > 0, 1.0, negative_slope).astype(a.dtype)
    return Tensor.from_op(a * slope, (x,), lambda g: (g * slope,), "leaky_relu")


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``, computed without overflow. Gradient ``s * (1 - s)``."""
    a = x.data
    out = np.exp(-np.logaddexp(0, -a)).astype(a.dtype)
    return Tensor.from_op(out, (x,), lambda g: (g * out * (1 - out),), "sigmoid")


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent. Gradient ``1 - tanh(x)^2``."""
    out = np.tanh(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * (1 - out * out),), "tanh")


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``x - log(sum(exp(x)))`` along ``dim``, shifted by the (constant) max for stability."""
    shifted = x - x.data.max(axis=dim, keepdims=True)
    return shifted - shifted.exp().sum(axis=dim, keepdims=True).log()


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Probabilities along ``dim``: ``exp(x) / sum(exp(x))``.

    >>> softmax(Tensor([[0.0, 0.0]])).numpy()
    array([[0.5, 0.5]], dtype=float32)
    """
    return log_softmax(x, dim).exp()
