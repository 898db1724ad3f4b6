"""Objects as points: a box becomes a peak on a coarse grid of class heatmaps, and back again.

A grid detector in the style of CenterNet (Zhou, Wang & Krähenbühl 2019, "Objects as Points")
looks at the image through a grid ``stride`` times coarser than its pixels and gives, for
every cell, ``K + 4`` numbers (the output (N, K + 4, Gh, Gw), ``Gh = H / stride``)::

    channels 0..K-1   heatmap logits: is the centre of an object of class k in this cell?
    channel  K, K+1   (dx, dy): where in the cell the centre is, in cells (0..1 when trained)
    channel  K+2, K+3 (log w, log h): the box's width and height in cells, as logarithms

Training targets (:func:`encode`): for a box (x0, y0, x1, y1) of class k, its centre
``c = ((x0 + x1) / 2, (y0 + y1) / 2)`` falls in cell ``floor(c / stride)``. Heatmap k is 1 in
that cell and falls off around it as an elliptical Gaussian
``exp(-(dx^2 / (2 sx^2) + dy^2 / (2 sy^2)))`` (dx, dy in cells) with ``sx = 0.54 * w / 6`` and
``sy = 0.54 * h / 6`` (w, h in cells; TTFNet's widths, Liu et al. 2020), where boxes of one class
overlap the larger value wins. The offsets ``c / stride - cell`` and the log sizes are targets in
the centre cell only (``mask``); where two centres share a cell, the later box keeps it.

Decoding (:func:`decode`): ``sigmoid`` of the heatmap; a peak is a cell no lower than its 8
neighbours in the same class (a 3x3 max pool, as CenterNet); the ``max_detections`` highest peaks
of at least ``score_threshold`` become boxes ``centre +- size / 2`` (clipped to the image), and
non-maximum suppression within each class (IoU > ``nms_iou``) removes what is left of duplicates.

>>> boxes, classes = np.array([[[4, 8, 12, 24]]]), np.array([[3]])
>>> heat, regression, mask = encode(boxes, classes, num_classes=5, grid=(8, 8), stride=4)
>>> heat.shape, np.argwhere(heat[0] == 1).tolist(), regression[0, :, 4, 2].astype(float).round(3).tolist()
((1, 5, 8, 8), [[3, 4, 2]], [0.0, 0.0, 0.693, 1.386])
"""

from __future__ import annotations

import numpy as np

from .detection import batched_nms

SPREAD = 0.54  # the Gaussian's sigma is SPREAD * (box size) / 6, as TTFNet
REGRESSION = 4  # dx, dy, log w, log h per cell


def encode(boxes: np.ndarray, classes: np.ndarray, num_classes: int, grid: tuple[int, int],
           stride: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets for a batch of boxes (N, M, 4) (x0, y0, x1, y1) in pixels with classes
    (N, M) (rows of class < 0 are padding): heatmaps (N, K, Gh, Gw), regression targets
    (N, 4, Gh, Gw) (dx, dy, log w, log h in cells) and the mask (N, 1, Gh, Gw) of centre cells."""
    boxes, classes = np.asarray(boxes, np.float64), np.asarray(classes)
    n, (gh, gw) = len(boxes), grid
    heat = np.zeros((n, num_classes, gh, gw), np.float32)
    regression = np.zeros((n, REGRESSION, gh, gw), np.float32)
    mask = np.zeros((n, 1, gh, gw), np.float32)
    ys, xs = np.arange(gh)[:, None], np.arange(gw)[None, :]
    for i, j in zip(*np.nonzero(classes >= 0)):
        x0, y0, x1, y1 = boxes[i, j] / stride
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 1 / stride), max(y1 - y0, 1 / stride)
        col, row = min(int(cx), gw - 1), min(int(cy), gh - 1)
        sx, sy = SPREAD * w / 6, SPREAD * h / 6
        bump = np.exp(-((xs - col) ** 2 / (2 * sx ** 2) + (ys - row) ** 2 / (2 * sy ** 2)))
        np.maximum(heat[i, classes[i, j]], bump, out=heat[i, classes[i, j]])
        regression[i, :, row, col] = (cx - col, cy - row, np.log(w), np.log(h))
        mask[i, 0, row, col] = 1
    return heat, regression, mask


def peaks(heat: np.ndarray) -> np.ndarray:
    """Boolean (..., H, W): where ``heat`` is no lower than any of its 8 neighbours (3x3 max pool)."""
    padded = np.pad(heat, [(0, 0)] * (heat.ndim - 2) + [(1, 1), (1, 1)], constant_values=-np.inf)
    h, w = heat.shape[-2:]
    highest = np.max([padded[..., dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    return heat >= highest


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` without overflow warnings for large negative ``z``."""
    return np.exp(-np.logaddexp(0, -np.asarray(z, np.float64)))


def decode(output: np.ndarray, num_classes: int, stride: float, image_size: tuple[int, int],
           score_threshold: float = 0.05, max_detections: int = 20, nms_iou: float = 0.5) -> list[dict]:
    """Detections, one dict per image ``{"boxes": (n, 4), "scores": (n,), "labels": (n,)}``
    (highest score first), from a grid detector's output (N, K + 4, Gh, Gw)."""
    output = np.asarray(output)
    if output.ndim != 4 or output.shape[1] != num_classes + REGRESSION:
        raise ValueError(f"expected a grid detector's output (N, {num_classes + REGRESSION}, Gh, Gw) for "
                         f"{num_classes} classes, got shape {output.shape}")
    heat = sigmoid(output[:, :num_classes])
    scores_all = np.where(peaks(heat), heat, 0.0).reshape(len(output), -1)
    return [_image_boxes(output[i, num_classes:], scores_all[i], heat.shape[1:], stride, image_size,
                         score_threshold, max_detections, nms_iou) for i in range(len(output))]


def _image_boxes(regression, scores, shape, stride, image_size, score_threshold, max_detections, nms_iou):
    """One image's detections from its peak scores (K * Gh * Gw,) and regression maps (4, Gh, Gw)."""
    top = np.argsort(-scores, kind="stable")[:max_detections]
    top = top[scores[top] >= score_threshold]
    labels, rows, cols = np.unravel_index(top, shape)
    dx, dy, log_w, log_h = np.clip(regression[:, rows, cols].astype(np.float64), -20, 20)
    cx, cy = (cols + dx) * stride, (rows + dy) * stride
    half_w, half_h = np.exp(log_w) * stride / 2, np.exp(log_h) * stride / 2
    height, width = image_size
    boxes = np.stack([np.clip(cx - half_w, 0, width), np.clip(cy - half_h, 0, height),
                      np.clip(cx + half_w, 0, width), np.clip(cy + half_h, 0, height)], axis=1).reshape(-1, 4)
    keep = batched_nms(boxes, scores[top], labels, nms_iou)
    return {"boxes": boxes[keep], "scores": scores[top][keep], "labels": labels[keep].astype(np.int64)}
