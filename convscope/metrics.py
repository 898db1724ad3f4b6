"""How good a model is: accuracy, top-k accuracy, the confusion matrix, precision, recall, F1.

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
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
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
