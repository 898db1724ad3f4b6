"""Arrays to pictures: colour maps, tiled grids of filters and feature maps, overlays.

Every function here is pure: numbers in, a uint8 RGB image ``(H, W, 3)`` out. Nothing is
drawn on screen or written to disk (that is :mod:`convscope.viz.render`'s job).

A grid of ``n`` tiles of ``h x w`` pixels, each scaled up ``scale`` times (nearest
neighbour: every value becomes a ``scale x scale`` block), with ``ncols`` columns (default
``ceil(sqrt(n))``), ``pad`` separator pixels and a white band of ``label`` pixels above each
tile (room for its name, written by :mod:`convscope.viz.render`), has the size::

    rows   = ceil(n / ncols)
    height = rows  * (label + h*scale + pad) + pad
    width  = ncols * (w*scale + pad) + pad

and tile ``i`` sits at row ``i // ncols``, column ``i % ncols`` (see :func:`tile_box`).

>>> tile(np.zeros((6, 5, 5)), scale=2).shape
(23, 34, 3)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

SEPARATOR = (96, 96, 96)  # grey lines between tiles
WHITE = (255, 255, 255)  # label bands and page background
_BLUE, _WHITE, _RED = np.array([0.23, 0.30, 0.75]), np.ones(3), np.array([0.70, 0.02, 0.15])


# ----- scaling to [0, 1] --------------------------------------------------------------
def to_unit(a: ArrayLike, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Map ``[lo, hi]`` (default: the array's min and max) linearly onto ``[0, 1]``."""
    a = np.asarray(a, dtype=np.float64)
    lo = np.nanmin(a) if lo is None else lo
    hi = np.nanmax(a) if hi is None else hi
    if not hi > lo:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def signed_unit(a: ArrayLike, limit: float | None = None) -> np.ndarray:
    """Map ``[-limit, limit]`` onto ``[0, 1]`` with 0 at 0.5 (default limit: ``max |a|``)."""
    a = np.asarray(a, dtype=np.float64)
    limit = np.nanmax(np.abs(a)) if limit is None else limit
    if not limit > 0:
        return np.full_like(a, 0.5)
    return np.clip(0.5 + a / (2 * limit), 0.0, 1.0)


# ----- colour maps: (...,) values in [0, 1] -> (..., 3) floats in [0, 1] -----------------
def gray(v: ArrayLike) -> np.ndarray:
    """Black (0) to white (1)."""
    return np.repeat(np.asarray(v, dtype=np.float64)[..., None], 3, axis=-1)


def diverging(v: ArrayLike) -> np.ndarray:
    """Blue (0) through white (0.5) to red (1): for signed values such as weights."""
    v = np.asarray(v, dtype=np.float64)[..., None]
    low = _BLUE + (_WHITE - _BLUE) * np.clip(2 * v, 0, 1)
    high = _WHITE + (_RED - _WHITE) * np.clip(2 * v - 1, 0, 1)
    return np.where(v < 0.5, low, high)


def heat(v: ArrayLike) -> np.ndarray:
    """Black, red, yellow, white (like matplotlib's "hot"): for saliency and Grad-CAM."""
    v = np.asarray(v, dtype=np.float64)
    return np.clip(np.stack([3 * v, 3 * v - 1, 3 * v - 2], axis=-1), 0.0, 1.0)


def to_uint8(rgb: ArrayLike) -> np.ndarray:
    """Floats in [0, 1] -> uint8 0..255."""
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


# ----- grids --------------------------------------------------------------------------
def grid_columns(n: int, ncols: int | None = None) -> int:
    """Columns of a grid of ``n`` tiles: ``ncols``, or ``ceil(sqrt(n))``."""
    return max(1, min(n, ncols)) if ncols else max(1, math.ceil(math.sqrt(n)))


