"""Gradient clipping: rescale the gradients when their overall size exceeds a limit."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor


def clip_grad_norm_(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Scale every gradient by ``max_norm / total_norm`` when ``total_norm > max_norm``, where
    ``total_norm`` is the L2 norm of all gradients together (as PyTorch's function of the
    same name). Returns ``total_norm`` before clipping.

    >>> from convscope.nn import Parameter
    >>> p = Parameter(np.zeros(2)); p.grad = np.array([3.0, 4.0], np.float32)
    >>> clip_grad_norm_([p], 1.0), p.grad.round(4)
    (5.0, array([0.6, 0.8], dtype=float32))
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= g.dtype.type(scale)
    return total
