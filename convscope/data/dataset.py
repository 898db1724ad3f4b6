"""The Dataset container: images, labels, class names and the statistics to normalise them.

Every dataset in convscope, whatever file it came from, ends up as the same thing:

    images  uint8  (N, C, H, W)   pixel values 0..255, channels first (NCHW)
    labels  int64  (N,)           class index of each image, 0..num_classes-1

plus `mean` and `std`, one float per channel, of the pixel values scaled to [0, 1].
The loader turns a batch into float32 and standardises it, x = (pixels/255 - mean) / std,
so every layer sees inputs of mean about 0 and spread about 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .bounded import check_labels


@dataclass(eq=False, repr=False)
class Dataset:
    """A split of an image dataset, held in memory: images and what to learn from each.

    Args:
        images: uint8 array (N, C, H, W), or (N, H, W) for grayscale (a channel axis is added).
        labels: the targets. Class labels: an integer array (N,), stored as int64. Any other
            target, one per image: a numeric (N, ...) array (a position (N, 2), boxes, a mask
            (N, H, W)), stored as given; also readable as ``targets``.
        class_names: one name per class; default "0", "1", ... up to the largest label.
        name: the dataset's name, e.g. "mnist". Default "arrays".
        split: which part of it, "train", "val" or "test". Default "".
        mean, std: per-channel statistics of images/255. Default: computed from these images.
            `load_dataset` passes the training split's values to all three splits, so
            validation and test data are normalised exactly like the training data.

    Shape:
        images (N, C, H, W) uint8, labels (N,) int64, mean and std tuples of C floats.

    Example:
        >>> import numpy as np
        >>> data = Dataset(np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 1, 0]))
        >>> len(data), data.images.shape, data.class_names
        (4, (4, 1, 28, 28), ['0', '1'])
        >>> Dataset(np.zeros((4, 28, 28), np.uint8), np.zeros((4, 2), np.float32)).targets.shape
        (4, 2)
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str] | None = None
    name: str = "arrays"
    split: str = ""
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        self.images, self.labels = validate_arrays(self.images, self.labels, self.name, any_targets=True)
        if self.images.dtype != np.uint8:
            raise ValueError(f"{self.name}: expected uint8 images (pixel values 0..255), "
                             f"got dtype {self.images.dtype}")
        if self.class_names is not None and self.labels.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: expected integer class labels to go with class_names, "
                             f"got shape {self.labels.shape} dtype {self.labels.dtype}")
        if is_class_labels(self.labels):
            if self.class_names is None:
                self.class_names = [str(k) for k in range(int(self.labels.max()) + 1)]
            if self.labels.max() >= len(self.class_names):
                raise ValueError(f"{self.name}: label {int(self.labels.max())} has no class name; "
                                 f"got {len(self.class_names)} class names")
        if self.class_names is not None:
            self.class_names = [str(name) for name in self.class_names]
        if self.mean is None or self.std is None:
            self.mean, self.std = channel_stats(self.images)
        self.mean, self.std = tuple(map(float, self.mean)), tuple(map(float, self.std))
        channels = self.images.shape[1]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"{self.name}: expected mean and std with {channels} values (one per "
                             f"channel), got mean={self.mean}, std={self.std}")

    @property
    def num_classes(self) -> int:
        """How many classes (0 for targets that are not class labels and name no classes)."""
        return len(self.class_names) if self.class_names is not None else 0

    @property
    def targets(self) -> np.ndarray:
        """What the model learns to output for each image: ``labels`` (N,) for classification,
        or any (N, ...) array (positions, boxes, masks)."""
        return self.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int | slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (image (C, H, W) uint8, label) for an int, or arrays for a slice / index array."""
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        mean = ", ".join(f"{m:.4f}" for m in self.mean)
        std = ", ".join(f"{s:.4f}" for s in self.std)
        split = f", split={self.split!r}" if self.split else ""
        return (f"Dataset(name={self.name!r}{split}, images={self.images.shape} uint8, "
                f"classes={self.num_classes}, mean=({mean}), std=({std}))")


def validate_arrays(images: ArrayLike, labels: ArrayLike, source: str,
                    any_targets: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Check an (images, labels) pair and return it as (N, C, H, W) images and int64 labels.

    `source` names where the arrays came from (a file or dataset) in error messages.
    Accepts images (N, H, W) (a channel axis is added) or (N, C, H, W). Rejects arrays
    that look channels-last, (N, H, W, C) with C of 1 or 3 and H > 4, instead of guessing.
    With ``any_targets`` the labels may be any numeric (N, ...) array (vectors, boxes,
    masks); integer class labels (N,) are still checked as such.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"{source}: expected images of shape (N, C, H, W) or (N, H, W), "
                         f"got shape {images.shape}")
    if images.shape[1] > 4 and images.shape[3] in (1, 3):  # "28 channels, 1 pixel wide": NHWC
        raise ValueError(f"{source}: images of shape {images.shape} look channels-last; expected "
                         f"(N, C, H, W): use images.transpose(0, 3, 1, 2)")
    if len(images) == 0:
        raise ValueError(f"{source}: expected at least one image, got shape {images.shape}")
    if not any_targets and (labels.ndim != 1 or labels.dtype.kind not in "iu"):
        raise ValueError(f"{source}: expected labels as a 1-D integer array, "
                         f"got shape {labels.shape} dtype {labels.dtype}")
    if labels.ndim == 0 or len(labels) != len(images):
        raise ValueError(f"{source}: expected one label per image ({len(images)}), "
                         f"got {len(labels) if labels.ndim else 'a single value, not'} labels")
    if not is_class_labels(labels):
        if labels.dtype.kind not in "iuf":
            raise ValueError(f"{source}: expected numeric targets, got dtype {labels.dtype}")
        return images, labels
    if labels.min() < 0:
        raise ValueError(f"{source}: expected labels >= 0, got {int(labels.min())}")
    return images, check_labels(labels, source)  # at most MAX_CLASSES classes; uint64 never wraps


def is_class_labels(labels: ArrayLike) -> bool:
    """True for class labels, one integer per image (N,); False for other targets (vectors,
    boxes, masks: (N, ...) arrays, or float values)."""
    labels = np.asarray(labels)
    return labels.ndim == 1 and labels.dtype.kind in "iu"


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images scaled to [0, 1].

    A histogram of the 256 possible pixel values gives the exact sums without making a
    float copy of the whole dataset.

    Shape:
        images (N, C, H, W) uint8 -> (mean, std), each a tuple of C floats.

    Example:
        >>> import numpy as np
        >>> channel_stats(np.array([0, 255], np.uint8).reshape(2, 1, 1, 1))
        ((0.5,), (0.5,))
    """
    values = np.arange(256) / 255.0
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = np.bincount(images[:, channel].ravel(), minlength=256)
        mean = counts @ values / counts.sum()
        variance = counts @ (values - mean) ** 2 / counts.sum()
        means.append(float(mean))
        stds.append(float(np.sqrt(variance)))
    return tuple(means), tuple(stds)


def normalise(images: np.ndarray, mean: ArrayLike, std: ArrayLike) -> np.ndarray:
    """Images as the model sees them: float32 ``(x - mean) / std`` per channel.

    uint8 images (0..255) are first scaled to [0, 1] (times float32(1/255), as the
    DataLoader does); float images are taken as already in [0, 1]. The one normaliser of
    convscope: training batches, ``predict``, the report and the web explorer all use it.

    Shape:
        images (N, C, H, W), mean and std C values each -> float32 (N, C, H, W).

    Example:
        >>> normalise(np.array([0, 255], np.uint8).reshape(2, 1, 1, 1), [0.5], [0.5]).ravel()
        array([-1.,  1.], dtype=float32)
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32)
        x *= np.float32(1 / 255)
    else:
        x = x.astype(np.float32, copy=False)
    mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return (x - mean) / std
