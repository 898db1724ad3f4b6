"""The pictures of ``convscope viz``: one titled uint8 image per view of a model and an input.

Each function returns ``[(file stem, image)]``; the caller chooses where to save them
(:func:`convscope.viz.render.save_png`). Titles say in plain words what is shown, with the
layer's name, type and shape (:mod:`convscope.viz.captions`); every colour picture has a key.

* filters: every conv layer's weights (:func:`convscope.viz.grids.filter_grid`), one
  labelled tile per filter (or filter x input channel), about ``TILE_PIXELS`` tall,
* features: every layer's output for one image: a labelled grid of its maps, or a bar
  chart of a 1-D output (the last layer's bars are named after the classes),
* top-k: the most probable classes,
* saliency and Grad-CAM,
* pooling: max, average and L2 pooling of the same feature map, side by side.

The functions that show an input take a model and the input x (1, C, H, W), or a
:class:`~convscope.trace.Trace` of it (then leave x out): :func:`all_pictures` traces the
model once, with gradients, and draws every picture from that one pass and one backward
pass of the predicted class's score.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..inference import top_k
from ..nn import Module
from ..summary import LayerRow, rows_of
from ..tensor import Tensor
from ..trace import Trace, as_trace
from . import captions, grids, render
from .activations import compare_pooling, conv_layers, first_pool_input, most_active_channel
from .saliency import grad_cam, saliency, saliency_map, traced

TILE_PIXELS = 80  # grids are enlarged (nearest neighbour) so tiles are at least this tall
INPUT_PIXELS = 112  # the input image and saliency panels are enlarged to about this size
MAX_WIDTH = 1080  # a grid wider than this is drawn with smaller tiles (to fit a report page)


def _scale(height, target=TILE_PIXELS):
    """The whole-number enlargement that makes ``height`` pixels at least ``target`` tall."""
    return max(1, math.ceil(target / max(height, 1)))


def grid_scale(tile_hw: tuple[int, int], ncols: int) -> int:
    """:func:`_scale` of a tile, reduced if ``ncols`` such tiles would be wider than MAX_WIDTH."""
    fits = (MAX_WIDTH // ncols - 1) // max(tile_hw[1], 1)
    return max(1, min(_scale(tile_hw[0]), fits))


def safe_name(name: str) -> str:
    """A layer name usable in a file name: ``stages.0.conv1`` -> ``stages.0.conv1``, ``""`` ->
    ``model``; anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "model"


def labelled_grid(tiles_hw: tuple[int, int], grid: np.ndarray, labels: Sequence[str], ncols: int,
                  scale: int) -> np.ndarray:
    """Write ``labels`` into the label bands of a grid made with ``label=render.LABEL_HEIGHT``."""
    boxes = [grids.label_box(i, tiles_hw, ncols, 1, scale, render.LABEL_HEIGHT) for i in range(len(labels))]
    return render.write_labels(grid, boxes, labels)


def weight_legend(weight: np.ndarray, mode: str) -> np.ndarray | None:
    """The colour key of a filter grid (None for RGB filters, which have no single scale)."""
    if mode == "norm":
        norms = np.sqrt((np.asarray(weight, np.float64) ** 2).sum(axis=1))
        return render.legend(grids.colour_ramp(grids.gray), [(0, captions.number(norms.min())),
                                                             (1, captions.number(norms.max()))], captions.NORM_KEY)
    if mode == "input" and weight.shape[1] == 3:
        return None
    limit = float(np.abs(weight).max())
    return render.legend(grids.colour_ramp(grids.diverging), [(0, captions.number(-limit)), (0.5, "0"),
                                                              (1, captions.number(limit))], captions.WEIGHT_KEY)


def grey_legend(lo: float, hi: float) -> np.ndarray:
    """The key of a grey picture scaled from ``lo`` (black) to ``hi`` (white)."""
    return render.legend(grids.colour_ramp(grids.gray), [(0, captions.number(lo)), (1, captions.number(hi))],
                         captions.ACTIVATION_KEY)


