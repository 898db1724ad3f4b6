"""Scenes: several real digits on one canvas, with ground truth read from the pixels.

A scene is a blank canvas (64x64 by default) with 1 to N items pasted on it: real MNIST
digits, or any other small grayscale pictures with labels (Fashion-MNIST-like items:
uint8 images (N, 1, h, w), bright ink on a 0 background). Each item is cropped to its
nonzero pixels, scaled by a random factor, and put at a random place, until the scene holds
the number of items drawn for it. All the randomness comes from the Generator you pass.

Ground truth comes from the pasted pixels themselves, not from where we meant to put them:

    ink      an item's pixels of value >= ``ink`` (default 32 of 255) after scaling
    box      (x0, y0, x1, y1) of the item's ink, in pixels: columns x0..x1-1, rows y0..y1-1,
             so ``mask[y0:y1, x0:x1]`` is the box (x1, y1 are exclusive, as in slicing)
    class    the item's label
    centre   (x, y): the centre of mass of the item's ink, each ink pixel weighted by its
             value; pixel (row r, column c) has its centre at (c + 0.5, r + 0.5), the
             same coordinates as the boxes
    mask     (H, W) uint8 per scene: 0 = background, label + 1 where an item's ink is
             (11 classes for digits: 0 background, k + 1 = digit k)

Where items overlap, the canvas keeps the brighter pixel (the maximum), and the mask takes
the class of the item whose pixel that is; on a tie, the item placed first. By default ink
never overlaps (items may touch, and their boxes may overlap), so every ink pixel belongs to
exactly one item and the box of an item's mask pixels is its box. Noise, if asked for, is
Gaussian, added to every pixel of the finished canvas and clipped to 0..255; it never
changes the ground truth.

>>> items = np.zeros((2, 1, 8, 8), np.uint8); items[:, 0, 2:6, 3:5] = 255
>>> scenes = make_scenes(items, np.array([3, 7]), 2, np.random.default_rng(0),
...                      SceneSettings(size=16, count=(2, 2), scale=(1, 1)))
>>> scenes.images.shape, scenes.classes.shape, int(scenes.masks.max())
((2, 1, 16, 16), (2, 2), 8)
>>> x0, y0, x1, y1 = scenes.boxes[0, 0]
>>> int(x1 - x0), int(y1 - y0)
(2, 4)
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

VERSION = 1  # bump when the same settings and seed would give other scenes
SCENE_TRIES = 100  # fresh starts of one scene before the settings are called too crowded
PLACE_TRIES = 50  # positions tried for one item before the scene starts over


def _pair(value, name: str, kind: type) -> tuple:
    """A number or a pair of numbers -> a pair of `kind`; a clear error otherwise."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, float, np.number)) for v in pair):
        raise ValueError(f"SceneSettings: expected {name} a number or a pair (low, high), got {value!r}")
    return tuple(kind(v) for v in pair)


@dataclass(frozen=True)
class SceneSettings:
    """How scenes are made.

    Args:
        size: canvas (H, W), or one int for a square. Default (64, 64).
        count: (fewest, most) items per scene, both included, fewest >= 1. Default (1, 4).
        scale: (low, high) of the uniform random factor each item's crop is scaled by.
            Default (0.8, 1.5).
        max_iou: the largest intersection-over-union allowed between two items' boxes;
            0 keeps boxes apart, 1 sets no limit. Default 1.
        ink_overlap: let two items' ink share pixels (the brighter pixel wins). Default False.
        noise: standard deviation, in pixel levels 0..255, of the Gaussian noise added to the
            finished canvas. Default 0.
        ink: the pixel value from which an item's pixel counts as ink. Default 32.
    """

    size: tuple[int, int] = (64, 64)
    count: tuple[int, int] = (1, 4)
    scale: tuple[float, float] = (0.8, 1.5)
    max_iou: float = 1.0
    ink_overlap: bool = False
    noise: float = 0.0
    ink: int = 32

    def __post_init__(self) -> None:
        size, count, scale = _pair(self.size, "size", int), _pair(self.count, "count", int), \
            _pair(self.scale, "scale", float)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "scale", scale)
        if min(size) < 1:
            raise ValueError(f"SceneSettings: expected a canvas size of at least 1x1, got {size}")
        if count[0] < 1 or count[0] > count[1]:
            raise ValueError(f"SceneSettings: expected count (fewest, most) with 1 <= fewest <= most, got {count}")
        if scale[0] <= 0 or scale[0] > scale[1]:
            raise ValueError(f"SceneSettings: expected scale (low, high) with 0 < low <= high, got {scale}")
        if not 0 <= self.max_iou <= 1:
            raise ValueError(f"SceneSettings: expected max_iou in [0, 1], got {self.max_iou}")
        if not 0 <= self.noise:
            raise ValueError(f"SceneSettings: expected noise >= 0 (a standard deviation), got {self.noise}")
        if not 1 <= self.ink <= 255:
            raise ValueError(f"SceneSettings: expected ink a pixel level in 1..255, got {self.ink}")


