"""Turn a user's image file into the input a trained model expects, and say what was done.

Reading (:func:`load_image`): the EXIF orientation of phone photos is applied, a transparent
image is laid on white paper, and a 16-bit image is scaled to 0..255.

How the pixels become the model's input comes from the model file (``meta["preprocess"]``,
recorded at training time from the dataset):

* ``"digit"`` (MNIST-like digit models): the digit is found and prepared the way MNIST itself
  was made (LeCun et al.): light ink on black, its bounding box scaled to fit 20 x 20
  keeping its aspect ratio, placed in a 28 x 28 field with its centre of mass at the
  centre. Finding it (:func:`mnist_style`) works on photos and scans: the paper is removed
  with a black top-hat (what is darker than its surroundings at the scale of a pen stroke,
  whatever the light does across the page), specks with a 3x3 median, the ink is cut from
  the paper at Otsu's threshold, and only the digit's connected pieces are kept (the largest,
  and the pieces near it that are as dark), so a shadow, a sheet's edge or noise is not taken
  for the digit.
* ``"resize"`` (everything else): a plain resize to the input size; an image already of
  that size is used as it is.

Model files without the key (older ones) get "digit" for the digits and MNIST datasets and
for 1 x 28 x 28 models of unknown data, else "resize". Every step is reported in the notes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .dataset import normalise
from .imageops import black_top_hat, components, max_filter, median3, otsu_threshold
from .images import eight_bit, is_sixteen_bit, open_image

DIGIT_DATASETS = ("digits", "mnist")
EXIF_ORIENTATION = 0x0112  # the EXIF tag; 1 = upright
WORK_SIDE = 200  # photos are shrunk to at most this many pixels a side to find the digit


def load_image(path: str | os.PathLike | bytes, channels: int, notes: list[str] | None = None) -> np.ndarray:
    """Read an image file (or the bytes of one, e.g. an upload) as a float32 array
    (H, W, channels) in [0, 255]: EXIF orientation applied, transparency laid on white,
    16-bit scaled to 8 bits; steps appended to ``notes``."""
    from PIL import ImageOps

    notes = [] if notes is None else notes
    image = open_image(path)  # a regular file of at most MAX_IMAGE_PIXELS, decoded; else ValueError
    try:
        upright = ImageOps.exif_transpose(image)
        turned = image.getexif().get(EXIF_ORIENTATION, 1) not in (1, None)
    except Exception as error:  # noqa: BLE001 - a damaged EXIF block raises whatever its parser meets
        raise ValueError(f"{'the image' if isinstance(path, bytes) else path}: not a readable image "
                         f"(its EXIF data is damaged: {type(error).__name__}: {error})") from None
    if turned:
        notes.append("turned the image upright as its EXIF orientation tag says (a phone photo)")
    array = _eight_bit(upright, channels, notes)
    return array[:, :, None] if channels == 1 else array


def _eight_bit(image, channels: int, notes: list[str]) -> np.ndarray:
    """A PIL image as float32 (H, W) or (H, W, 3) in [0, 255]."""
    from PIL import Image

    if is_sixteen_bit(image) or image.mode.startswith("I;"):
        gray = eight_bit(image).astype(np.float32)  # scaled, never clipped at 255
        if image.mode != "I" or np.asarray(image).max() > 255:
            notes.append("scaled the 16-bit image to 0..255")
        return gray if channels == 1 else np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA"))
        notes.append("laid the transparent image on white paper")
    return np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32)


def _resize(array, height, width):
    """Bilinear resize of an (H, W) float array with Pillow."""
    from PIL import Image

    image = Image.fromarray(array.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)


def mnist_style(gray: np.ndarray, notes: list[str]) -> np.ndarray:
    """(H, W) grayscale in [0, 255] -> (28, 28) MNIST-like digit; appends what it did to notes.

    Raises ValueError when no digit stands out from the background."""
    ink = find_ink(gray, notes)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = 20.0 / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = _resize(crop, h, w)
    notes.append(f"cropped the digit ({crop.shape[1]}x{crop.shape[0]} px) and scaled it to {w}x{h} inside 20x20")
    field = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - h) // 2, (28 - w) // 2
    field[top:top + h, left:left + w] = np.maximum(digit, 0)
    total = field.sum()
    if total <= 0:
        raise ValueError("the image is blank: no digit found")
    ys, xs = np.indices(field.shape)
    dy = int(round(13.5 - (ys * field).sum() / total))
    dx = int(round(13.5 - (xs * field).sum() / total))
    field = np.roll(field, (dy, dx), axis=(0, 1))
    notes.append(f"centred by mass in 28x28 (moved {dx:+d} px right, {dy:+d} px down)")
    return np.clip(field * (255.0 / max(field.max(), 1e-6)), 0, 255)


def find_ink(gray: np.ndarray, notes: list[str]) -> np.ndarray:
    """The digit's ink strength (H', W') >= 0, everything else 0, at a working size of at
    most WORK_SIDE pixels a side: polarity, paper removal, threshold, connected pieces."""
    gray = np.asarray(gray, np.float64)
    if max(gray.shape) > WORK_SIDE:
        factor = WORK_SIDE / max(gray.shape)
        notes.append(f"shrank it to {WORK_SIDE} px a side to find the digit (sizes below are at that scale)")
        gray = _resize(gray, max(1, round(gray.shape[0] * factor)), max(1, round(gray.shape[1] * factor)))
        gray = np.asarray(gray, np.float64)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() <= gray.mean():  # light ink on a dark background: make it dark on light
        gray = 255.0 - gray
    else:
        notes.append("inverted colours (dark digit on a light background -> light on dark)")
    size = max(9, round(max(gray.shape) / 8)) | 1
    strength = black_top_hat(median3(gray), size)  # specks removed: for finding the digit
    if strength.max() < 16:  # less than 1/16 of the range stands out: nothing is written here
        raise ValueError("the image is blank: no digit found")
    mask = strength > max(otsu_threshold(strength), 0.2 * strength.max())
    labels, sizes = components(mask)
    keep = _digit_pieces(labels, sizes, strength)
    dropped = len(sizes) - len(keep)
    notes.append(f"removed the paper and the light across it (black top-hat, {size} px window); kept the "
                 f"digit's {len(keep)} piece{'s' if len(keep) > 1 else ''}"
                 + (f", dropped {dropped} speck{'s' if dropped > 1 else ''} or edge{'s' if dropped > 1 else ''}"
                    if dropped else ""))
    chosen = np.zeros(len(sizes) + 1, bool)
    chosen[keep] = True
    pieces = chosen[labels]  # the kept pieces' pixels
    near = _grow(pieces, 2)  # the soft edges of the strokes, just outside the threshold
    return np.where(near, np.maximum(black_top_hat(gray, size), 0), 0.0)  # the strokes as drawn, unsmoothed


def _digit_pieces(labels: np.ndarray, sizes: list[int], strength: np.ndarray) -> list[int]:
    """Labels of the pieces that make up the digit: the largest, and the others that are at
    least a fiftieth its size, as dark as the digit (peak at least half the darkest) and close
    to it (its box within half the largest's size of the largest's box): not specks, not the
    faint edge of a sheet or a shadow."""
    largest, count = int(np.argmax(sizes)) + 1, len(sizes) + 1
    where = np.flatnonzero(labels)  # the pieces' pixels (the background's box is never used)
    (ys, xs), label = np.divmod(where, labels.shape[1]), labels.ravel()[where]
    top, left = np.full(count, labels.size), np.full(count, labels.size)
    bottom, right, peak = np.zeros(count, int), np.zeros(count, int), np.zeros(count)
    np.minimum.at(top, label, ys)
    np.minimum.at(left, label, xs)
    np.maximum.at(bottom, label, ys)
    np.maximum.at(right, label, xs)
    np.maximum.at(peak, label, strength.ravel()[where])
    reach = 0.5 * max(bottom[largest] - top[largest], right[largest] - left[largest], 1)
    keep = []
    for k, n in enumerate(sizes, start=1):  # near: its box overlaps the largest's, grown by half its size
        near = (top[k] <= bottom[largest] + reach and bottom[k] >= top[largest] - reach
                and left[k] <= right[largest] + reach and right[k] >= left[largest] - reach)
        if k == largest or (n >= 0.02 * max(sizes) and near and peak[k] >= 0.5 * strength.max()):
            keep.append(k)
    return keep


def _grow(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` grown by ``steps`` pixels (8-connected)."""
    return max_filter(mask.astype(np.float64), 2 * steps + 1) > 0