def heat_legend() -> np.ndarray:
    return render.legend(grids.colour_ramp(grids.heat), [(0, "none"), (1, "most")], captions.HEAT_KEY)


def with_key(image: np.ndarray, title: str, note: str, key: np.ndarray | None) -> np.ndarray:
    """``image`` titled, with its colour ``key`` (or none) underneath."""
    parts = [image] + ([key] if key is not None else [])
    return render.titled(grids.stack(parts, pad=6), title, note)


def filter_picture(name: str, weight: np.ndarray, first_layer: bool) -> np.ndarray:
    """The labelled, titled grid of one conv layer's weight (C_out, C_in, kH, kW)."""
    mode = grids.filter_mode(weight, first_layer)
    tiles, ncols = grids.filter_tiles(weight, mode)
    ncols = grids.grid_columns(len(tiles), ncols)
    scale = grid_scale(weight.shape[2:], ncols)
    grid = grids.tile(tiles, ncols=ncols, scale=scale, label=render.LABEL_HEIGHT)
    grid = labelled_grid(weight.shape[2:], grid, grids.filter_labels(weight, mode), ncols, scale)
    return with_key(grid, *captions.filter_title(name, weight, mode), weight_legend(weight, mode))


def filter_pictures(model: Module) -> list[tuple[str, np.ndarray]]:
    """One grid per conv layer: the first in the input's colours, deeper ones per channel or
    as norms (see :func:`convscope.viz.grids.filter_mode`)."""
    return [(f"filters_{safe_name(name)}", filter_picture(name, conv.weight.data, i == 0))
            for i, (name, conv) in enumerate(conv_layers(model))]


def maps_picture(fmaps: np.ndarray, title: str, note: str) -> np.ndarray:
    """Labelled grid of feature maps (C, H, W), one grey scale, with its key."""
    ncols = grids.grid_columns(len(fmaps))
    scale = grid_scale(fmaps.shape[1:], ncols)
    grid = grids.feature_grid(fmaps, scale=scale, label=render.LABEL_HEIGHT)
    grid = labelled_grid(fmaps.shape[1:], grid, [f"map {k}" for k in range(len(fmaps))], ncols, scale)
    return with_key(grid, title, note, grey_legend(fmaps.min(), fmaps.max()))


def output_picture(row: LayerRow, values: np.ndarray, class_names: Sequence[str] | None = None,
                   last: bool = False) -> np.ndarray:
    """One layer's output for one image: maps (C, H, W) as a grid, a vector (F,) as bars."""
    title, note = captions.output_title(row, last), captions.output_note(row, last)
    if values.ndim == 3:
        return maps_picture(values, title, note)
    values = values.ravel()
    named = last and class_names is not None and len(class_names) == values.size
    names = list(class_names) if named else ([str(k) for k in range(values.size)] if last else None)
    chart = render.plot_bars(values, names, int(values.argmax()) if last else None,
                             "score (logit)" if last else "value")
    return render.titled(chart, title, note)


