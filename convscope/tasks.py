"""What a model is trained to do: the loss, how a batch is scored, and the figures reported.

:func:`convscope.train.fit` and :func:`convscope.train.evaluate` take a task and never look
at what the targets are: integer class labels (:class:`Classification`, the default),
vectors such as positions (:class:`Regression`), per-pixel class masks (:class:`Segmentation`),
and later boxes.

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

from collections.abc import Callable, Mapping, Sequence
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


class Segmentation(Task):
    """A class for every pixel: targets (N, H, W) integer masks; the model outputs logits
    (N, K, H, W). The loss is the per-pixel cross-entropy (optionally class-``weight``-ed).

    ``batch_sums`` is the batch's pixel confusion matrix (``confusion``, (K, K) counts, rows
    true class, columns predicted), added up over the epoch, so the epoch figures are exact, not means
    of batch means: ``acc`` (pixel accuracy) and ``miou`` (mean IoU over the classes present
    in the prediction or the truth, as :func:`convscope.metrics.mean_iou`).

    Args:
        num_classes (int): K, the classes per pixel (11 for digit-masks).
        weight (sequence of K floats, optional): each class's weight in the loss.

    >>> task = Segmentation(2)
    >>> logits = np.array([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # (1, 2, 1, 2): predicts [[0, 1]]
    >>> task.metrics(task.batch_sums(logits, np.array([[[0, 0]]])), 1)
    {'acc': 0.5, 'miou': 0.25}
    """

    def __init__(self, num_classes: int, weight: Sequence[float] | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"Segmentation: num_classes must be >= 1, got {num_classes}")
        if weight is not None and len(weight) != num_classes:
            raise ValueError(f"Segmentation({num_classes}): expected {num_classes} class weights, got {len(weight)}")
        self.num_classes = num_classes
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float64)

    def loss(self, output: Tensor, target: np.ndarray) -> Tensor:
        return F.cross_entropy(output, np.asarray(target, dtype=np.int64), weight=self.weight)

    def confusion(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(K, K) pixel counts of (true, predicted) classes; rows: true class."""
        k = self.num_classes
        predicted = np.asarray(output).argmax(axis=1).ravel()
        return np.bincount(np.asarray(target, np.int64).ravel() * k + predicted, minlength=k * k).reshape(k, k)

    def batch_sums(self, output: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        return {"confusion": self.confusion(output, target)}  # an array: adds up like a number

    def metrics(self, sums: Mapping[str, Any], count: int) -> dict[str, float]:
        confusion = sums["confusion"]
        ious = iou_from_confusion(confusion)
        present = ~np.isnan(ious)
        return {"acc": float(np.trace(confusion) / max(confusion.sum(), 1)),
                "miou": float(ious[present].mean()) if present.any() else float("nan")}

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        confusion = self.confusion(outputs, targets)
        figures = self.metrics({"confusion": confusion}, len(targets))
        return {"pixel_accuracy": figures["acc"], "mean_iou": figures["miou"],
                "iou_per_class": iou_from_confusion(confusion), "confusion": confusion}


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """(K,) IoU ``hits / (predicted + true - hits)`` per class; nan for a class absent from both."""
    confusion = np.asarray(confusion, np.float64)
    hits = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, hits / union, np.nan)


TASKS = {"classification": Classification, "regression": Regression, "segmentation": Segmentation}


def task_for(targets: np.ndarray, num_classes: int | None = None) -> Task:
    """The task a dataset's targets ask for: integer labels (N,) are classification, integer
    masks (N, H, W) segmentation into ``num_classes``, real values regression."""
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.integer):
        return Regression()
    if targets.ndim == 3:
        if not num_classes:
            raise ValueError(f"masks of shape {targets.shape} need the number of classes to segment into")
        return Segmentation(num_classes)
    return Classification(num_classes=num_classes)


def task_name(task: Task) -> str:
    """The name model files record for ``task`` ("classification", "segmentation", ...)."""
    return next((name for name, cls in TASKS.items() if type(task) is cls), type(task).__name__)


def task_named(name: str | None, num_classes: int | None = None) -> Task:
    """The task a model file names (None, as in older files: classification)."""
    if name in (None, "classification"):
        return Classification(num_classes=num_classes)
    if name == "segmentation":
        return Segmentation(num_classes)
    if name == "regression":
        return Regression()
    raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