def preparation(meta: Mapping[str, Any]) -> str:
    """"digit" or "resize": how images are prepared for the model described by ``meta``."""
    recorded = meta.get("preprocess")
    if recorded in ("digit", "resize"):
        return recorded
    mnist_shaped = list(meta["input_shape"]) == [1, 28, 28]  # what the digit preparation makes
    if meta.get("dataset"):
        return "digit" if meta["dataset"] in DIGIT_DATASETS and mnist_shaped else "resize"
    return "digit" if mnist_shaped else "resize"


def preprocess_image(path: str | os.PathLike | bytes, meta: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Image file (or its bytes) -> normalised float32 (1, C, H, W) for the model described by ``meta``.

    ``meta`` needs ``input_shape`` [C, H, W], and ``mean``/``std`` (per channel, for pixel
    values scaled to [0, 1]). Returns ``(x, notes)``, notes being the steps taken.
    """
    channels, height, width = meta["input_shape"]
    notes = ["read the image" if isinstance(path, bytes) else f"read {path}"]
    array = load_image(path, channels, notes)
    notes[0] += f": {array.shape[1]}x{array.shape[0]} px"
    if preparation(meta) == "digit" and channels == 1:
        plane = mnist_style(array[:, :, 0], notes)[None]
        plane = plane / np.float32(255)
    elif array.shape[:2] == (height, width):
        notes.append(f"used as it is ({width}x{height}, the model's input size)")
        plane = array.transpose(2, 0, 1).astype(np.uint8)  # exact pixel values: normalised as in training
    else:
        plane = np.stack([_resize(array[:, :, c], height, width) for c in range(channels)]) / np.float32(255)
        notes.append(f"resized to {width}x{height}")
    mean, std = meta.get("mean") or [0.0] * channels, meta.get("std") or [1.0] * channels
    return normalise(plane[None], mean, std), notes