def feature_pictures(model: Module | Trace, x: np.ndarray | Tensor | None = None, layers: Collection[str] | None = None,
                     class_names: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """One picture per layer (or per name in ``layers``) of its output for input x (1, C, H, W)."""
    t = as_trace(model, x)
    pictures = []
    for layer, row in zip(t.layers, rows_of(t)):
        if layers is None or layer.name in layers:
            picture = output_picture(row, layer.values[0], class_names, last=layer.index == len(t) - 1)
            pictures.append((f"features_{layer.index:02d}_{safe_name(layer.name)}", picture))
    return pictures


def input_picture(x: np.ndarray, mean: ArrayLike | None = None, std: ArrayLike | None = None,
                  scale: int | None = None) -> np.ndarray:
    """The input image (1, C, H, W) as uint8 RGB, enlarged to about ``INPUT_PIXELS``."""
    image = grids.to_uint8(grids.image_rgb(x[0], mean, std))
    return grids.enlarge(image, scale or _scale(image.shape[0], INPUT_PIXELS))


def prediction_picture(model: Module | Trace, x: np.ndarray | Tensor | None = None,
                       class_names: Sequence[str] | None = None, k: int = 5) -> list[tuple[str, np.ndarray]]:
    """Bar chart of the k most probable classes for x (1, C, H, W)."""
    best = top_k(as_trace(model, x).probabilities()[0], k)
    names = [class_names[c] if class_names else str(c) for c, _ in best]
    return [("topk", render.plot_top_k(names, [p for _, p in best]))]


def layer_placement(model: Module | Trace, x: np.ndarray | Tensor | None = None,
                    layer: str | None = None) -> tuple[tuple[float, float], tuple[int, int]]:
    """(start, jump) in input pixels of a layer's output map (see convscope.trace.Field)."""
    field = as_trace(model, x)[layer].field
    return field.start, field.jump


def panels(images: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    """uint8 images side by side on white, each under its short name."""
    return grids.side_by_side([render.titled(im, n, size=render.NOTE_SIZE) for im, n in zip(images, names)],
                              pad=8, background=grids.WHITE)


def saliency_picture(model: Module | Trace, x: np.ndarray | Tensor | None = None, mean: ArrayLike | None = None,
                     std: ArrayLike | None = None, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Input, saliency ``max_c |dz/dx|`` and the two overlaid, for the predicted class."""
    t = traced(model, x)
    image = grids.image_rgb(t.input.data[0], mean, std)
    scale = _scale(image.shape[0], INPUT_PIXELS)
    gradient, target = saliency(t)
    smap = grids.to_unit(saliency_map(gradient))
    row = panels([grids.enlarge(grids.to_uint8(im), scale) for im in (image, grids.heat(smap))]
                 + [grids.enlarge(grids.overlay(image, smap), scale)], ["input", "saliency", "overlay"])
    name = class_names[target] if class_names else str(target)
    note = (f"Which pixels, changed a little, would change the score of class {name} most "
            "(the gradient of that score with respect to each pixel, |dz/dx|).")
    return with_key(row, f"Saliency map: the pixels the class-{name} score is most sensitive to", note, heat_legend())


def gradcam_picture(model: Module | Trace, x: np.ndarray | Tensor | None = None, mean: ArrayLike | None = None,
                    std: ArrayLike | None = None, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Input, Grad-CAM map of the last conv layer placed over the pixels it sees, overlay."""
    t = traced(model, x)
    image = grids.image_rgb(t.input.data[0], mean, std)
    scale = _scale(image.shape[0], INPUT_PIXELS)
    cam, layer, target = grad_cam(t)
    place = layer_placement(t, layer=layer)  # each value over the input pixels it sees
    cam_big = grids.to_uint8(grids.heat(grids.to_unit(grids.resize(cam, image.shape[:2], *place))))
    row = panels([grids.enlarge(grids.to_uint8(image), scale), grids.enlarge(cam_big, scale),
                  grids.enlarge(grids.overlay(image, grids.to_unit(cam), 0.5, *place), scale)],
                 ["input", "Grad-CAM", "overlay"])
    name = class_names[target] if class_names else str(target)
    note = (f"Where layer {layer}'s {captions.shape_text(cam.shape)} feature maps hold the evidence for "
            f"class {name}: each map weighted by how much it raises the class score, summed, negatives dropped.")
    return with_key(row, f"Grad-CAM: where the network sees class {name}", note, heat_legend())


def saliency_pictures(model: Module | Trace, x: np.ndarray | Tensor | None = None, mean: ArrayLike | None = None,
                      std: ArrayLike | None = None,
                      class_names: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """``[("saliency", image), ("gradcam", image)]`` for the predicted class of x (1, C, H, W)."""
    t = traced(model, x)
    return [("saliency", saliency_picture(t, None, mean, std, class_names)),
            ("gradcam", gradcam_picture(t, None, mean, std, class_names))]


_POOLING_NAMES = {"max": "max pool", "average": "average pool", "L2": "L2 pool"}


def pooling_picture(model: Module | Trace, x: np.ndarray | Tensor | None = None, kernel_size: int = 2,
                    layer: str | None = None, channel: int | None = None) -> list[tuple[str, np.ndarray]]:
    """A feature map, then its max, average and L2 pooling, one shared grey scale, each shown
    at the map's display size. The map: channel ``channel`` (default: the most active) of
    layer ``layer``'s output (default: what enters the first pooling layer)."""
    t = as_trace(model, x)
    where = "of" if layer is not None else "entering"
    if layer is None:
        fmaps, layer = first_pool_input(t)
    else:
        fmaps = t[layer].values[0]
        if fmaps.ndim != 3:
            raise ValueError(f"layer {layer} gives {captions.shape_text(fmaps.shape)} values, not feature maps to pool")
    channel = most_active_channel(fmaps) if channel is None else channel
    if not 0 <= channel < len(fmaps):
        raise ValueError(f"layer {layer} has channels 0-{len(fmaps) - 1}, got channel {channel}")
    fmap = fmaps[channel]
    if min(fmap.shape) < kernel_size:
        raise ValueError(f"map {channel} of layer {layer} is {captions.shape_text(fmap.shape)}, smaller than "
                         f"the {kernel_size}x{kernel_size} pooling window")
    pooled = compare_pooling(fmap, kernel_size)
    arrays = [fmap] + list(pooled.values())
    lo, hi = min(a.min() for a in arrays), max(a.max() for a in arrays)
    scale = _scale(fmap.shape[0], INPUT_PIXELS)
    images = [grids.enlarge(grids.to_uint8(grids.gray(grids.to_unit(a, lo, hi))), scale * fmap.shape[0] // a.shape[0])
              for a in arrays]
    names = [f"map {captions.shape_text(fmap.shape)}"] + [f"{_POOLING_NAMES[k]} {captions.shape_text(a.shape)}"
                                                          for k, a in pooled.items()]
    k = f"{kernel_size}x{kernel_size}"
    note = (f"Map {channel} {where} layer {layer}, pooled three ways: each {k} window (stride {kernel_size}) "
            f"becomes one pixel — max keeps the strongest value, average the mean, L2 sqrt(sum of squares).")
    return [("pooling", with_key(panels(images, names), "Pooling compared: max, average and L2 on the same map",
                                 note, grey_legend(lo, hi)))]


def all_pictures(model: Module | Trace, x: ArrayLike | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, class_names: Sequence[str] | None = None,
                 k: int = 5, classifier: bool = True) -> list[tuple[str, np.ndarray]]:
    """Everything ``convscope viz`` writes, as ``[(file stem, uint8 image)]``: one forward pass
    (traced with gradients) and one backward pass, for the predicted class, in all.

    ``model`` may be a :func:`~convscope.trace.trace` of the input made with
    ``gradients=True`` (then leave ``x`` out): the pictures are drawn from it. A model that
    does not give one score per class (``classifier=False``: positions, masks, boxes) gets the
    filters, feature maps, input and pooling, without class probabilities, saliency or Grad-CAM.
    """
    t = traced(model, x)
    image = input_picture(t.input.data, mean, std)
    pictures = (filter_pictures(t.model) + feature_pictures(t, class_names=class_names)
                + [("input", render.titled(image, f"The input image ({captions.shape_text(t.input.shape[1:])})"))])
    if classifier:
        pictures += prediction_picture(t, None, class_names, k) + saliency_pictures(t, None, mean, std, class_names)
    return pictures + pooling_picture(t)
