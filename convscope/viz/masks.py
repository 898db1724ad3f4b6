"""Class masks as pictures: one colour per class, laid over the image they label.

Pure array functions (uint8 RGB out); :mod:`convscope.viz.render` writes them to files.

>>> colour_mask(np.array([[0, 1]]))[0].tolist()
[[0, 0, 0], [230, 25, 75]]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# class 0 (background) black, then a set of distinct colours (after Sasha Trubetskoy's list)
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                    [0, 128, 128], [220, 190, 255], [170, 110, 40], [128, 0, 0], [170, 255, 195]], np.uint8)


def colour_mask(mask: ArrayLike) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8, class k in ``PALETTE[k % len(PALETTE)]``."""
    return PALETTE[np.asarray(mask, np.int64) % len(PALETTE)]


def overlay(image: ArrayLike, mask: ArrayLike, alpha: float = 0.6) -> np.ndarray:
    """The grey or RGB ``image`` (H, W) / (H, W, 3) uint8 with each non-background pixel of
    ``mask`` (H, W) tinted by its class colour (``alpha``: how much colour, 0..1)."""
    image = np.asarray(image, np.float64)
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
    mask = np.asarray(mask)
    if rgb.shape[:2] != mask.shape:
        raise ValueError(f"overlay: expected a mask of the image's size {rgb.shape[:2]}, got {mask.shape}")
    tint = (mask > 0)[..., None] * alpha
    return np.round(rgb * (1 - tint) + colour_mask(mask) * tint).astype(np.uint8)


def class_areas(mask: ArrayLike, class_names: list[str] | None = None) -> list[tuple[str, int]]:
    """``[(class name, pixels)]`` of every non-background class in ``mask``, largest first."""
    counts = np.bincount(np.asarray(mask, np.int64).ravel())
    found = [(k, int(n)) for k, n in enumerate(counts) if k > 0 and n > 0]
    found.sort(key=lambda kn: -kn[1])
    return [(class_names[k] if class_names and k < len(class_names) else str(k), n) for k, n in found]
