"""Shift the input, watch the network: feature maps move with it, pooled features and the
prediction mostly stay put.

A convolution is *equivariant* to shifts: move the image one pixel and the feature map of
a stride-1 conv moves one pixel too (away from the borders). Pooling and the layers after
it make the network partly *invariant*: the summary it passes on changes less.

For each shift :func:`invariance_study` reports

* ``aligned_corr``: correlation between the shifted image's feature map and the original
  map shifted by the same amount (near 1: the map moved with the image),
* ``unaligned_corr``: correlation with the original map left in place (lower: it did move),
* ``map_change`` and ``pooled_change``: relative change ``|a_s - a_0| / |a_0|`` of the
  feature map and of the last pooling layer's output,
* the predicted class and its probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..nn import Module
from ..tensor import Tensor
from ..trace import trace

DIRECTIONS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def shift(x: ArrayLike, dy: int, dx: int, fill: ArrayLike = 0.0) -> np.ndarray:
    """Move images down ``dy`` and right ``dx`` pixels (negative: up / left).

    Args: x (N, C, H, W); fill: scalar or (C,) value for the uncovered pixels.
    Returns: array of the same shape.
    """
    x = np.asarray(x)
    out = np.empty_like(x)
    out[:] = np.asarray(fill, dtype=x.dtype).reshape(-1, 1, 1) if np.ndim(fill) else fill
    h, w = x.shape[-2:]
    src_y, dst_y = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def correlation(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson correlation of two arrays' values (0 when either is constant)."""
    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def relative_change(a: ArrayLike, a0: np.ndarray) -> float:
    """``|a - a0| / |a0|`` (Euclidean norms)."""
    norm = np.linalg.norm(a0)
    return float(np.linalg.norm(np.asarray(a) - a0) / norm) if norm > 0 else float(np.linalg.norm(a))


def probe_layers(model: Module, x: np.ndarray | Tensor) -> tuple[tuple[str, tuple[int, int], tuple[int, int]], str]:
    """The layers to watch: the first conv layer (the feature map) and the last pooling layer
    (the pooled features). Returns ((map name, receptive field, jump), pooled name)."""
    return _probe(trace(model, x, keep_outputs=False))


def _probe(t):
    """probe_layers from an existing :class:`~convscope.trace.Trace`."""
    convs = [(layer.name, layer.field.rf, layer.field.jump) for layer in t.layers if layer.module.role == "conv"]
    pools = [layer.name for layer in t.layers if layer.module.role in ("pool", "adaptive_pool")]
    if not convs or not pools:
        kinds = ", ".join(dict.fromkeys(layer.kind for layer in t.layers)) or "none"
        raise ValueError(f"{type(t.model).__name__} needs a conv layer and a pooling layer for the invariance "
                         f"study; its layers are: {kinds}")
    return convs[0], pools[-1]


@dataclass
class ShiftResult:
    """What one shift (dy, dx) did; see the module docstring."""

    dy: int
    dx: int
    aligned_corr: float
    unaligned_corr: float
    map_change: float
    pooled_change: float
    predicted: int
    probability: float


def _compare(fmap, fmap0, dy, dx, jump, margin):
    """Aligned and unaligned correlation of two (C, h, w) maps, borders cut off."""
    my, mx = dy // jump[0], dx // jump[1]
    moved = shift(fmap0[None], my, mx)[0]
    cut = (slice(None), slice(margin, fmap.shape[1] - margin), slice(margin, fmap.shape[2] - margin))
    return correlation(fmap[cut], moved[cut]), correlation(fmap[cut], fmap0[cut])


