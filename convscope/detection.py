"""Object detection: boxes, how much two overlap (IoU), non-maximum suppression, average precision.

A box is a row ``(x0, y0, x1, y1)`` in continuous image coordinates, as in torchvision: ``(x0, y0)``
the top-left corner, ``(x1, y1)`` the bottom-right one, so ``x1`` is exclusive in pixel terms. A
box over pixel columns 0..9 and rows 0..4 is ``(0, 0, 10, 5)``; its area is
``(x1 - x0) * (y1 - y0) = 50``, with no "+1" (the old VOC devkit added one).

Detections and ground truths come one dict per image, in torchvision's layout::

    detections[i] = {"boxes": (n, 4), "scores": (n,), "labels": (n,)}
    ground_truths[i] = {"boxes": (m, 4), "labels": (m,)}

>>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [0, 0, 2, 1]])
array([[0.33333333, 0.5       ]])
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # 0.5, 0.55, ..., 0.95: mAP@0.5:0.95
INTERPOLATIONS = ("coco", "voc")


# ----- boxes and their overlap ----------------------------------------------------------------------
def _boxes(boxes, name="boxes"):
    boxes = np.asarray(boxes, dtype=np.float64)
    boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}: expected boxes (N, 4) as (x0, y0, x1, y1), got shape {boxes.shape}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise ValueError(f"{name}: expected x0 <= x1 and y0 <= y1, got box {boxes[bad][0].tolist()}")
    return boxes


def box_area(boxes: ArrayLike) -> np.ndarray:
    """(N,) areas ``(x1 - x0) * (y1 - y0)`` of boxes (N, 4)."""
    boxes = _boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: ArrayLike, boxes2: ArrayLike) -> np.ndarray:
    """(N, M) intersection over union of every box in ``boxes1`` (N, 4) with every box in
    ``boxes2`` (M, 4): ``area(a & b) / (area(a) + area(b) - area(a & b))``, in [0, 1]. Two boxes
    of zero area have IoU 0 (torchvision gives nan)."""
    return _iou(_boxes(boxes1, "boxes1"), _boxes(boxes2, "boxes2"))


def _iou(a, b):
    """:func:`box_iou` of boxes already checked (float64 (N, 4) and (M, 4)): the loops below call it often."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


# ----- non-maximum suppression ---------------------------------------------------------------------
def _scores(scores, count, name="scores"):
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (count,):
        raise ValueError(f"expected {name} ({count},), one per box, got shape {scores.shape}")
    return scores


