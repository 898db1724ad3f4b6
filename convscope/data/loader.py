"""DataLoader: cut a dataset into shuffled, augmented, normalised float32 mini-batches.

One batch is made in four steps, all on whole arrays:

    1. gather    images[index]                    (B, C, H, W) uint8
    2. scale     / 255                            float32 in [0, 1]
    3. augment   augment(x, rng)                  still in [0, 1], so 0 is the background
    4. normalise (x - mean) / std, per channel    about mean 0, std 1

Randomness (the epoch's order, the augmentations) is drawn from the Generator you pass,
and only from it, so saving `rng.bit_generator.state` at an epoch boundary is enough to
replay the next epoch exactly.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from .dataset import Dataset, channel_stats, normalise, validate_arrays


class DataLoader:
    """Iterate over a dataset in mini-batches of (x float32 (B, C, H, W), y int64 (B,)).

    Args:
        data: a Dataset, or a tuple (images, labels) of arrays. uint8 images (0..255) are
            scaled to [0, 1]; float images are taken as they are, and their own per-channel
            mean and std are used for normalising.
        batch_size: images per batch. Default 64.
        shuffle: visit the images in a new random order each epoch. Default False.
        rng: numpy.random.Generator; required when shuffle=True or augment is given.
        normalize: standardise with the dataset's per-channel mean and std. Default True.
        augment: a callable (x (B, C, H, W) float32, rng) -> x, applied before normalising,
            e.g. convscope.data.augment.RandomShift(2). Default None.
        drop_last: skip the last batch when it is smaller than batch_size. Default False.

    Shape:
        len(loader) = ceil(N / batch_size), or floor(N / batch_size) with drop_last=True.

    Example:
        >>> import numpy as np
        >>> images, labels = np.zeros((10, 1, 4, 4), np.uint8), np.arange(10) % 2
        >>> loader = DataLoader((images, labels), batch_size=4, normalize=False)
        >>> [x.shape for x, y in loader], len(loader)
        ([(4, 1, 4, 4), (4, 1, 4, 4), (2, 1, 4, 4)], 3)
    """

    def __init__(self, data: Dataset | tuple[np.ndarray, np.ndarray], batch_size: int = 64, shuffle: bool = False,
                 rng: np.random.Generator | None = None, normalize: bool = True,
                 augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                 drop_last: bool = False) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: expected batch_size a positive int, got {batch_size!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"DataLoader: expected rng a numpy.random.Generator, got {type(rng).__name__}")
        if rng is None and (shuffle or augment is not None):
            raise ValueError("DataLoader: shuffle=True and augment need rng=numpy.random.Generator "
                             "(e.g. np.random.default_rng(0)), got rng=None")
        self.images, self.labels, mean, std, self._scale = _unpack(data)
        if augment is not None and np.ndim(self.labels) != 1:
            raise ValueError(f"DataLoader: augment moves and flips the images but not their targets, so it "
                             f"needs one class label per image; got targets of shape {np.shape(self.labels)[1:]} "
                             "per image (positions, masks or boxes): pass augment=None")
        self.batch_size, self.shuffle, self.rng = batch_size, shuffle, rng
        self.normalize, self.augment, self.drop_last = normalize, augment, drop_last
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
        if normalize and np.any(self.std == 0):
            raise ValueError(f"DataLoader: cannot normalise, a channel has std 0 (constant "
                             f"images; std={tuple(self.std.ravel())}); pass normalize=False")

    def __len__(self) -> int:
        count = len(self.labels) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = self.rng.permutation(len(self.labels)) if self.shuffle else np.arange(len(self.labels))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self.batch(order[start:start + self.batch_size])

    def batch(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Build the batch of the images at positions `index` (B,): x (B, C, H, W), y (B,)."""
        x = self.images[index].astype(np.float32)
        if self._scale != 1:
            x *= np.float32(self._scale)
        if self.augment is not None:
            x = self.augment(x, self.rng)
        if self.normalize:
            x = normalise(x, self.mean, self.std)
        return np.ascontiguousarray(x, dtype=np.float32), self.labels[index]


def _unpack(data):
    """Dataset or (images, labels) -> images, labels, mean, std, scale to [0, 1]."""
    if isinstance(data, Dataset):
        return data.images, data.labels, data.mean, data.std, 1 / 255
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"DataLoader: expected a Dataset or a tuple (images, labels), "
                        f"got {type(data).__name__}")
    images, labels = validate_arrays(data[0], data[1], "DataLoader", any_targets=True)
    if images.dtype == np.uint8:
        return images, labels, *channel_stats(images), 1 / 255
    if images.dtype.kind != "f":
        raise ValueError(f"DataLoader: expected uint8 or float images, got dtype {images.dtype}")
    mean, std = images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3))
    return images, labels, mean, std, 1
