"""What a model is trained to do: the loss, how a batch is scored, and the figures reported.

:func:`convscope.train.fit` and :func:`convscope.train.evaluate` take a task and never look
at what the targets are: integer class labels (:class:`Classification`, the default),
vectors such as positions (:class:`Regression`), and later boxes or per-pixel masks.

A task has three parts:

* ``loss(output, target)``: a scalar Tensor to backpropagate;
* ``batch_sums(output, target)``: a dict of sums over one batch (e.g. correct answers), added
  up over an epoch;
* ``metrics(sums, count)``: the epoch's figures from those sums, e.g. ``{"acc": 0.98}``
  (logged as ``train_acc`` and ``val_acc``);

and ``evaluate(outputs, targets)`` for the fuller account of a whole split.

>>> task = Classification()
>>> sums = task.batch_sums(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
>>> sums, task.metrics(sums, 2)
({'correct': 1}, {'acc': 0.5})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import functional as F
from . import metrics
from .tensor import Tensor


class Task:
    """Base class: subclass and define ``loss``, ``batch_sums`` and ``metrics``."""

    def loss(self, output: Tensor, target: np.ndarray) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define loss()")

    def batch_sums(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Sums over one batch of outputs (ndarray) and targets; {} by default."""
        return {}

    def metrics(self, sums: Mapping[str, float], count: int) -> dict[str, float]:
        """The figures of an epoch from the added ``batch_sums`` of ``count`` examples."""
        return {}

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        """Figures of a whole split from all its outputs and targets (in loader order)."""
        return self.metrics(self.batch_sums(outputs, targets), len(targets))


class Classification(Task):
    """Integer class labels (N,); the model outputs logits (N, K).

    Args:
        loss_fn: ``loss_fn(logits, labels) -> scalar Tensor``. Default cross-entropy.
        num_classes (int): size of the confusion matrix (default: the logits' K).
    """

    def __init__(self, loss_fn: Callable[[Tensor, np.ndarray], Tensor] = F.cross_entropy,
                 num_classes: int | None = None) -> None:
        self.loss_fn, self.num_classes = loss_fn, num_classes

    def loss(self, output: Tensor, target: np.ndarray) -> Tensor:
        return self.loss_fn(output, target)

    def batch_sums(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        return {"correct": int(np.count_nonzero(np.asarray(output).argmax(axis=1) == target))}

    def metrics(self, sums: Mapping[str, float], count: int) -> dict[str, float]:
        return {"acc": sums["correct"] / max(count, 1)}

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        probs = F.softmax(Tensor(outputs), dim=1).data
        predictions = np.asarray(outputs).argmax(axis=1)  # the largest logit, as batch_sums counts it
        return {"accuracy": metrics.accuracy(predictions, targets),
                "confusion": metrics.confusion_matrix(targets, predictions, self.num_classes or probs.shape[1]),
                "predictions": predictions, "probabilities": probs}


class Regression(Task):
    """Real-valued targets of the output's shape (N, ...), e.g. a position (N, 2).

    The loss is the mean squared error; the figure reported is the mean absolute error
    (``mae``) and, for 2-vectors, the mean distance (``distance``).
    """

    def loss(self, output: Tensor, target: np.ndarray) -> Tensor:
        return F.mse_loss(output, Tensor(np.asarray(target, dtype=output.dtype), dtype=output.dtype))

    def batch_sums(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        error = np.asarray(output, np.float64) - np.asarray(target, np.float64)
        sums = {"abs_error": float(np.abs(error).sum()), "values": int(error.size)}
        if error.ndim == 2 and error.shape[1] == 2:
            sums["distance"] = float(np.sqrt((error ** 2).sum(axis=1)).sum())
        return sums

    def metrics(self, sums: Mapping[str, float], count: int) -> dict[str, float]:
        figures = {"mae": sums["abs_error"] / max(sums["values"], 1)}
        if "distance" in sums:
            figures["distance"] = sums["distance"] / max(count, 1)
        return figures
