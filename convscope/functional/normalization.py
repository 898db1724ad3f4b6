"""Batch normalisation: standardise each channel over the batch, then scale and shift."""

from __future__ import annotations

import numpy as np

from ..tensor import ShapeError, Tensor


def batch_norm(x: Tensor, running_mean: np.ndarray | Tensor | None, running_var: np.ndarray | Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel of (N, C) or (N, C, H, W) input, as in PyTorch.

    Training: statistics of this batch (mean and biased variance over N, H, W); the running
    estimates (ndarrays, updated in place) move by ``momentum`` towards the batch mean and
    the *unbiased* batch variance. Evaluation: the running estimates are used.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``

    Training mode has a hand-written backward (the standard closed form); the plain
    composition is :func:`batch_norm_reference`, used by the tests.
    """
    running_mean, running_var = (r.data if isinstance(r, Tensor) else r for r in (running_mean, running_var))
    if x.ndim not in (2, 4) or (running_mean is not None and x.shape[1] != len(running_mean)):
        expected = len(running_mean) if running_mean is not None else "C"
        raise ShapeError(f"expected (N, {expected}) or (N, {expected}, H, W), got shape {x.shape}")
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if not training:
        if running_mean is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        scale = 1.0 / np.sqrt(running_var + eps)
        out = (x - running_mean.reshape(shape)) * scale.reshape(shape).astype(x.dtype)
        return _affine(out, weight, bias, shape)
    count = x.size // x.shape[1]
    if count < 2:
        raise ValueError(f"batch_norm in training mode needs more than one value per channel, got shape {x.shape}")
    mean = x.data.mean(axis=axes)
    centred = x.data - mean.reshape(shape)
    var = np.mean(centred * centred, axis=axes)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    x_hat = centred * inv_std.reshape(shape)
    if running_mean is not None:  # None: normalise with batch statistics only
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * count / (count - 1)

    def backward(g):
        g_sum = g.sum(axis=axes).reshape(shape)
        g_xhat = (g * x_hat).sum(axis=axes).reshape(shape)
        return (inv_std.reshape(shape) / count * (count * g - g_sum - x_hat * g_xhat),)

    return _affine(Tensor.from_op(x_hat, (x,), backward, "batch_norm"), weight, bias, shape)


def _affine(x_hat, weight, bias, shape):
    out = x_hat if weight is None else x_hat * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


def batch_norm_reference(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Training-mode batch norm as a plain composition of autograd ops (for tests)."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    centred = x - x.mean(axis=axes, keepdims=True)
    var = (centred * centred).mean(axis=axes, keepdims=True)
    return centred / (var + eps) ** 0.5 * weight.reshape(shape) + bias.reshape(shape)
