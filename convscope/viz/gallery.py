"""The pictures of ``convscope viz``: one titled uint8 image per view of a model and an input.

Each function returns ``[(file stem, image)]``; the caller chooses where to save them
(:func:`convscope.viz.render.save_png`). Titles name the layer and its shape.

* filters: every conv layer's weights (:func:`convscope.viz.grids.filter_grid`),
* features: every layer's output for one image, one grid per layer,
* top-k: the most probable classes,
* saliency and Grad-CAM,
* pooling: max, average and L2 pooling of the same feature map, side by side.
"""

import numpy as np

from ..summary import summarize
from . import grids, render
from .activations import capture_activations, compare_pooling, conv_layers, first_pool_input, most_active_channel
from .saliency import grad_cam, predict, saliency, saliency_map, top_k

TILE_PIXELS = 56  # grids are scaled up so tiles are about this tall


def _shape(shape):
    return "x".join(str(s) for s in shape)


def _scale(height, target=TILE_PIXELS):
    return max(1, target // max(height, 1))


def safe_name(name):
    """A layer name usable in a file name: ``stages.0.conv1`` -> ``stages.0.conv1``, ``""`` ->
    ``model``; anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "model"


def filter_pictures(model):
    """One grid per conv layer: the first in the input's colours, deeper ones per channel or
    as norms (see :func:`convscope.viz.grids.filter_mode`)."""
    pictures = []
    for i, (name, conv) in enumerate(conv_layers(model)):
        weight = conv.weight.data
        mode = grids.filter_mode(weight, first_layer=i == 0)
        grid = grids.filter_grid(weight, mode, scale=_scale(weight.shape[2], 40))
        title = f"{name} Conv2d weight {_shape(weight.shape)} ({mode})"
        pictures.append((f"filters_{safe_name(name)}", render.titled(grid, title)))
    return pictures


def feature_pictures(model, x, layers=None):
    """One grid per layer (or per name in ``layers``) of its output for input x (1, C, H, W)."""
    kinds = {name: type(m).__name__ for name, m in model.named_modules()}
    pictures = []
    for i, (name, out) in enumerate(capture_activations(model, x).items()):
        if layers is not None and name not in layers:
            continue
        fmaps = out[0]
        grid = grids.feature_grid(fmaps, scale=_scale(fmaps.shape[1] if fmaps.ndim == 3 else 8))
        title = f"{name} {kinds.get(name.split('#')[0], '')} output {_shape(fmaps.shape)}"
        pictures.append((f"features_{i:02d}_{safe_name(name)}", render.titled(grid, title)))
    return pictures


def input_picture(x, mean=None, std=None, scale=None):
    """The input image (1, C, H, W) as uint8 RGB, enlarged to about 112 pixels."""
    image = grids.to_uint8(grids.image_rgb(x[0], mean, std))
    return grids.enlarge(image, scale or _scale(image.shape[0], 112))


def prediction_picture(model, x, class_names=None, k=5):
    """Bar chart of the k most probable classes for x (1, C, H, W)."""
    probs = predict(model, x)[0]
    best = top_k(probs, k)
    names = [class_names[c] if class_names else str(c) for c, _ in best]
    return [("topk", render.plot_top_k(names, [p for _, p in best]))]


def layer_placement(model, x, layer):
    """(start, jump) in input pixels of a layer's output map (see convscope.summary.Field)."""
    row = next(r for r in summarize(model, x.shape) if r.name == layer)
    return row.start, row.jump


def saliency_pictures(model, x, mean=None, std=None, class_names=None):
    """Saliency (input, |gradient|, overlay) and Grad-CAM (input, map, overlay) panels."""
    image = grids.image_rgb(x[0], mean, std)
    scale = _scale(image.shape[0], 112)
    big = grids.enlarge(grids.to_uint8(image), scale)
    gradient, target = saliency(model, x)
    smap = grids.to_unit(saliency_map(gradient))
    name = class_names[target] if class_names else str(target)
    panel = grids.side_by_side([big, grids.enlarge(grids.to_uint8(grids.heat(smap)), scale),
                                grids.enlarge(grids.overlay(image, smap), scale)])
    cam, layer, _ = grad_cam(model, x, target)
    place = layer_placement(model, x, layer)  # each value over the input pixels it sees
    cam_big = grids.to_uint8(grids.heat(grids.to_unit(grids.resize(cam, image.shape[:2], *place))))
    cam_panel = grids.side_by_side([big, grids.enlarge(cam_big, scale),
                                    grids.enlarge(grids.overlay(image, grids.to_unit(cam), 0.5, *place), scale)])
    return [("saliency", render.titled(panel, f"saliency |dz/dx| for class {name}")),
            ("gradcam", render.titled(cam_panel, f"Grad-CAM at {layer} {_shape(cam.shape)} for class {name}"))]


def pooling_picture(model, x, kernel_size=2):
    """The most active channel entering the first pooling layer, then its max, average and
    L2 pooling, one shared grey scale, each shown at the input map's display size."""
    fmaps, layer = first_pool_input(model, x)
    channel = most_active_channel(fmaps)
    fmap = fmaps[channel]
    pooled = compare_pooling(fmap, kernel_size)
    lo, hi = min(fmap.min(), *(p.min() for p in pooled.values())), max(fmap.max(), *(p.max() for p in pooled.values()))
    scale = _scale(fmap.shape[0], 112)
    panels = [render.titled(grids.enlarge(grids.to_uint8(grids.gray(grids.to_unit(a, lo, hi))),
                                          scale * fmap.shape[0] // a.shape[0]), f"{label} {_shape(a.shape)}")
              for label, a in [("input", fmap)] + list(pooled.items())]
    title = (f"channel {channel} entering layer {layer}: max / average / L2 pooling, "
             f"{kernel_size}x{kernel_size} stride {kernel_size}")
    return [("pooling", render.titled(grids.side_by_side(panels), title))]


def all_pictures(model, x, mean=None, std=None, class_names=None, k=5):
    """Everything ``convscope viz`` writes, as ``[(file stem, uint8 image)]``."""
    return (filter_pictures(model) + feature_pictures(model, x)
            + [("input", input_picture(x, mean, std))]
            + prediction_picture(model, x, class_names, k)
            + saliency_pictures(model, x, mean, std, class_names) + pooling_picture(model, x))
