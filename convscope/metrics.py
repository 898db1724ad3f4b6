"""How good a model is: accuracy, top-k accuracy, the confusion matrix, precision, recall, F1;
for segmentation, pixel accuracy and intersection over union per class (from label maps, through
the same confusion matrix); for regression of positions, the mean distance to the truth.

Plain functions of NumPy arrays (labels, predictions, probabilities), so training, ``convscope
evaluate``, the report and the web explorer compute every figure the same way.

>>> confusion = confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], 2)
>>> confusion
array([[1, 1],
       [0, 2]])
>>> precision, recall, f1 = precision_recall_f1(confusion)
>>> precision.round(3), recall, f1.round(3)
(array([1.   , 0.667]), array([0.5, 1. ]), array([0.667, 0.8  ]))
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def accuracy(predicted: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of predictions (N,) equal to the labels (N,); 0 for no images."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    return float(np.mean(predicted == labels)) if len(labels) else 0.0


def top_k_accuracy(probs: ArrayLike, labels: ArrayLike, k: int = 5) -> float:
    """Fraction of images whose label is among the ``k`` highest of ``probs`` (N, K)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean((best == labels[:, None]).any(axis=1))) if len(labels) else 0.0


def confusion_matrix(labels: ArrayLike, predicted: ArrayLike, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    for name, values in (("labels", labels), ("predicted", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} must lie in [0, {num_classes - 1}], "
                             f"got values {values.min()}..{values.max()}")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def precision_recall_f1(confusion: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class, from a confusion matrix (rows true, columns predicted): precision (of the
    images predicted as k, the share that are k), recall (of the images of class k, the share
    found) and F1 (their harmonic mean); 0 where a class was never predicted or never seen."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits, predicted, actual = np.diag(confusion), confusion.sum(axis=0), confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(actual > 0, hits / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


# ----- segmentation: label maps -----------------------------------------------------------------
def _kept_pixels(predicted, labels, ignore_index):
    """Two label maps of one shape (any: (H, W), (N, H, W)) flattened, pixels whose true label is
    ``ignore_index`` left out."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape:
        raise ValueError("expected predicted and true label maps of one shape, "
                         f"got {predicted.shape} and {labels.shape}")
    kept = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, dtype=bool)
    return predicted[kept], labels[kept]


def pixel_accuracy(predicted: ArrayLike, labels: ArrayLike, ignore_index: int | None = None) -> float:
    """Share of pixels whose predicted class is the true one (the confusion matrix's trace over
    its total); 0 for no pixels.

    >>> pixel_accuracy([[0, 0], [1, 1]], [[0, 1], [1, 1]])
    0.75
    """
    return accuracy(*_kept_pixels(predicted, labels, ignore_index))


def iou_per_class(predicted: ArrayLike, labels: ArrayLike, num_classes: int,
                  ignore_index: int | None = None) -> np.ndarray:
    """(K,) intersection over union of each class's predicted and true pixels:
    ``hits / (predicted + true - hits)`` from the confusion matrix. nan for a class absent from
    both the prediction and the truth (its IoU is 0/0: nothing to get right or wrong).

    >>> iou_per_class([[0, 0], [1, 1]], [[0, 1], [1, 1]], 3)
    array([0.5       , 0.66666667,        nan])
    """
    predicted, labels = _kept_pixels(predicted, labels, ignore_index)
    confusion = confusion_matrix(labels, predicted, num_classes).astype(np.float64)
    hits = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, hits / union, np.nan)


def mean_iou(predicted: ArrayLike, labels: ArrayLike, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean of :func:`iou_per_class` over the classes present in the prediction or the truth
    (classes absent from both are left out, not counted as 0 or 1); nan if no class is present."""
    ious = iou_per_class(predicted, labels, num_classes, ignore_index)
    return float(np.mean(ious[~np.isnan(ious)])) if not np.all(np.isnan(ious)) else float("nan")


# ----- regression of positions ------------------------------------------------------------------
def mean_position_error(predicted: ArrayLike, true: ArrayLike) -> float:
    """Mean Euclidean distance between predicted and true positions (N, D), e.g. object centres
    (N, 2) as (x, y) in pixels; nan for no positions.

    >>> mean_position_error([[0, 0], [1, 1]], [[3, 4], [1, 1]])
    2.5
    """
    predicted, true = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if predicted.ndim != 2 or predicted.shape != true.shape:
        raise ValueError(f"expected predicted and true positions of one shape (N, D), "
                         f"got {predicted.shape} and {true.shape}")
    return float(np.linalg.norm(predicted - true, axis=1).mean()) if len(true) else float("nan")