def nms(boxes: ArrayLike, scores: ArrayLike, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``: visit the boxes by decreasing
    score (equal scores: lower index first) and keep each one that overlaps no kept box by
    ``IoU > iou_threshold``. Returns the kept indices (int64), highest score first.

    >>> nms([[0, 0, 2, 2], [0, 0, 2, 1], [5, 5, 6, 6]], [0.9, 0.8, 0.7], 0.5)  # IoU 0.5 is not > 0.5
    array([0, 1, 2])
    >>> nms([[0, 0, 2, 2], [0, 0, 2, 1], [5, 5, 6, 6]], [0.9, 0.8, 0.7], 0.49)
    array([0, 2])
    """
    boxes = _boxes(boxes)
    scores = _scores(scores, len(boxes))
    suppressed, keep = np.zeros(len(boxes), dtype=bool), []
    for i in np.argsort(-scores, kind="stable"):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= _iou(boxes[i:i + 1], boxes)[0] > iou_threshold
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes: ArrayLike, scores: ArrayLike, idxs: ArrayLike, iou_threshold: float) -> np.ndarray:
    """:func:`nms` within each category ``idxs`` (N,) (e.g. class labels), as
    ``torchvision.ops.batched_nms``: boxes of different categories never suppress each other.
    Returns the kept indices (int64), highest score first (equal scores: lower index first)."""
    boxes = _boxes(boxes)
    scores, idxs = _scores(scores, len(boxes)), np.asarray(idxs)
    if idxs.shape != (len(boxes),):
        raise ValueError(f"expected idxs ({len(boxes)},), one per box, got shape {idxs.shape}")
    keep = [np.flatnonzero(idxs == c)[nms(boxes[idxs == c], scores[idxs == c], iou_threshold)]
            for c in np.unique(idxs)]
    keep = np.concatenate(keep + [np.zeros(0, dtype=np.int64)])
    return keep[np.lexsort((keep, -scores[keep]))]


# ----- matching and average precision --------------------------------------------------------------
def match_detections(boxes: ArrayLike, scores: ArrayLike, true_boxes: ArrayLike,
                     iou_threshold: float = 0.5) -> np.ndarray:
    """Which detections of one class in one image are true positives, by COCO's rule: in order of
    decreasing score, each detection takes the still unmatched true box it overlaps most (equal
    IoU: the first), if that IoU is ``>= iou_threshold``. A detection left without one (it missed,
    or its object was already found: a duplicate) is a false positive. Returns (n,) booleans."""
    boxes = _boxes(boxes)
    return _match(boxes, _scores(scores, len(boxes)), _boxes(true_boxes, "true_boxes"), iou_threshold)


def _match(boxes, scores, true_boxes, iou_threshold):
    """:func:`match_detections` of arrays already checked."""
    ious = _iou(boxes, true_boxes)
    taken, hits = np.zeros(ious.shape[1], dtype=bool), np.zeros(len(boxes), dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        free = np.where(taken, -1.0, ious[i])
        if free.size and free.max() >= iou_threshold:
            taken[free.argmax()] = hits[i] = True
    return hits


def precision_recall(scores: ArrayLike, hits: ArrayLike, num_true: int) -> tuple[np.ndarray, np.ndarray]:
    """The precision-recall curve of one class's detections: (recall (n,), precision (n,)) after
    each of the first k = 1..n detections ranked by decreasing score (equal scores keep their
    order): ``recall = TP_k / num_true``, ``precision = TP_k / k``.

    >>> precision_recall([0.9, 0.3, 0.6], [True, True, False], 4)
    (array([0.25, 0.25, 0.5 ]), array([1.        , 0.5       , 0.66666667]))
    """
    scores, hits = np.asarray(scores, dtype=np.float64), np.asarray(hits, dtype=bool)
    if hits.shape != scores.shape or scores.ndim != 1:
        raise ValueError(f"expected scores and hits (n,) of one shape, got {scores.shape} and {hits.shape}")
    if num_true < 1:
        raise ValueError(f"expected at least one true object for a recall, got num_true={num_true}")
    true_positives = np.cumsum(hits[np.argsort(-scores, kind="stable")])
    return true_positives / num_true, true_positives / np.arange(1, len(scores) + 1)


def average_precision(scores: ArrayLike, hits: ArrayLike, num_true: int, interpolation: str = "coco") -> float:
    """Area under the precision-recall curve of one class's detections, pooled over images.

    Ranked by decreasing score (equal scores keep their order), the first k detections have
    precision ``TP_k / k`` and recall ``TP_k / num_true``; the curve is first replaced by its
    envelope ``p(r) = max precision at recall >= r``. Then:

    * "coco" (default): the mean of ``p`` at the 101 recalls 0, 0.01, ..., 1 (0 past the last
      recall reached), as pycocotools;
    * "voc": the exact area under the step function ``p`` ("all points", PASCAL VOC 2010 on;
      VOC 2007 used 11 points).

    Args:
        scores (n,): confidence of each detection.
        hits (n,) bool: whether each is a true positive (see :func:`match_detections`).
        num_true (int): how many true objects of the class there are; nan is returned for 0.

    >>> average_precision([0.9, 0.8], [True, False], 2, "voc")  # recall 0.5 at precision 1
    0.5
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be 'coco' or 'voc', got {interpolation!r}")
    scores = np.asarray(scores, dtype=np.float64)
    hits = np.asarray(hits, dtype=bool)
    if hits.shape != scores.shape or scores.ndim != 1:
        raise ValueError(f"expected scores and hits (n,) of one shape, got {scores.shape} and {hits.shape}")
    if num_true == 0:
        return float("nan")
    if not len(scores):
        return 0.0
    recall, precision = precision_recall(scores, hits, num_true)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if interpolation == "voc":
        return float(np.sum(np.diff(recall, prepend=0.0) * envelope))
    at = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")  # first rank reaching each recall
    return float(np.mean(np.where(at < len(recall), envelope[np.minimum(at, len(recall) - 1)], 0.0)))


def _image(entry, index, keys):
    """One image's dict with its arrays checked: boxes (n, 4) and n of everything else."""
    missing = [k for k in keys if k not in entry]
    if missing:
        raise ValueError(f"image {index}: expected keys {list(keys)}, missing {missing}")
    out = {k: _boxes(entry[k], f"image {index} boxes") if k == "boxes" else np.asarray(entry[k]) for k in keys}
    n = len(out["boxes"])
    for k in keys:
        if out[k].shape[:1] != (n,):
            raise ValueError(f"image {index}: expected {n} {k}, one per box, got shape {out[k].shape}")
    return out


def average_precision_per_class(detections: list[dict], ground_truths: list[dict], iou_threshold: float = 0.5,
                                interpolation: str = "coco") -> dict[int, float]:
    """{class: AP} at one IoU threshold, for each class with at least one true object (as COCO,
    a class never in the ground truth has no AP; its detections count for nothing). Detections
    are matched image by image (:func:`match_detections`), then ranked together by score
    (equal scores: image order, then order within the image). No per-image cap on detections
    (COCO keeps the best 100)."""
    if len(detections) != len(ground_truths):
        raise ValueError(f"expected one detections dict per ground-truth dict, got {len(detections)} "
                         f"and {len(ground_truths)}")
    dets = [_image(d, i, ("boxes", "scores", "labels")) for i, d in enumerate(detections)]
    truths = [_image(g, i, ("boxes", "labels")) for i, g in enumerate(ground_truths)]
    classes = np.unique(np.concatenate([t["labels"] for t in truths] + [np.zeros(0, dtype=np.int64)]))
    result = {}
    for c in classes.tolist():
        scores, hits, num_true = [np.zeros(0)], [np.zeros(0, dtype=bool)], 0
        for det, truth in zip(dets, truths):
            mine, theirs = det["labels"] == c, truth["labels"] == c
            scores.append(det["scores"][mine])
            hits.append(_match(det["boxes"][mine], scores[-1], truth["boxes"][theirs], iou_threshold))
            num_true += int(theirs.sum())
        result[c] = average_precision(np.concatenate(scores), np.concatenate(hits), num_true, interpolation)
    return result


def mean_average_precision(detections: list[dict], ground_truths: list[dict],
                           iou_thresholds: ArrayLike = (0.5,), interpolation: str = "coco") -> float:
    """The mean over IoU thresholds of the mean over classes of :func:`average_precision_per_class`.

    ``iou_thresholds=(0.5,)`` gives mAP@0.5 (PASCAL VOC's measure); ``COCO_IOU_THRESHOLDS``
    (0.5:0.05:0.95) gives COCO's mAP@0.5:0.95, which also rewards well-placed boxes. nan when the
    ground truth holds no object at all.

    >>> truth = [{"boxes": [[0, 0, 2, 2]], "labels": [1]}]
    >>> found = [{"boxes": [[0, 0, 2, 2], [0, 0, 2, 1]], "scores": [0.9, 0.8], "labels": [1, 1]}]
    >>> mean_average_precision(found, truth)  # the second box is a duplicate: ranked after the hit
    1.0
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be 'coco' or 'voc', got {interpolation!r}")
    per_threshold = []
    for threshold in np.atleast_1d(np.asarray(iou_thresholds, dtype=np.float64)):
        aps = average_precision_per_class(detections, ground_truths, threshold, interpolation)
        per_threshold.append(np.mean(list(aps.values())) if aps else np.nan)
    return float(np.mean(per_threshold))
