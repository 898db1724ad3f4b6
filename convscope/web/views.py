"""JSON-ready answers built from library calls: the network's structure, one live update
(prediction and every layer's maps), a cell's arithmetic, and the look-inside pictures.

Feature maps travel as rasters (:mod:`.rasters`); pictures as PNG data URIs drawn by
:mod:`convscope.viz`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arithmetic
from ..explain import DEPTHS, explain
from ..heatmaps import sigmoid
from ..summary import example_input, rows_of, summary
from ..tasks import Detection, Positions, Segmentation, task_from_config
from ..tensor import Tensor
from ..trace import Trace, trace
from ..viz import boxes, gallery, grids
from ..viz.render import data_uri
from .catalog import Loaded
from .errors import WebError
from .inputs import Prepared, whole
from .rasters import raster


def _floats(values) -> list:
    return np.asarray(values, dtype=np.float64).round(6).tolist()


def traced(loaded: Loaded, x: np.ndarray, gradients: bool = False) -> Trace:
    """One recorded pass of the loaded model (one pass at a time per model)."""
    with loaded.lock:
        return trace(loaded.model, Tensor(x), gradients=gradients)


def _sources(t: Trace) -> dict[str, str | None]:
    """Which layer's output each layer reads ("input" for the image; None when its input
    was made between layers, e.g. a residual sum)."""
    made = {id(t.input): "input"}
    found = {}
    for layer in t.layers:
        found[layer.name] = made.get(id(layer.input)) if layer.input is not None else None
        made[id(layer.output)] = layer.name  # the latest maker: a pass-through layer (Dropout in eval) included
    return found


def _layer(row, source, layer) -> dict[str, Any]:
    window = layer.window
    return {"name": row.name, "kind": row.kind, "role": layer.module.role, "input": source,
            "input_shape": list(row.input_shape[1:]), "shape": list(row.output_shape[1:]),
            "params": row.params, "mult_adds": row.mult_adds, "arithmetic": row.arithmetic,
            "window": None if window is None else {"kernel": list(window.kernel), "stride": list(window.stride),
                                                   "dilation": list(window.dilation),
                                                   "padding": list(window.padding)},
            "field": None if layer.field is None else {"rf": list(layer.field.rf), "jump": list(layer.field.jump),
                                                       "start": list(layer.field.start)}}


def network(loaded: Loaded) -> dict[str, Any]:
    """The model as the page's overview draws it: a column per layer, shapes, parameters,
    connections; with the summary table and what the inputs are."""
    meta, model = loaded.meta, loaded.model
    t = traced(loaded, example_input(model, tuple(meta["input_shape"])))
    rows, sources = rows_of(t), _sources(t)
    channels = meta["input_shape"][0]
    return {"model": loaded.id, "name": meta.get("model") or type(model).__name__,
            "input_shape": list(meta["input_shape"]), "classes": _class_names(meta, t),
            "dataset": meta.get("dataset"), "preprocess": meta.get("preprocess"),
            "mean": meta.get("mean") or [0.0] * channels, "std": meta.get("std") or [1.0] * channels,
            "params": int(sum(p.size for p in model.parameters())),
            "layers": [_layer(row, sources[layer.name], layer) for row, layer in zip(rows, t.layers)],
            "summary": summary(model, tuple(meta["input_shape"]), rows)}


def _class_names(meta: dict[str, Any], t: Trace) -> list[str]:
    classes = t.output.shape[1]  # (N, C) scores, or (N, C, H, W) for a class per pixel
    names = list(meta.get("class_names") or [])
    return names if len(names) == classes else [str(k) for k in range(classes)]


def _input_picture(loaded: Loaded, x: np.ndarray, found: dict[str, Any] | None = None) -> str:
    """The prepared input as a picture; with a detector's ``found`` boxes, drawn on it 4 times larger."""
    channels = loaded.meta["input_shape"][0]
    rgb = grids.to_uint8(grids.image_rgb(x[0], loaded.meta.get("mean") or [0.0] * channels,
                                         loaded.meta.get("std") or [1.0] * channels))
    if found is not None:
        rgb = boxes.draw_boxes(rgb, [b["box"] for b in found["boxes"]], [b["label"] for b in found["boxes"]],
                               [b["score"] for b in found["boxes"]], found["classes"])
    return data_uri(rgb)


def update(loaded: Loaded, prepared: Prepared) -> dict[str, Any]:
    """One live update: the prepared input, the class probabilities and every layer's output."""
    t = traced(loaded, prepared.x)
    prediction = _prediction(loaded.meta, t)
    found = prediction if "boxes" in prediction else None
    return {"model": loaded.id,
            "input": {"picture": _input_picture(loaded, prepared.x, found), "notes": prepared.notes,
                      "label": prepared.label, "shape": list(prepared.x.shape[1:])},
            "prediction": prediction,
            "layers": [dict(raster(layer.values[0]), name=layer.name) for layer in t.layers]}