@dataclass(eq=False)
class Scenes:
    """Scenes and their ground truth. K = the most items a scene may hold; a scene with
    fewer has padding rows: class -1, source -1, box (0, 0, 0, 0), centre (nan, nan).

    Shape:
        images (N, 1, H, W) uint8, masks (N, H, W) uint8, counts (N,) int64,
        boxes (N, K, 4) int64 (x0, y0, x1, y1), classes (N, K) int64,
        centres (N, K, 2) float32 (x, y), sources (N, K) int64: which item was pasted
        (its index in the items given to :func:`make_scenes`).
    """

    images: np.ndarray
    masks: np.ndarray
    counts: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    centres: np.ndarray
    sources: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name, e.g. to save them: ``np.savez(path, **scenes.arrays())``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Placed:
    """One item on a scene: which item, its scaled pixels and where their top-left corner went."""

    source: int
    label: int
    patch: np.ndarray
    top: int
    left: int
    ink_box: tuple[int, int, int, int]  # (x0, y0, x1, y1) of the patch's ink, patch coordinates


def check_items(images: ArrayLike, labels: ArrayLike, settings: SceneSettings) -> tuple[np.ndarray, np.ndarray]:
    """Items as (N, h, w) uint8 and (N,) int64 labels 0..254; each must fit the canvas at the
    largest scale."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or images.shape[1] != 1 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"make_scenes: expected items as uint8 images (N, 1, h, w), N >= 1, "
                         f"got {images.dtype} of shape {images.shape}")
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise ValueError(f"make_scenes: expected one integer label per item, shape ({len(images)},), "
                         f"got {labels.dtype} of shape {labels.shape}")
    if labels.min() < 0 or labels.max() > 254:
        raise ValueError(f"make_scenes: expected labels in 0..254 (the mask stores label + 1 in a byte), "
                         f"got {labels.min()}..{labels.max()}")
    h, w = images.shape[2:]
    high = settings.scale[1]
    largest = (round(h * high), round(w * high))
    if largest[0] > settings.size[0] or largest[1] > settings.size[1]:
        raise ValueError(f"make_scenes: a {h}x{w} item scaled by up to {high} is {largest[0]}x{largest[1]}, "
                         f"larger than the canvas {settings.size[0]}x{settings.size[1]}; expected scale high "
                         f"<= {min(settings.size[0] / h, settings.size[1] / w):.3g} or a larger canvas")
    return images[:, 0], labels.astype(np.int64)


def make_scenes(images: ArrayLike, labels: ArrayLike, n: int, rng: np.random.Generator,
                settings: SceneSettings | None = None) -> Scenes:
    """Make ``n`` scenes from the items (images, labels), drawing everything from ``rng``.

    Args:
        images: uint8 (N, 1, h, w) items, bright on a 0 background (MNIST, Fashion-MNIST...).
        labels: (N,) integer labels 0..254 (the mask stores label + 1).
        n: how many scenes, >= 1.
        rng: numpy.random.Generator; the same state gives the same scenes.
        settings: a :class:`SceneSettings`. Default SceneSettings().

    Shape:
        see :class:`Scenes`; H, W = settings.size, K = settings.count[1].

    Raises:
        ValueError: bad items, an item that cannot fit the canvas at the largest scale, or
            settings so crowded that a scene could not be placed in SCENE_TRIES attempts.
    """
    settings = SceneSettings() if settings is None else settings
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"make_scenes: expected rng a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"make_scenes: expected n a positive int (how many scenes), got {n!r}")
    items, labels = check_items(images, labels, settings)
    scenes = _empty(int(n), settings)
    for i in range(n):
        _draw(scenes, i, _place_scene(items, labels, rng, settings), settings.ink)
    if settings.noise > 0:  # drawn after all layouts, so noise never changes where items go
        noisy = scenes.images + rng.normal(0, settings.noise, scenes.images.shape)
        scenes.images = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return scenes


def _empty(n: int, settings: SceneSettings) -> Scenes:
    (h, w), k = settings.size, settings.count[1]
    return Scenes(images=np.zeros((n, 1, h, w), np.uint8), masks=np.zeros((n, h, w), np.uint8),
                  counts=np.zeros(n, np.int64), boxes=np.zeros((n, k, 4), np.int64),
                  classes=np.full((n, k), -1, np.int64), centres=np.full((n, k, 2), np.nan, np.float32),
                  sources=np.full((n, k), -1, np.int64))


def _place_scene(items: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 settings: SceneSettings) -> list[_Placed]:
    """Draw a count and that many items, and find each a place that the overlap rule allows."""
    for _ in range(SCENE_TRIES):
        count = int(rng.integers(settings.count[0], settings.count[1] + 1))
        ink = np.zeros(settings.size, bool)  # the ink of the items placed so far
        placed: list[_Placed] = []
        while len(placed) < count:
            source = int(rng.integers(len(items)))
            patch = scaled_crop(items[source], float(rng.uniform(*settings.scale)))
            item = _Placed(source, int(labels[source]), patch, 0, 0, ink_box(patch, settings.ink, source))
            if not _find_place(item, placed, ink, rng, settings):
                break
            placed.append(item)
            ink[item.top:item.top + patch.shape[0], item.left:item.left + patch.shape[1]] |= patch >= settings.ink
        else:
            return placed
    raise ValueError(f"make_scenes: could not place {settings.count[1]} items on a {settings.size} canvas "
                     f"under the overlap rule (max_iou={settings.max_iou}, ink_overlap={settings.ink_overlap}) "
                     f"in {SCENE_TRIES} tries; expected a larger canvas, fewer items, a smaller scale "
                     f"or a looser rule")


def _find_place(item: _Placed, placed: list[_Placed], ink: np.ndarray, rng: np.random.Generator,
                settings: SceneSettings) -> bool:
    """Try PLACE_TRIES random positions; set item.top/left to the first allowed one."""
    h, w = item.patch.shape
    own_ink = item.patch >= settings.ink
    tops = rng.integers(settings.size[0] - h + 1, size=PLACE_TRIES)
    lefts = rng.integers(settings.size[1] - w + 1, size=PLACE_TRIES)
    for top, left in zip(tops.tolist(), lefts.tolist()):
        if not settings.ink_overlap and np.any(ink[top:top + h, left:left + w] & own_ink):
            continue
        box = _shift(item.ink_box, top, left)
        if settings.max_iou < 1 and any(iou(box, _shift(p.ink_box, p.top, p.left)) > settings.max_iou
                                        for p in placed):
            continue
        item.top, item.left = top, left
        return True
    return False


def scaled_crop(item: np.ndarray, factor: float) -> np.ndarray:
    """The item's nonzero pixels (their bounding box), scaled by ``factor`` (bilinear).

    Shape:
        item (h, w) uint8 -> (max(1, round(h_crop * factor)), max(1, round(w_crop * factor))) uint8.
    """
    rows, cols = np.flatnonzero(item.any(axis=1)), np.flatnonzero(item.any(axis=0))
    if len(rows) == 0:
        return item[:1, :1]  # a blank item: ink_box() reports it
    crop = item[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))
    if size == (crop.shape[1], crop.shape[0]):
        return np.ascontiguousarray(crop)
    return np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR))


def ink_box(patch: np.ndarray, ink: int, source: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the pixels >= ink, x1 and y1 exclusive."""
    on = patch >= ink
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    if len(rows) == 0:
        raise ValueError(f"make_scenes: item {source} has no pixel of value >= ink={ink} once scaled "
                         f"(its brightest is {int(patch.max())}); expected every item to show some ink")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _shift(box, top: int, left: int) -> tuple[int, int, int, int]:
    return box[0] + left, box[1] + top, box[2] + left, box[3] + top


