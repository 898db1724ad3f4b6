"""Your own data: a folder of images (one subfolder per class) or an .npz file.

``load_user_data(path, split, ...)`` gives the same :class:`Dataset` as the named datasets,
so ``convscope train --data PATH`` works on it. The validation split is fixed: within each
class, every 10th image in file order (the 10th, 20th, ...) is held out; "test" is the
same as "val" (keep a separate folder for a real test set and evaluate on it with
``--data``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .dataset import Dataset, channel_stats
from .images import is_sixteen_bit, open_image
from .readers import class_folders, image_files, read_image_folder, read_npz

HOLDOUT_EVERY = 10


def holdout_mask(labels: np.ndarray) -> np.ndarray:
    """(N,) bool: every HOLDOUT_EVERY-th image of each class, counting in file order."""
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        mask[members[HOLDOUT_EVERY - 1::HOLDOUT_EVERY]] = True
    return mask


def load_user_data(path: str | os.PathLike, split: str = "train", size: tuple[int, int] = (28, 28),
                   channels: int = 1) -> Dataset:
    """Load a class-per-subfolder image folder (resized to ``size``, ``channels`` 1 or 3) or
    an .npz with (x, y) / (images, labels) arrays; returns the ``split`` as a Dataset.

    Shape: images (N, C, H, W) uint8, labels (N,) int64; mean/std from the training part.
    """
    return load_user_splits(path, (split,), size, channels)[0]


def folder_channels(root: str | os.PathLike, per_class: int = 3) -> int:
    """3 if a class folder's first images (``per_class`` of each) are in colour, else 1: a
    colour image whose red, green and blue differ somewhere by more than 8 levels."""
    for class_dir in class_folders(root):
        for file in image_files(class_dir)[:per_class]:
            try:
                image = open_image(file)  # a FIFO or a bomb is refused, not waited on or decoded
            except ValueError:
                continue  # the reader itself reports unreadable files
            if image.mode in ("L", "LA", "1", "F") or is_sixteen_bit(image):
                continue
            rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
            if np.abs(rgb - rgb[:, :, :1]).max() > 8:
                return 3
    return 1


def data_warnings(labels: np.ndarray, class_names: Sequence[str], held_out: np.ndarray) -> list[str]:
    """What a user should know about their classes: a single class, classes without a
    validation image."""
    warnings = []
    if len(class_names) < 2:
        warnings.append(f"only one class ({class_names[0]!r}): a classifier needs at least two to tell apart")
    empty = [name for k, name in enumerate(class_names) if not held_out[labels == k].any()]
    if empty:
        warnings.append(f"{len(empty)} class{'es' if len(empty) > 1 else ''} with fewer than {HOLDOUT_EVERY} "
                        f"images get no validation image, so their accuracy is not measured: {', '.join(empty)}")
    return warnings


def load_user_splits(path: str | os.PathLike, splits: Sequence[str] = ("train", "val"),
                     size: tuple[int, int] = (28, 28), channels: int | None = 1,
                     notes: list[str] | None = None) -> list[Dataset]:
    """Several splits of your data, as :func:`load_user_data` gives them, from one read.

    ``channels=None`` for a folder: colour (3) if its images are in colour, else grey (1).
    What was chosen, and warnings about the classes, are appended to ``notes``.
    """
    path, notes = Path(path), [] if notes is None else notes
    if path.is_dir():
        channels = folder_channels(path) if channels is None else channels
        images, labels, class_names = read_image_folder(path, size, "L" if channels == 1 else "RGB")
        notes.append(f"{path}: {len(labels)} images in {len(class_names)} classes, read as "
                     f"{'colour' if channels == 3 else 'grey'} and resized to {size[1]}x{size[0]}")
    elif path.suffix == ".npz" and path.is_file():
        images, labels = read_npz(path)
        class_names = None
        if images.dtype != np.uint8:
            raise ValueError(f"{path}: expected uint8 images (0..255), got {images.dtype}")
    else:
        raise ValueError(f"{path}: expected a folder with one subfolder per class, or an .npz file")
    held_out = holdout_mask(labels)
    for split in splits:
        if split not in ("train", "val", "test"):
            raise ValueError(f"{path}: unknown split {split!r}, expected train, val or test")
    if held_out.all() or not held_out.any():
        raise ValueError(f"{path}: too few images to hold out every {HOLDOUT_EVERY}th per class for validation")
    mean, std = channel_stats(images[~held_out])
    if class_names is None:
        class_names = [str(k) for k in range(int(labels.max()) + 1)]
    notes += [f"warning: {w}" for w in data_warnings(labels, class_names, held_out)]
    parts = {"train": ~held_out, "val": held_out, "test": held_out}
    return [Dataset(images[parts[split]], labels[parts[split]], class_names, str(path), split, mean, std)
            for split in splits]
