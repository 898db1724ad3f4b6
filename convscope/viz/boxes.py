"""Pictures of detections: boxes outlined in their class's colour, labelled with class and score.

Pure array functions (uint8 RGB in and out; no files). Boxes are ``(x0, y0, x1, y1)`` in the
image's pixels, as :mod:`convscope.detection` has them; ``scale`` enlarges the picture first
(nearest neighbour), so that labels are readable on a 64 x 64 scene.

>>> picture = draw_boxes(np.zeros((8, 8), np.uint8), [[1, 1, 5, 4]], [2], scale=1, label=False)
>>> picture.shape, picture[1, 1:5].tolist() == [colour(2).tolist()] * 4, int(picture[2, 2].max())
((8, 8, 3), True, 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..detection import box_iou
from . import grids, render
from .masks import PALETTE

SAME_PLACE = 0.7  # boxes overlapping by more than this IoU share one tag ("2 0.56 / 7 0.44")


def colour(label: int) -> np.ndarray:
    """The colour of class ``label``: the segmentation palette's colour of class ``label + 1``
    (its class 0 is the background), so digit k has one colour in masks and boxes alike."""
    return PALETTE[(int(label) + 1) % len(PALETTE)]


def _rgb(image):
    image = np.asarray(image, np.uint8)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image.copy()


def _outline(out, box, rgb, thickness):
    """Draw the outline of ``box`` (pixel coordinates of ``out``) in place, clipped to the picture."""
    height, width = out.shape[:2]
    x0, y0 = (int(np.clip(np.floor(v), 0, size - 1)) for v, size in zip(box[:2], (width, height)))
    x1, y1 = (int(np.clip(np.ceil(v), 1, size)) for v, size in zip(box[2:], (width, height)))
    t = max(1, min(thickness, x1 - x0, y1 - y0))
    out[y0:y0 + t, x0:x1] = out[y1 - t:y1, x0:x1] = rgb
    out[y0:y1, x0:x0 + t] = out[y0:y1, x1 - t:x1] = rgb


def draw_boxes(image: ArrayLike, boxes: ArrayLike, labels: Sequence[int], scores: Sequence[float] | None = None,
               names: Sequence[str] | None = None, scale: int = 4, label: bool = True) -> np.ndarray:
    """``image`` (H, W) grey or (H, W, 3) uint8, enlarged ``scale`` times, with every box of
    ``boxes`` (n, 4) outlined in its class colour and (``label``) a tag "name score" above it.
    Boxes in nearly the same place (IoU > ``SAME_PLACE``; e.g. one digit read as two classes)
    share the tag of the first (best, when sorted by score): "2 0.56 / 7 0.44"."""
    out = _rgb(grids.enlarge(_rgb(image), scale) if scale > 1 else image)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) * scale
    for box, k in zip(boxes[::-1], list(labels)[::-1]):  # the first box drawn last, on top
        _outline(out, box, colour(k), max(1, scale // 2))
    if not label or not len(boxes):
        return out
    size, overlap, tags = max(9, 3 * scale), box_iou(boxes, boxes), {}
    for i, (box, k) in enumerate(zip(boxes, labels)):
        text = names[k] if names and k < len(names) else str(int(k))
        text += f" {scores[i]:.2f}" if scores is not None else ""
        first = next((j for j in tags if overlap[i, j] > SAME_PLACE), None)
        if first is None:
            tags[i] = [max(box[0], 0), max(box[1] - size - 2, 0), text, colour(k)]
        else:
            tags[first][2] += f" / {text}"
    return render.write_tags(out, [tuple(tag) for tag in tags.values()], size)


def truth_and_found(image: ArrayLike, truth: dict, found: dict, names: Sequence[str] | None = None,
                    scale: int = 3) -> np.ndarray:
    """The true boxes (left) and the detected ones with their scores (right), side by side."""
    left = draw_boxes(image, truth["boxes"], truth["labels"], names=names, scale=scale)
    right = draw_boxes(image, found["boxes"], found["labels"], found["scores"], names, scale=scale)
    gap = np.full((left.shape[0], 2 * scale, 3), 255, np.uint8)
    return np.concatenate([left, gap, right], axis=1)