def iou(a, b) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1).

    >>> iou((0, 0, 2, 2), (1, 0, 3, 2))
    0.3333333333333333
    """
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _draw(scenes: Scenes, i: int, placed: list[_Placed], ink: int) -> None:
    """Paste the items on scene i (the brighter pixel wins, ties go to the earlier item) and
    write its ground truth."""
    canvas, mask = scenes.images[i, 0], scenes.masks[i]
    for k, item in enumerate(placed):
        h, w = item.patch.shape
        region = np.s_[item.top:item.top + h, item.left:item.left + w]
        wins = (item.patch >= ink) & (item.patch > canvas[region])
        mask[region][wins] = item.label + 1
        np.maximum(canvas[region], item.patch, out=canvas[region])
        scenes.boxes[i, k] = _shift(item.ink_box, item.top, item.left)
        scenes.centres[i, k] = centre_of_mass(item.patch, ink) + (item.left, item.top)
        scenes.classes[i, k], scenes.sources[i, k] = item.label, item.source
    scenes.counts[i] = len(placed)


def centre_of_mass(patch: np.ndarray, ink: int) -> np.ndarray:
    """(x, y) of the value-weighted centre of the pixels >= ink; pixel centres at +0.5.

    >>> centre_of_mass(np.array([[0, 100], [0, 100]], np.uint8), 32)
    array([1.5, 1. ])
    """
    weights = np.where(patch >= ink, patch, 0).astype(np.float64)
    h, w = weights.shape
    x = weights.sum(axis=0) @ (np.arange(w) + 0.5)
    y = weights.sum(axis=1) @ (np.arange(h) + 0.5)
    return np.array([x, y]) / weights.sum()
