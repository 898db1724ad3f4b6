"""Turn a user's image file into the input a trained model expects.

For digit models (28 x 28 grayscale, trained on MNIST-like data) the image is prepared the
way MNIST itself was made (LeCun et al.): grayscale, light digit on a dark background,
the digit's bounding box scaled to fit 20 x 20 keeping its aspect ratio, then placed in a
28 x 28 field so that its centre of mass is at the centre. Other models get a plain
resize to their input size. Every step taken is reported in the returned notes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .dataset import normalise


def load_image(path: str | os.PathLike, channels: int) -> np.ndarray:
    """Read an image file as a float32 array (H, W, channels) in [0, 255]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            converted = image.convert("L" if channels == 1 else "RGB")
            array = np.asarray(converted, dtype=np.float32)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    return array[:, :, None] if channels == 1 else array


def _resize(array, height, width):
    """Bilinear resize of an (H, W) float array with Pillow."""
    from PIL import Image

    image = Image.fromarray(array.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)


def mnist_style(gray: np.ndarray, notes: list[str]) -> np.ndarray:
    """(H, W) grayscale in [0, 255] -> (28, 28) MNIST-like digit; appends what it did to notes."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > gray.mean():
        gray, border = 255.0 - gray, 255.0 - border
        notes.append("inverted colours (dark digit on a light background -> light on dark)")
    gray = np.clip(gray - np.median(border), 0, 255)
    ink = gray > 0.2 * gray.max() if gray.max() > 0 else np.zeros_like(gray, dtype=bool)
    if not ink.any():
        raise ValueError("the image is blank: no digit found")
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = 20.0 / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = _resize(crop, h, w)
    notes.append(f"cropped the digit ({crop.shape[1]}x{crop.shape[0]} px) and scaled it to {w}x{h} inside 20x20")
    field = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - h) // 2, (28 - w) // 2
    field[top:top + h, left:left + w] = digit
    total = field.sum()
    ys, xs = np.indices(field.shape)
    dy = int(round(13.5 - (ys * field).sum() / total))
    dx = int(round(13.5 - (xs * field).sum() / total))
    field = np.roll(field, (dy, dx), axis=(0, 1))
    notes.append(f"centred by mass in 28x28 (moved {dx:+d} px right, {dy:+d} px down)")
    return np.clip(field * (255.0 / max(field.max(), 1e-6)), 0, 255)


def preprocess_image(path: str | os.PathLike, meta: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Image file -> normalised float32 (1, C, H, W) for the model described by ``meta``.

    ``meta`` needs ``input_shape`` [C, H, W], and ``mean``/``std`` (per channel, for pixel
    values scaled to [0, 1]). Returns ``(x, notes)``, notes being the steps taken.
    """
    channels, height, width = meta["input_shape"]
    array = load_image(path, channels)
    notes = [f"read {path}: {array.shape[1]}x{array.shape[0]} px"]
    if channels == 1 and (height, width) == (28, 28):
        plane = mnist_style(array[:, :, 0], notes)[None]
    else:
        plane = np.stack([_resize(array[:, :, c], height, width) for c in range(channels)])
        notes.append(f"resized to {width}x{height}")
    mean, std = meta.get("mean") or [0.0] * channels, meta.get("std") or [1.0] * channels
    x = normalise(plane[None] / np.float32(255), mean, std)
    return x, notes
