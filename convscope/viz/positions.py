"""Pictures of predicted positions: canvases with the true and the predicted centre marked.

Pure array functions (no files): a mark is a small cross drawn into a uint8 RGB picture.

>>> picture = np.zeros((9, 9, 3), np.uint8)
>>> marked = mark(picture, (4.5, 4.5), TRUE_COLOUR, arm=2)
>>> marked[4, 2:7, 1].tolist(), int(picture.max())
([200, 200, 200, 200, 200], 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRUE_COLOUR = (0, 200, 0)        # green: where the centre is
PREDICTED_COLOUR = (230, 30, 30)  # red: where the model puts it


def mark(picture: np.ndarray, point: Sequence[float], colour: Sequence[int], arm: int = 4) -> np.ndarray:
    """A copy of ``picture`` (H, W, 3) uint8 with a cross of half-length ``arm`` pixels at
    ``point`` (x, y) in the picture's pixel coordinates (pixel (r, c) spans [c, c + 1));
    the parts outside the picture are left out."""
    out = picture.copy()
    height, width = out.shape[:2]
    col, row = int(np.floor(point[0])), int(np.floor(point[1]))
    if 0 <= row < height:
        out[row, max(col - arm, 0):max(min(col + arm + 1, width), 0)] = colour
    if 0 <= col < width:
        out[max(row - arm, 0):max(min(row + arm + 1, height), 0), col] = colour
    return out


def centres_picture(picture: np.ndarray, scale: int, true: Sequence[float], predicted: Sequence[float]) -> np.ndarray:
    """A canvas enlarged ``scale`` times with the true (green) and predicted (red) centre,
    both given in the canvas's own pixels."""
    arm = max(2, scale * 2)
    marked = mark(picture, np.asarray(true) * scale, TRUE_COLOUR, arm)
    return mark(marked, np.asarray(predicted) * scale, PREDICTED_COLOUR, arm)


def worst_and_typical(errors: np.ndarray, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` largest errors (largest first) and of ``k`` near the median."""
    order = np.argsort(-np.asarray(errors), kind="stable")
    middle = len(order) // 2
    return order[:k], order[max(middle - k // 2, 0):middle - k // 2 + k]