def invariance_study(model: Module, x: np.ndarray | Tensor, pixels: int = 2, fill: ArrayLike = 0.0,
                     directions: Sequence[tuple[int, int]] = DIRECTIONS) -> tuple[list[ShiftResult], dict[str, Any]]:
    """Shift one image by ``pixels`` in each of ``directions`` and compare layer outputs.

    Args:
        x: one input (1, C, H, W), normalised. fill: value of uncovered pixels (scalar or
            (C,)); pass the normalised background, e.g. ``(0 - mean)/std``.
    Returns: (list of :class:`ShiftResult`, dict with "images" (S, C, H, W), "maps"
        (S, C', h, w), "map_layer" and "pooled_layer" names).
    """
    x = np.asarray(x.data if isinstance(x, Tensor) else x)
    images = Tensor(np.concatenate([shift(x, dy * pixels, dx * pixels, fill) for dy, dx in directions]))
    t = trace(model, images)  # one pass over all shifted images
    (map_name, rf, jump), pooled_name = _probe(t)
    maps, pooled_maps = t[map_name].values, t[pooled_name].values
    probs = t.probabilities()
    fmap0, pooled0 = maps[0], pooled_maps[0]
    margin = (pixels + max(rf)) // min(jump)  # where zero padding or the fill reaches in
    results = []
    for (dy, dx), fmap, pooled, p in zip(directions, maps, pooled_maps, probs):
        aligned, unaligned = _compare(fmap, fmap0, dy * pixels, dx * pixels, jump, margin)
        results.append(ShiftResult(dy * pixels, dx * pixels, aligned, unaligned,
                                   relative_change(fmap, fmap0), relative_change(pooled, pooled0),
                                   int(p.argmax()), float(p.max())))
    detail = {"images": images.data, "maps": maps,
              "map_layer": map_name, "pooled_layer": pooled_name}
    return results, detail


def invariance_table(results: Sequence[ShiftResult], class_names: Sequence[str] | None = None, map_layer: str = "",
                     pooled_layer: str = "") -> str:
    """The results as a plain-text table, one row per shift."""
    header = (f"{'shift (dy,dx)':>13}  {'map corr aligned':>16}  {'unaligned':>9}  "
              f"{'map change':>10}  {'pooled change':>13}  prediction")
    lines = [f"feature map: layer {map_layer}; pooled features: layer {pooled_layer}", header,
             "-" * len(header)]
    for r in results:
        name = class_names[r.predicted] if class_names else str(r.predicted)
        lines.append(f"{f'({r.dy:+d},{r.dx:+d})':>13}  {r.aligned_corr:16.3f}  {r.unaligned_corr:9.3f}  "
                     f"{r.map_change:10.3f}  {r.pooled_change:13.3f}  {name} ({r.probability:.2f})")
    return "\n".join(lines)


COLUMNS = (
    "shift (dy,dx): how far the image was moved, in pixels (down, right; negative: up, left)",
    "map corr aligned: correlation between the shifted image's feature map and the original map moved by the "
    "same amount (near 1: the map moved with the image; convolution is equivariant)",
    "unaligned: the same correlation with the original map left in place (lower: the map did move)",
    "map change: |shifted map - original map| / |original map|, unaligned",
    "pooled change: the same for the last pooling layer's output (smaller than map change: pooling absorbs some "
    "of the shift)",
    "prediction: the class predicted for the shifted image, and its probability",
)


def invariance_summary(results: Sequence[ShiftResult], class_names: Sequence[str] | None = None) -> str:
    """What the table shows, in words, from its own numbers: whether the prediction stayed."""
    def name(k):
        return class_names[k] if class_names else str(k)

    first = results[0]
    changed = [r for r in results[1:] if r.predicted != first.predicted]
    moved = sum(r.aligned_corr > r.unaligned_corr for r in results[1:])
    text = (f"The feature map moved with the image in {moved} of {len(results) - 1} shifts (aligned correlation "
            f"above unaligned). ")
    if not changed:
        return text + f"The prediction stayed {name(first.predicted)} for every shift."
    where = ", ".join(f"({r.dy:+d},{r.dx:+d}) -> {name(r.predicted)}" for r in changed)
    return text + (f"The prediction stayed {name(first.predicted)} for {len(results) - 1 - len(changed)} of "
                   f"{len(results) - 1} shifts and changed for {len(changed)}: {where}.")
