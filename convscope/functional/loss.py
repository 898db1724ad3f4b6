"""Loss functions: cross-entropy (fused for speed and stability), NLL and mean squared error."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..tensor import ShapeError, Tensor
from .activation import log_softmax


def _reduce(losses, reduction):
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_targets(logits, target):
    """Move classes to the last axis: (N, C, *) -> (M, C); targets (N, *) -> (M,)."""
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if logits.ndim < 2 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ShapeError("expected logits (N, C, ...) and class indices (N, ...), "
                         f"got {logits.shape} and {target.shape}")
    if not np.issubdtype(target.dtype, np.integer):
        target = target.astype(np.int64) if np.all(target == np.round(target)) else None
        if target is None:
            raise ValueError("targets must be integer class indices")
    classes = logits.shape[1]
    if target.size and (target.min() < 0 or target.max() >= classes):
        raise ValueError(f"targets must lie in [0, {classes - 1}], got values {target.min()}..{target.max()}")
    return target.reshape(-1), classes


def cross_entropy(logits: Tensor, target: Tensor | ArrayLike, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy between raw scores and class indices, as in PyTorch.

    With label smoothing ``e`` the target distribution is ``(1-e)*onehot + e/C``.
    Fused: the gradient ``softmax(logits) - target_distribution`` is written directly
    (:func:`cross_entropy_reference` is the plain composition the tests compare with).

    Args:
        logits (Tensor): (N, C) or (N, C, d1, ...).
        target (array of int): (N,) or (N, d1, ...), values in [0, C).
        reduction: "mean" (default), "sum" or "none".
        label_smoothing (float): in [0, 1). Default 0.
    """
    labels, classes = _class_targets(logits, target)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    moved = np.moveaxis(logits.data, 1, -1).reshape(-1, classes)
    shifted = moved - moved.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    per_item = -(1 - label_smoothing) * log_probs[rows, labels] - label_smoothing * log_probs.mean(axis=1)

    def backward(g):
        grad = np.exp(log_probs)
        grad -= label_smoothing / classes
        grad[rows, labels] -= 1 - label_smoothing
        if reduction == "none":
            grad *= np.reshape(g, (-1, 1))
        else:
            grad *= g * (1.0 / len(labels) if reduction == "mean" else 1.0)
        grad = grad.reshape(logits.shape[:1] + logits.shape[2:] + (classes,))
        return (np.moveaxis(grad, -1, 1),)

    if reduction == "none":
        out = per_item.reshape(logits.shape[:1] + logits.shape[2:])
    else:
        out = per_item.sum() / (len(labels) if reduction == "mean" else 1)
    return Tensor.from_op(np.asarray(out, dtype=logits.dtype), (logits,), backward, "cross_entropy")


def nll_loss(log_probs: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, given log-probabilities (N, C)."""
    labels, _ = _class_targets(log_probs, target)
    moved = log_probs.transpose((0,) + tuple(range(2, log_probs.ndim)) + (1,)) if log_probs.ndim > 2 else log_probs
    picked = moved.reshape(-1, log_probs.shape[1])[np.arange(len(labels)), labels]
    return _reduce(-picked.reshape(log_probs.shape[:1] + log_probs.shape[2:]), reduction)


def cross_entropy_reference(logits: Tensor, target: Tensor | ArrayLike, reduction: str = "mean",
                            label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy as a plain composition of autograd ops (the tests' reference)."""
    log_probs = log_softmax(logits, dim=1)
    nll = nll_loss(log_probs, target, reduction="none").reshape(-1)
    smooth = -log_probs.mean(axis=1).reshape(-1)
    losses = nll * (1 - label_smoothing) + smooth * label_smoothing
    return _reduce(losses.reshape(logits.shape[:1] + logits.shape[2:]), reduction)


def mse_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2``, averaged (or summed) over all elements."""
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    if input.shape != target.shape:
        raise ShapeError(f"mse_loss: input shape {input.shape} differs from target shape {target.shape}")
    return _reduce((input - target) ** 2, reduction)
