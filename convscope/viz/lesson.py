"""The pictures a lesson asks for, drawn from the model itself, and the lesson as HTML with them.

A :class:`~convscope.lesson.plan.Lesson` names its pictures (``Lesson.pictures()``):
``input`` (the traced image), ``filters:LAYER`` (a conv layer's weights), ``features:LAYER``
(that layer's maps for the traced image), ``pooling`` (max, average and L2 pooling of one of
its maps), ``prediction`` (the most probable classes), ``boxes`` (a detector's boxes drawn
on the image) and ``curve`` (loss and accuracy per epoch from the run's metrics).
:func:`lesson_pictures` draws those it can: the ones of an image need the lesson to have been
built with one; the curve needs a run's metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..lesson import Lesson, to_html
from ..nn import Module
from . import boxes, gallery, grids, render

CAPTIONS = {"input": "The image the lesson follows through the network",
            "prediction": "What the network says about that image: its most probable classes",
            "curve": "Loss and accuracy after every epoch of this run (train and validation)",
            "pooling": "One feature map pooled three ways: max, average and L2",
            "boxes": "The boxes the network finds on that image, with class and score (those scoring 0.3 or "
                     "more; when none does, its three best)"}
STRONG = 0.3  # a box this sure is drawn; below it, only the best few (an untrained detector's boxes are weak)


def boxes_image(lesson: Lesson, mean: Sequence[float] | None, std: Sequence[float] | None,
                class_names: Sequence[str] | None) -> np.ndarray | None:
    """The traced image with the detector's boxes on it (None when the lesson found none)."""
    found = lesson.found
    if found is None or not len(found["scores"]):
        return None
    strong = found["scores"] >= STRONG
    keep = strong if strong.any() else np.arange(len(found["scores"])) < 3
    image = grids.to_uint8(grids.image_rgb(lesson.trace.input.data[0], mean, std))
    return boxes.draw_boxes(image, found["boxes"][keep], found["labels"][keep], found["scores"][keep],
                            class_names)


def filters_image(model: Module, layer: str) -> np.ndarray:
    convs = [name for name, m in model.named_modules() if m.role == "conv"]
    module = dict(model.named_modules())[layer]
    return gallery.filter_picture(layer, module.weight.data, bool(convs) and convs[0] == layer)


def picture(name: str, lesson: Lesson, model: Module, metrics: Sequence[Mapping[str, Any]],
            mean: Sequence[float] | None, std: Sequence[float] | None,
            class_names: Sequence[str] | None) -> tuple[np.ndarray, str] | None:
    """One named picture and its caption, or None when the lesson has nothing to draw it from."""
    kind, _, layer = name.partition(":")
    t = lesson.trace
    if kind == "filters":
        return filters_image(model, layer), f"The filters of layer {layer}, as learned"
    if kind == "curve":
        return (render.plot_curves(metrics), CAPTIONS["curve"]) if metrics else None
    if t is None:
        return None
    if kind == "input":
        return render.titled(gallery.input_picture(t.input.data, mean, std), "Input"), CAPTIONS["input"]
    if kind == "features":
        (_, image), = gallery.feature_pictures(t, layers={layer}, class_names=class_names)
        return image, f"The feature maps of layer {layer} for that image"
    if kind == "pooling":
        (_, image), = gallery.pooling_picture(t)
        return image, CAPTIONS["pooling"]
    if kind == "boxes":
        image = boxes_image(lesson, mean, std, class_names)
        return None if image is None else (image, CAPTIONS["boxes"])
    if kind == "prediction":
        (_, image), = gallery.prediction_picture(t, None, class_names, k=5)
        return image, CAPTIONS["prediction"]
    raise ValueError(f"unknown lesson picture {name!r}; expected input, filters:LAYER, features:LAYER, pooling, "
                     "prediction, boxes or curve")


def lesson_pictures(lesson: Lesson, model: Module, metrics: Sequence[Mapping[str, Any]] = (),
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                    class_names: Sequence[str] | None = None) -> dict[str, tuple[str, str]]:
    """``{name: (PNG data URI, caption)}`` for each picture the lesson asks for and can have."""
    drawn = {}
    for name in lesson.pictures():
        found = picture(name, lesson, model, metrics, mean, std, class_names)
        if found is not None:
            drawn[name] = (render.data_uri(found[0]), found[1])
    return drawn


def lesson_html(lesson: Lesson, model: Module, metrics: Sequence[Mapping[str, Any]] = (),
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                class_names: Sequence[str] | None = None) -> str:
    """The lesson as one HTML page with its pictures inline."""
    return to_html(lesson, lesson_pictures(lesson, model, metrics, mean, std, class_names))