def _prediction(meta: dict[str, Any], t: Any) -> dict[str, Any]:
    """The class probabilities, or for a model that regresses a position its centre (x, y) in pixels."""
    task = task_from_config(meta.get("task"), num_classes=t.output.shape[1])
    if isinstance(task, Positions):
        return {"centre": _floats(task.predictions(t.output.data[:1])[0])}
    if isinstance(task, Segmentation):  # a class per pixel: the share of the image each class takes
        labels = task.predictions(t.output.data[:1])[0]
        shares = np.bincount(labels.ravel(), minlength=task.num_classes) / labels.size
        found = shares[1:].argmax() + 1 if task.num_classes > 1 and shares[1:].any() else 0  # past the background
        return {"classes": _class_names(meta, t), "probabilities": _floats(shares), "predicted": int(found),
                "per_pixel": True}
    if isinstance(task, Detection):  # boxes; each bar: the best score the class reaches in any grid cell
        return _detections(meta, task, t.output.data[:1])
    probabilities = t.probabilities()[0]
    return {"classes": _class_names(meta, t), "probabilities": _floats(probabilities),
            "predicted": int(probabilities.argmax())}


def _detections(meta: dict[str, Any], task: Detection, output: np.ndarray, min_score: float = 0.3) -> dict[str, Any]:
    """A detector's boxes of score ``min_score`` or more, and each class's best heatmap score."""
    k = task.num_classes
    best = sigmoid(output[0, :k]).reshape(k, -1).max(axis=1)
    names = list(meta.get("class_names") or [])
    names = names if len(names) == k else [str(c) for c in range(k)]
    found = task.detections(output)[0]
    strong = found["scores"] >= min_score
    return {"classes": names, "probabilities": _floats(best), "predicted": int(best.argmax()), "per_object": True,
            "boxes": [{"label": int(c), "score": round(float(s), 4), "box": _floats(b)}
                      for b, s, c in zip(found["boxes"][strong], found["scores"][strong], found["labels"][strong])]}


def _cell_index(body: dict[str, Any]) -> tuple[str, int, int | None, int | None]:
    layer, channel, y, x = (body.get(k) for k in ("layer", "channel", "y", "x"))
    if not isinstance(layer, str) or not whole(channel):
        raise WebError(f"expected \"layer\" (a layer name) and \"channel\" (an index), got {layer!r} and {channel!r}")
    if any(v is not None and not whole(v) for v in (y, x)):
        raise WebError(f"expected \"y\" and \"x\" to be whole numbers (or absent for a 1-D layer), got {y!r}, {x!r}")
    return layer, channel, y, x


def cell(loaded: Loaded, prepared: Prepared, body: dict[str, Any]) -> dict[str, Any]:
    """The arithmetic of one cell (:func:`convscope.arithmetic.cell`) for the prepared input."""
    layer, channel, y, x = _cell_index(body)
    t = traced(loaded, prepared.x)
    try:
        answer = arithmetic.cell(t, layer, channel, y, x)
    except (KeyError, ValueError, IndexError) as error:
        message = error.args[0] if error.args else str(error)
        raise WebError(str(message), 404) from None
    answer["classes"] = _class_names(loaded.meta, t)
    return answer


def filters(loaded: Loaded) -> dict[str, Any]:
    """Every conv layer's filters, as pictures."""
    return {"pictures": [{"name": name, "src": data_uri(image)}
                         for name, image in gallery.filter_pictures(loaded.model)]}


def saliency(loaded: Loaded, prepared: Prepared) -> dict[str, Any]:
    """Saliency and Grad-CAM of the predicted class for the prepared input."""
    meta, t = loaded.meta, traced(loaded, prepared.x, gradients=True)
    channels = meta["input_shape"][0]
    try:
        pictures = gallery.saliency_pictures(t, None, meta.get("mean") or [0.0] * channels,
                                             meta.get("std") or [1.0] * channels, _class_names(meta, t))
    except ValueError as error:  # e.g. Grad-CAM of a model without a conv layer
        raise WebError(str(error), 422) from None
    return {"pictures": [{"name": name, "src": data_uri(image)} for name, image in pictures]}


def pooling(loaded: Loaded, prepared: Prepared, body: dict[str, Any]) -> dict[str, Any]:
    """Max vs average vs L2 pooling of a chosen map (``layer``, ``channel``; default: the
    most active map entering the first pooling layer)."""
    layer, channel = body.get("layer"), body.get("channel")
    if (layer is not None and not isinstance(layer, str)) or (channel is not None and not whole(channel)):
        raise WebError(f"expected \"layer\" to be a layer name and \"channel\" an index, got {layer!r}, {channel!r}")
    t = traced(loaded, prepared.x)
    try:
        pictures = gallery.pooling_picture(t, layer=layer, channel=channel)
    except KeyError as error:
        raise WebError(str(error.args[0] if error.args else error), 404) from None
    except ValueError as error:
        raise WebError(str(error), 422) from None
    return {"pictures": [{"name": name, "src": data_uri(image)} for name, image in pictures]}


def explanation(loaded: Loaded, depth: Any) -> dict[str, Any]:
    """The ``convscope explain`` text (Markdown) at ``depth``."""
    if depth not in DEPTHS:
        raise WebError(f"expected depth to be one of {', '.join(DEPTHS)}, got {depth!r}")
    meta = loaded.meta
    with loaded.lock:  # explain traces the model
        text = explain(loaded.model, tuple(meta["input_shape"]), depth, meta.get("class_names"),
                       (meta.get("task") or {}).get("kind", "classification"))
    return {"depth": depth, "markdown": text}
