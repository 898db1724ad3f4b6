"""Using a trained classifier: class probabilities for a batch, and the most probable classes.

>>> from convscope.models import lenet5
>>> probs = predict(lenet5(rng=np.random.default_rng(0)), np.zeros((2, 1, 28, 28), np.float32))
>>> probs.shape, bool(np.allclose(probs.sum(axis=1), 1))
((2, 10), True)
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from .nn import Module, eval_mode
from .tensor import Tensor, no_grad


def predict(model: Module, x: np.ndarray | Tensor, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities (N, K): the softmax of the logits, in eval mode, without gradients.

    Args:
        x (ndarray or Tensor): inputs (N, C, H, W), normalised as in training.
        batch_size (int): run at most this many images at a time (default: all at once).
    """
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    step = len(data) if batch_size is None else batch_size
    with eval_mode(model), no_grad():
        parts = [F.softmax(model(Tensor(data[i:i + step])), dim=1).data for i in range(0, len(data), max(step, 1))]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def top_k(probs: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` most probable classes of one probability vector (K,): ``[(class, p)]``,
    ties in class order."""
    order = np.argsort(-np.asarray(probs), kind="stable")[:k]
    return [(int(c), float(probs[c])) for c in order]