def tile_box(index: int, tile_hw: tuple[int, int], ncols: int, pad: int = 1, scale: int = 1,
             label: int = 0) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` pixel box of tile ``index`` in a grid."""
    h, w = tile_hw[0] * scale, tile_hw[1] * scale
    top = pad + (index // ncols) * (label + h + pad) + label
    left = pad + (index % ncols) * (w + pad)
    return top, left, top + h, left + w


def label_box(index: int, tile_hw: tuple[int, int], ncols: int, pad: int = 1, scale: int = 1,
              label: int = 0) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of the white label band above tile ``index``."""
    top, left, _, right = tile_box(index, tile_hw, ncols, pad, scale, label)
    return top - label, left, top, right


def tile(images: ArrayLike, ncols: int | None = None, pad: int = 1, scale: int = 1, label: int = 0) -> np.ndarray:
    """Lay ``images`` out in a grid.

    Args:
        images: (N, h, w) values in [0, 1] (shown grey) or (N, h, w, 3) RGB in [0, 1].
        ncols (int): columns; default ``ceil(sqrt(N))``.
        pad (int): separator width in pixels. Default 1.
        scale (int): each pixel becomes a ``scale x scale`` block. Default 1.
        label (int): height of the white band above each tile for its name. Default 0.

    Returns: uint8 (rows*(label+h*scale+pad)+pad, ncols*(w*scale+pad)+pad, 3).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 3:
        images = gray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"tile: expected (N, h, w) or (N, h, w, 3) images, got shape {images.shape}")
    n, h, w = images.shape[:3]
    ncols = grid_columns(n, ncols)
    rows = math.ceil(n / ncols)
    out = np.empty((rows * (label + h * scale + pad) + pad, ncols * (w * scale + pad) + pad, 3), np.uint8)
    out[:] = SEPARATOR
    big = to_uint8(images).repeat(scale, axis=1).repeat(scale, axis=2)
    for i in range(n):
        top, left, bottom, right = tile_box(i, (h, w), ncols, pad, scale, label)
        out[top - label:top, left:right] = WHITE
        out[top:bottom, left:right] = big[i]
    return out


def filter_mode(weight: np.ndarray, first_layer: bool) -> str:
    """How to show a conv weight (C_out, C_in, kH, kW): "input" for the first layer (grey or
    RGB, as the image), else "channels" (one tile per output x input channel) when that
    makes at most 256 tiles, else "norm" (one tile per filter: L2 norm over input channels)."""
    if first_layer and weight.shape[1] in (1, 3):
        return "input"
    return "channels" if weight.shape[0] * weight.shape[1] <= 256 else "norm"


def filter_tiles(weight: ArrayLike, mode: str) -> tuple[np.ndarray, int | None]:
    """Tiles of a conv weight (C_out, C_in, kH, kW) for :func:`tile`, and the column count.

    "input": one tile per filter; one input channel: blue (negative), white (0), red
    (positive) on one scale for the layer; RGB: each filter min-max scaled on its own;
    "channels": tile (o, c) at row c, column o, one blue-white-red scale for the whole layer;
    "norm": one grey tile per filter, ``sqrt(sum_c w[o, c]^2)`` at each tap.
    """
    weight = np.asarray(weight, dtype=np.float64)
    c_out, c_in = weight.shape[:2]
    if mode == "input" and c_in == 1:
        return diverging(signed_unit(weight[:, 0])), None
    if mode == "input" and c_in == 3:
        return np.stack([to_unit(w).transpose(1, 2, 0) for w in weight]), None
    if mode == "channels":  # column o is filter o, row c its input channel c
        tiles = diverging(signed_unit(weight.transpose(1, 0, 2, 3)))
        return tiles.reshape(c_in * c_out, *weight.shape[2:], 3), c_out
    if mode == "norm":
        return gray(to_unit(np.sqrt((weight ** 2).sum(axis=1)))), None
    raise ValueError(f"filter_tiles: unknown mode {mode!r} for weight of shape {weight.shape}")


def filter_grid(weight: ArrayLike, mode: str = "channels", scale: int = 8, pad: int = 1, label: int = 0) -> np.ndarray:
    """Grid image of a conv layer's filters (see :func:`filter_tiles` for the modes).

    Shape: weight (C_out, C_in, kH, kW) -> uint8 grid, sized as in the module docstring.
    """
    tiles, ncols = filter_tiles(weight, mode)
    return tile(tiles, ncols=ncols, pad=pad, scale=scale, label=label)


def filter_labels(weight: ArrayLike, mode: str) -> list[str]:
    """The name of each tile of :func:`filter_tiles`, in tile order: "f3" is filter 3,
    "f3 c1" its weights on input channel 1."""
    c_out, c_in = np.shape(weight)[:2]
    if mode == "channels":
        return [f"f{o} c{c}" for c in range(c_in) for o in range(c_out)]
    return [f"f{o}" for o in range(c_out)]


def vector_image(v: ArrayLike) -> np.ndarray:
    """A vector (F,) as a near-square (rows, cols) image, NaN where the square overhangs."""
    v = np.asarray(v, dtype=np.float64).ravel()
    cols = math.ceil(math.sqrt(v.size))
    out = np.full(math.ceil(v.size / cols) * cols, np.nan)
    out[:v.size] = v
    return out.reshape(-1, cols)


def feature_grid(fmaps: ArrayLike, scale: int = 2, pad: int = 1, shared: bool = True, label: int = 0) -> np.ndarray:
    """Grid of one layer's feature maps for one image, grey, one tile per channel.

    Args:
        fmaps: (C, H, W) maps, or (F,) features (shown as one near-square tile).
        shared (bool): one min-max scale for the whole layer (True, default: a weak channel
            looks dark) or one per channel.
    """
    fmaps = np.asarray(fmaps, dtype=np.float64)
    if fmaps.ndim == 1:
        image = vector_image(fmaps)
        rgb = gray(to_unit(image))
        rgb[np.isnan(image)] = np.array(SEPARATOR) / 255
        return tile(rgb[None], pad=pad, scale=scale)
    if shared:
        return tile(to_unit(fmaps), pad=pad, scale=scale, label=label)
    return tile(np.stack([to_unit(f) for f in fmaps]), pad=pad, scale=scale, label=label)


# ----- images and overlays ------------------------------------------------------------
def image_rgb(x: ArrayLike, mean: ArrayLike | None = None, std: ArrayLike | None = None) -> np.ndarray:
    """A model input (C, H, W) as RGB floats in [0, 1].

    With per-channel ``mean`` and ``std`` the normalisation ``(x/255 - mean)/std`` is undone;
    without them the image is min-max scaled. One channel is shown grey.
    """
    x = np.asarray(x, dtype=np.float64)
    if mean is not None and std is not None:
        x = np.clip(x * np.asarray(std)[:, None, None] + np.asarray(mean)[:, None, None], 0, 1)
    else:
        x = to_unit(x)
    return gray(x[0]) if x.shape[0] == 1 else x[:3].transpose(1, 2, 0)


def resize(a: ArrayLike, size: tuple[int, int], start: tuple[float, float] | None = None,
           step: tuple[float, float] | None = None) -> np.ndarray:
    """Bilinear resampling of a 2-D array (h, w) onto a (H, W) grid.

    Sample (i, j) of ``a`` sits at output position ``start + (i, j) * step``; outside the
    samples the edge values continue. By default ``step = (H/h, W/w)`` and ``start`` puts
    pixel centres on pixel centres (a plain resize). For a layer's map, pass the layer's
    receptive-field ``start`` and ``jump`` to put each value over the input pixels it sees.
    """
    a = np.asarray(a, dtype=np.float64)
    (h, w), (big_h, big_w) = a.shape, size
    step = (big_h / h, big_w / w) if step is None else step
    start = tuple((s - 1) / 2 for s in step) if start is None else start
    y = np.clip((np.arange(big_h) - start[0]) / step[0], 0, h - 1)
    x = np.clip((np.arange(big_w) - start[1]) / step[1], 0, w - 1)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bottom = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def overlay(image: np.ndarray, values: ArrayLike, alpha: float = 0.5, start: tuple[float, float] | None = None,
            step: tuple[float, float] | None = None) -> np.ndarray:
    """Blend a heat map of ``values`` (h, w) in [0, 1] over ``image`` (H, W, 3) in [0, 1].

    ``values`` is resampled with :func:`resize` (``start``, ``step`` as there).
    Returns: uint8 (H, W, 3).
    """
    hot = heat(resize(values, image.shape[:2], start, step))
    return to_uint8((1 - alpha) * np.asarray(image) + alpha * hot)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of a uint8 (H, W, 3) image by an integer factor."""
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def colour_ramp(colour_map: Callable[[np.ndarray], np.ndarray], width: int = 240, height: int = 14) -> np.ndarray:
    """A horizontal bar running through ``colour_map`` from 0 (left) to 1 (right): uint8
    (height, width, 3), the strip of a legend."""
    row = colour_map(np.linspace(0.0, 1.0, width))
    return to_uint8(np.broadcast_to(row, (height, width, 3)))


def stack(images: Sequence[np.ndarray], pad: int = 4, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """uint8 RGB images one above the other, left-aligned, ``pad`` pixels apart, on
    ``background``."""
    width = max(im.shape[1] for im in images)
    height = sum(im.shape[0] for im in images) + pad * (len(images) - 1)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = background
    top = 0
    for im in images:
        out[top:top + im.shape[0], :im.shape[1]] = im
        top += im.shape[0] + pad
    return out


def side_by_side(images: Sequence[np.ndarray], pad: int = 4,
                 background: tuple[int, int, int] = SEPARATOR) -> np.ndarray:
    """uint8 RGB images in one row, top-aligned, ``pad`` pixels apart on ``background``."""
    height = max(im.shape[0] for im in images)
    width = sum(im.shape[1] for im in images) + pad * (len(images) + 1)
    out = np.empty((height + 2 * pad, width, 3), np.uint8)
    out[:] = background
    left = pad
    for im in images:
        out[pad:pad + im.shape[0], left:left + im.shape[1]] = im
        left += im.shape[1] + pad
    return out
