"""Data augmentation: random, label-preserving changes to a batch of images.

Each augmentation is a small class called as `augment(x, rng) -> x` on a whole float32
batch x (B, C, H, W). It draws one set of parameters per image from `rng` (a
numpy.random.Generator) and applies them all at once with array indexing: no loop
over pixels. The DataLoader applies it to pixels in [0, 1], before normalising, so the
default fill value 0 is the background of MNIST-like images.

Two pure functions do the geometry and can be used on their own:

    translate(x, dy, dx)   move each image by whole pixels
    rotate(x, angles)      turn each image about its centre (bilinear sampling)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def translate(batch: np.ndarray, dy: ArrayLike, dx: ArrayLike, fill: float = 0.0) -> np.ndarray:
    """Move image b down by dy[b] and right by dx[b] pixels; uncovered pixels get `fill`.

    Shape:
        batch (B, C, H, W), dy and dx (B,) ints (negative moves up / left) -> (B, C, H, W).

    Example:
        >>> x = np.zeros((1, 1, 3, 3), np.float32); x[0, 0, 0, 0] = 1
        >>> translate(x, np.array([1]), np.array([2]))[0, 0]
        array([[0., 0., 0.],
               [0., 0., 1.],
               [0., 0., 0.]], dtype=float32)
    """
    _check_batch(batch, "translate")
    dy, dx = np.asarray(dy, dtype=np.int64), np.asarray(dx, dtype=np.int64)
    pad = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    height, width = batch.shape[2:]
    padded = np.pad(batch, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    # out[y, x] = in[y - dy, x - dx], which sits at padded[y - dy + pad, x - dx + pad]
    return crop(padded, pad - dy, pad - dx, height, width)


def crop(batch: np.ndarray, top: ArrayLike, left: ArrayLike, height: int, width: int) -> np.ndarray:
    """Cut a (height, width) window out of each image, image b's starting at (top[b], left[b]).

    Shape:
        batch (B, C, H_in, W_in), top and left (B,) ints -> (B, C, height, width).
    """
    count, channels = batch.shape[:2]
    rows = np.asarray(top)[:, None] + np.arange(height)  # (B, height)
    cols = np.asarray(left)[:, None] + np.arange(width)  # (B, width)
    return batch[np.arange(count)[:, None, None, None], np.arange(channels)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]


def rotate(batch: np.ndarray, angles: ArrayLike, fill: float = 0.0) -> np.ndarray:
    """Turn image b by angles[b] degrees counter-clockwise about its centre.

    Each output pixel looks up where it came from (the inverse rotation) and blends the
    four nearest input pixels (bilinear); positions outside the image read `fill`.
    Rotating by 90 degrees equals np.rot90(batch, axes=(2, 3)) for square images.

    Shape:
        batch (B, C, H, W), angles (B,) degrees -> (B, C, H, W).

    Example:
        >>> x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
        >>> rotate(x, [90]).round(4)[0, 0]
        array([[1., 3.],
               [0., 2.]], dtype=float32)
    """
    _check_batch(batch, "rotate")
    height, width = batch.shape[2:]
    theta = np.deg2rad(np.asarray(angles, dtype=np.float64))[:, None, None]  # (B, 1, 1)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    oy, ox = np.mgrid[0:height, 0:width] - np.array([cy, cx])[:, None, None]  # offsets from centre
    source_x = cx + ox * np.cos(theta) - oy * np.sin(theta)  # (B, H, W)
    source_y = cy + ox * np.sin(theta) + oy * np.cos(theta)
    return bilinear_sample(batch, source_y, source_x, fill)


def bilinear_sample(batch: np.ndarray, y: np.ndarray, x: np.ndarray, fill: float) -> np.ndarray:
    """Read image b at the fractional positions (y[b], x[b]), blending the 4 nearest pixels.

    Shape:
        batch (B, C, H, W), y and x (B, H_out, W_out) -> (B, C, H_out, W_out).
    """
    count, channels, height, width = batch.shape
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    wy, wx = (y - y0)[:, None], (x - x0)[:, None]  # (B, 1, H_out, W_out), broadcast over C
    b = np.arange(count)[:, None, None, None]
    c = np.arange(channels)[None, :, None, None]
    out = np.zeros((count, channels) + y.shape[1:], dtype=np.float64)
    corners = ((y0, x0, (1 - wy) * (1 - wx)), (y0, x0 + 1, (1 - wy) * wx),
               (y0 + 1, x0, wy * (1 - wx)), (y0 + 1, x0 + 1, wy * wx))
    for row, col, weight in corners:
        inside = ((row >= 0) & (row < height) & (col >= 0) & (col < width))[:, None]
        values = batch[b, c, np.clip(row, 0, height - 1)[:, None], np.clip(col, 0, width - 1)[:, None]]
        out += weight * np.where(inside, values, fill)
    return out.astype(batch.dtype)


@dataclass(frozen=True)
class RandomShift:
    """Move each image by a random whole number of pixels, up to max_shift in each direction.

    Args:
        max_shift: largest shift in pixels; dy and dx are drawn from -max_shift..max_shift. Default 2.
        fill: value of uncovered pixels. Default 0.0 (background).
    """

    max_shift: int = 2
    fill: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_shift, int) or self.max_shift < 0:
            raise ValueError(f"RandomShift: expected max_shift a non-negative int, got {self.max_shift!r}")

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        dy, dx = rng.integers(-self.max_shift, self.max_shift + 1, size=(2, len(batch)))
        return translate(batch, dy, dx, self.fill)


@dataclass(frozen=True)
class RandomCrop:
    """Pad each image by `padding` pixels on every side, then cut a random size x size window.

    Args:
        size: output side length (int) or (H, W).
        padding: pixels added on each side before cropping. Default 0.
        fill: value of the padding. Default 0.0.

    Shape:
        (B, C, H, W) -> (B, C, size_h, size_w); needs size <= H + 2*padding.
    """

    size: int | tuple[int, int]
    padding: int = 0
    fill: float = 0.0

    def __post_init__(self) -> None:
        size = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"RandomCrop: expected size a positive int or (H, W), got {self.size!r}")
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"RandomCrop: expected padding a non-negative int, got {self.padding!r}")
        object.__setattr__(self, "size", size)

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch(batch, "RandomCrop")
        p, (out_h, out_w) = self.padding, self.size
        in_h, in_w = batch.shape[2] + 2 * p, batch.shape[3] + 2 * p
        if out_h > in_h or out_w > in_w:
            raise ValueError(f"RandomCrop(size={self.size}, padding={p}): crop larger than the "
                             f"padded image ({in_h}, {in_w}) of a batch of shape {batch.shape}")
        padded = np.pad(batch, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill)
        top = rng.integers(0, in_h - out_h + 1, size=len(batch))
        left = rng.integers(0, in_w - out_w + 1, size=len(batch))
        return crop(padded, top, left, out_h, out_w)


@dataclass(frozen=True)
class RandomRotation:
    """Turn each image by a random angle drawn uniformly from [-degrees, degrees].

    Args:
        degrees: largest rotation, in degrees, either way. Default 10.0.
        fill: value of pixels rotated in from outside the image. Default 0.0.
    """

    degrees: float = 10.0
    fill: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.degrees, (int, float)) or not 0 <= self.degrees <= 180:
            raise ValueError(f"RandomRotation: expected degrees in [0, 180], got {self.degrees!r}")

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        angles = rng.uniform(-self.degrees, self.degrees, size=len(batch))
        return rotate(batch, angles, self.fill)


@dataclass(frozen=True)
class RandomHorizontalFlip:
    """Mirror each image left-right with probability p (for photos such as CIFAR-10, not digits).

    Args:
        p: probability of flipping an image. Default 0.5.
    """

    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise ValueError(f"RandomHorizontalFlip: expected p in [0, 1], got {self.p!r}")

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch(batch, "RandomHorizontalFlip")
        flip = rng.random(len(batch)) < self.p
        return np.where(flip[:, None, None, None], batch[..., ::-1], batch)


@dataclass(frozen=True)
class Compose:
    """Apply augmentations one after another, e.g. Compose([RandomShift(2), RandomRotation(10)])."""

    transforms: tuple

    def __post_init__(self) -> None:
        object.__setattr__(self, "transforms", tuple(self.transforms))

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for transform in self.transforms:
            batch = transform(batch, rng)
        return batch


def _check_batch(batch: np.ndarray, name: str) -> None:
    if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.dtype.kind != "f":
        got = (f"shape {batch.shape} dtype {batch.dtype}" if isinstance(batch, np.ndarray)
               else type(batch).__name__)
        raise ValueError(f"{name}: expected a float batch of shape (B, C, H, W), got {got}")
