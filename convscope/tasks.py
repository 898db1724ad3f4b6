"""What a model is trained to do: the loss, how a batch is scored, and the figures reported.

:func:`convscope.train.fit` and :func:`convscope.train.evaluate` take a task and never look
at what the targets are: integer class labels (:class:`Classification`, the default),
vectors (:class:`Regression`) such as positions in pixels (:class:`Positions`), per-pixel
class masks (:class:`Segmentation`) and boxes with classes (:class:`Detection`). :func:`task_for` picks the task from a
dataset's targets (what ``convscope train`` does); a model file records it
(:meth:`Task.config`) for evaluate and predict (:func:`task_from_config`).

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
from . import heatmaps, metrics
from .detection import (
    COCO_IOU_THRESHOLDS,
    average_precision,
    match_detections,
    mean_average_precision,
    precision_recall,
)
from .tensor import Tensor


class Task:
    """Base class: subclass and define ``loss``, ``batch_sums`` and ``metrics``."""

    kind = "task"  # what a model file records (see :meth:`config` and :func:`task_from_config`)

    def config(self) -> dict[str, Any]:
        """``{"kind": ..., settings}``: what :func:`task_from_config` rebuilds the task from."""
        return {"kind": self.kind}

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

    kind = "classification"

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

    Args:
        scale (float): the model learns ``target / scale`` (e.g. pixels / canvas size, so the
            numbers it fits are near 1) and its outputs times ``scale`` are the predictions,
            in the targets' units; the figures are in those units. Default 1.

    The loss is the mean squared error of the scaled values; the figure reported is the mean
    absolute error (``mae``) and, for 2-vectors, the mean distance (``distance``).

    >>> task = Regression(scale=10.0)
    >>> task.batch_sums(np.array([[0.5, 0.5]]), np.array([[5.0, 8.0]]))["distance"]
    3.0
    """

    kind = "regression"

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"{type(self).__name__}: scale must be > 0, got {scale!r}")
        self.scale = float(scale)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "scale": self.scale}

    def loss(self, output: Tensor, target: np.ndarray) -> Tensor:
        scaled = np.asarray(target, dtype=output.dtype) / np.asarray(self.scale, dtype=output.dtype)
        return F.mse_loss(output, Tensor(scaled, dtype=output.dtype))

    def predictions(self, output: np.ndarray) -> np.ndarray:
        """The model's outputs in the targets' units."""
        return np.asarray(output, np.float64) * self.scale

    def batch_sums(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        error = self.predictions(output) - np.asarray(target, np.float64)
        sums = {"abs_error": float(np.abs(error).sum()), "values": int(error.size)}
        if error.ndim == 2 and error.shape[1] == 2:
            sums["distance"] = float(np.sqrt((error ** 2).sum(axis=1)).sum())
        return sums

    def metrics(self, sums: Mapping[str, float], count: int) -> dict[str, float]:
        figures = {"mae": sums["abs_error"] / max(sums["values"], 1)}
        if "distance" in sums:
            figures["distance"] = sums["distance"] / max(count, 1)
        return figures


class Positions(Regression):
    """Positions (N, 2) as (x, y) in pixels, e.g. a digit's centre on its canvas.

    The model learns pixels / ``scale`` (the canvas size); the epoch figure is ``mpe``, the
    mean position error in pixels (logged as ``train_mpe`` and ``val_mpe``), and
    :meth:`evaluate` adds the median error and the fraction within ``within`` pixels.

    >>> task = Positions(scale=64)
    >>> outputs = np.array([[0.5, 0.5], [0.25, 0.25]])          # (32, 32) and (16, 16) px
    >>> task.metrics(task.batch_sums(outputs, np.array([[32.0, 35.0], [16.0, 16.5]])), 2)
    {'mpe': 1.75}
    """

    kind = "positions"

    def __init__(self, scale: float = 64.0, within: float = 1.0) -> None:
        super().__init__(scale)
        self.within = float(within)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "scale": self.scale, "within": self.within}

    def metrics(self, sums: Mapping[str, float], count: int) -> dict[str, float]:
        return {"mpe": sums["distance"] / max(count, 1)}

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        predicted = self.predictions(outputs)
        errors = np.linalg.norm(predicted - np.asarray(targets, np.float64), axis=1)
        return {"mean_error": metrics.mean_position_error(predicted, targets),
                "median_error": float(np.median(errors)) if len(errors) else float("nan"),
                "within": self.within, "within_fraction": float(np.mean(errors <= self.within)) if len(errors) else 0.0,
                "errors": errors, "positions": predicted}


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

    kind = "segmentation"

    def __init__(self, num_classes: int, weight: Sequence[float] | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"Segmentation: num_classes must be >= 1, got {num_classes}")
        if weight is not None and len(weight) != num_classes:
            raise ValueError(f"Segmentation({num_classes}): expected {num_classes} class weights, got {len(weight)}")
        self.num_classes = num_classes
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float64)

    def config(self) -> dict[str, Any]:
        weight = {} if self.weight is None else {"weight": self.weight.tolist()}
        return {"kind": self.kind, "num_classes": self.num_classes, **weight}

    def loss(self, output: Tensor, target: np.ndarray) -> Tensor:
        return F.cross_entropy(output, np.asarray(target, dtype=np.int64), weight=self.weight)

    def predictions(self, output: np.ndarray) -> np.ndarray:
        """The class of every pixel, (N, H, W): the largest of its scores (N, K, H, W)."""
        return np.asarray(output).argmax(axis=1)

    def confusion(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(K, K) pixel counts of (true, predicted) classes; rows: true class."""
        k = self.num_classes
        predicted = self.predictions(output).ravel()
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


class Detection(Task):
    """Boxes with classes: targets (N, M, 5) rows ``(x0, y0, x1, y1, class)`` in pixels, padded
    with rows of class -1; the model is a grid detector whose output (N, K + 4, Gh, Gw) holds K
    class heatmaps and the boxes' offsets and log sizes (see :mod:`convscope.heatmaps`).

    The loss is CenterNet's: the penalty-reduced focal loss of the heatmaps plus the L1 error of
    the offsets and log sizes at the centre cells, divided by the number of objects. The figure of
    an epoch is ``map50``, the mean over classes of the average precision at IoU 0.5 (COCO's
    101-point interpolation; :mod:`convscope.detection`), of the boxes :meth:`detections` gives;
    :meth:`evaluate` adds COCO's mAP@0.5:0.95 and the precision-recall curve of every class.

    Args:
        num_classes (int): K.
        image_size: (H, W) of the images, in pixels (the grid's stride is H / Gh).
        score_threshold, max_detections, nms_iou: how boxes are read off the output
            (:func:`convscope.heatmaps.decode`). Defaults 0.05, 20 per image, 0.5.
    """

    kind = "detection"

    def __init__(self, num_classes: int, image_size: Sequence[int], score_threshold: float = 0.05,
                 max_detections: int = 20, nms_iou: float = 0.5) -> None:
        if num_classes < 1:
            raise ValueError(f"Detection: num_classes must be >= 1, got {num_classes}")
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"Detection: expected image_size (H, W), got {image_size!r}")
        self.num_classes, self.image_size = int(num_classes), tuple(int(v) for v in image_size)
        self.score_threshold, self.max_detections, self.nms_iou = float(score_threshold), int(max_detections), \
            float(nms_iou)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "num_classes": self.num_classes, "image_size": list(self.image_size),
                "score_threshold": self.score_threshold, "max_detections": self.max_detections,
                "nms_iou": self.nms_iou}

    def stride(self, output_shape: Sequence[int]) -> float:
        """Image pixels per grid cell, from an output's shape (N, K + 4, Gh, Gw)."""
        grid = tuple(output_shape[2:])
        strides = {self.image_size[0] / grid[0], self.image_size[1] / grid[1]} if len(grid) == 2 else set()
        if len(strides) != 1 or output_shape[1] != self.num_classes + heatmaps.REGRESSION:
            raise ValueError(f"Detection: expected a grid output (N, {self.num_classes + heatmaps.REGRESSION}, "
                             f"Gh, Gw) for {self.image_size} images, one stride both ways, got {tuple(output_shape)}")
        return strides.pop()

    def loss(self, output: Tensor, target: np.ndarray) -> Tensor:
        target, k = np.asarray(target), self.num_classes
        heat, regression, mask = heatmaps.encode(target[..., :4], target[..., 4], k, output.shape[2:],
                                                 self.stride(output.shape))
        focal = F.gaussian_focal_loss(output[:, :k], Tensor(heat, dtype=output.dtype))
        box = ((output[:, k:] - Tensor(regression, dtype=output.dtype)).abs() * Tensor(mask, dtype=output.dtype))
        return (focal + box.sum()) * (1.0 / max(float(mask.sum()), 1.0))

    def detections(self, output: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Per image ``{"boxes": (n, 4), "scores": (n,), "labels": (n,)}``, best first."""
        return heatmaps.decode(output, self.num_classes, self.stride(np.shape(output)), self.image_size,
                               self.score_threshold, self.max_detections, self.nms_iou)

    def batch_sums(self, output: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        """Every detection's score, class and whether it found an object (IoU >= 0.5), in lists
        of arrays (they add up by joining), and the count of true objects per class."""
        found = [match_image(d, t, self.num_classes) for d, t in zip(self.detections(output), np.asarray(target))]
        labels = np.asarray(target)[..., 4].ravel()
        return {"scores": [d["scores"] for d, _ in found], "hits": [hits for _, hits in found],
                "labels": [d["labels"] for d, _ in found],
                "objects": np.bincount(labels[labels >= 0].astype(np.int64), minlength=self.num_classes)}

    def metrics(self, sums: Mapping[str, Any], count: int) -> dict[str, float]:
        aps = average_precision_per_class_from(sums, self.num_classes)
        return {"map50": float(np.nanmean(aps)) if (~np.isnan(aps)).any() else float("nan")}

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        detections = self.detections(outputs)
        truths = [{"boxes": t[t[:, 4] >= 0, :4], "labels": t[t[:, 4] >= 0, 4]} for t in np.asarray(targets)]
        sums = self.batch_sums(outputs, targets)
        return {**self.metrics(sums, len(targets)),
                "map": mean_average_precision(detections, truths, COCO_IOU_THRESHOLDS),
                "ap50_per_class": average_precision_per_class_from(sums, self.num_classes),
                "curves": precision_recall_curves(sums, self.num_classes), "detections": detections}


def match_image(detections: Mapping[str, np.ndarray], target: np.ndarray, num_classes: int,
                iou_threshold: float = 0.5) -> tuple[Mapping[str, np.ndarray], np.ndarray]:
    """One image's detections and which of them found an object of their class (COCO's rule)."""
    hits = np.zeros(len(detections["scores"]), dtype=bool)
    truth = target[target[:, 4] >= 0]
    for c in np.unique(detections["labels"]):
        mine = detections["labels"] == c
        hits[mine] = match_detections(detections["boxes"][mine], detections["scores"][mine],
                                      truth[truth[:, 4] == c, :4], iou_threshold)
    return detections, hits


def _by_class(sums, num_classes):
    scores, hits, labels = (np.concatenate(sums[k] + [np.zeros(0)]) for k in ("scores", "hits", "labels"))
    return [(scores[labels == c], hits[labels == c].astype(bool), int(sums["objects"][c])) for c in range(num_classes)]


def average_precision_per_class_from(sums: Mapping[str, Any], num_classes: int) -> np.ndarray:
    """(K,) AP@0.5 of each class from :meth:`Detection.batch_sums`; nan for a class with no object."""
    return np.array([average_precision(s, h, n) for s, h, n in _by_class(sums, num_classes)])


def precision_recall_curves(sums: Mapping[str, Any], num_classes: int) -> list[dict[str, np.ndarray] | None]:
    """Per class ``{"recall": (n,), "precision": (n,)}`` at IoU 0.5, or None for a class with no object."""
    return [None if n == 0 else dict(zip(("recall", "precision"), precision_recall(s, h, n)))
            for s, h, n in _by_class(sums, num_classes)]


TASKS = {task.kind: task for task in (Classification, Regression, Positions, Segmentation, Detection)}


def task_for(targets: np.ndarray, image_size: tuple[int, int], num_classes: int | None = None) -> Task:
    """The task a dataset's targets ask for: integer labels (N,) are classes, integer masks
    (N, H, W) of ``image_size`` (H, W) segmentation into ``num_classes``, float (N, 2) positions
    in pixels, learnt divided by the image's side.

    >>> task_for(np.zeros((4, 2), np.float32), (64, 64)).config()
    {'kind': 'positions', 'scale': 64.0, 'within': 1.0}
    >>> task_for(np.zeros((4, 64, 64), np.uint8), (64, 64), 11).config()
    {'kind': 'segmentation', 'num_classes': 11}
    """
    targets = np.asarray(targets)
    integers = targets.dtype.kind in "iu"
    if targets.ndim == 1 and integers:
        return Classification(num_classes=num_classes or None)
    if targets.shape[1:] == tuple(image_size) and integers:
        if not num_classes:
            raise ValueError(f"masks of shape {targets.shape[1:]} need the number of classes to segment into")
        return Segmentation(num_classes)
    if targets.ndim == 2 and targets.shape[1] == 2 and targets.dtype.kind == "f":
        return Positions(scale=max(image_size))
    if targets.ndim == 3 and targets.shape[2] == 5 and integers:
        if not num_classes:
            raise ValueError(f"boxes with classes {targets.shape[1:]} need the number of classes to detect")
        return Detection(num_classes, image_size)
    raise ValueError(f"no task for targets of shape {targets.shape[1:]} per image, dtype {targets.dtype}; "
                     "expected integer class labels, integer masks of the image's size, float (x, y) "
                     "positions or integer boxes (M, 5) as (x0, y0, x1, y1, class)")


def task_from_config(config: Mapping[str, Any] | str | None, num_classes: int | None = None) -> Task:
    """The task of a model file's ``task`` entry (:meth:`Task.config`, or a bare kind such as
    "segmentation"); none is classification. ``num_classes`` fills in a class count it lacks."""
    config = {"kind": config} if isinstance(config, str) else dict(config or {"kind": "classification"})
    kind = config.pop("kind", None)
    if kind not in TASKS:
        raise ValueError(f"unknown task {kind!r}; expected one of {', '.join(TASKS)}")
    if kind in ("classification", "segmentation", "detection") and num_classes:
        config.setdefault("num_classes", num_classes)
    return TASKS[kind](**config)
