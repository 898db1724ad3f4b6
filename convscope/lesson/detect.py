"""The parts of a lesson that are particular to a grid detector (task kind "detection"): what
its output means per grid cell, how it learns (CenterNet's focal loss on Gaussian bumps plus
the L1 error of the box numbers) and how boxes are read off its heatmaps (peaks, boxes,
non-maximum suppression, scores). The other modules call these where they branch on the task.

Numbers here are marked ``grid`` (``classes=K``, ``boxes=4``, ``cells=Gh*Gw``, ``stride=S``:
checked against the last layer's output and the input), ``decode`` (``score_threshold=``,
``nms_iou=``, ``max_detections=``, ``neighbours=8``: the task's settings) and ``det``
(``count=``, ``top:KEY=``: the traced image's detections, checked by decoding its output again).

>>> import numpy as np
>>> from convscope.models import Detector
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.writing import Voice
>>> model = Detector(width=8, rng=np.random.default_rng(0))
>>> f = Facts(model, summarize(model, (1, 64, 64)), (1, 64, 64), "detection")
>>> plain(gives(f, Voice("technical")))
'per cell of a 16x16 grid (stride 4): 10 class scores + 4 box numbers'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..heatmaps import REGRESSION, peaks, sigmoid
from ..tasks import Detection
from .facts import Facts, formula, mark
from .plan import Block
from .writing import Voice

SETTINGS = ("score_threshold", "max_detections", "nms_iou")
HEADING = ("How it finds objects", "Detecting objects", "Output: heatmaps, peaks, boxes, NMS")


# ----- the task and its marked numbers -------------------------------------------------------
def task_of(f: Facts) -> Detection:
    """The detection task of the model in hand: K from its output, the settings of its model file."""
    settings = {k: f.task_settings[k] for k in SETTINGS if k in f.task_settings}
    return Detection(f.outputs - REGRESSION, f.input_shape[1:], **settings)


def grid(f: Facts, key: str) -> str:
    """``classes`` K, ``boxes`` 4, ``cells`` Gh*Gw, ``stride`` (image pixels per cell), ``size`` GhxGw."""
    gh, gw = f.rows[-1].output_shape[2:]
    values = {"classes": f.outputs - REGRESSION, "boxes": REGRESSION, "cells": gh * gw,
              "stride": f"{f.input_shape[1] / gh:g}", "size": f"{gh}x{gw}"}
    return mark("grid", "", f"{key}={values[key]}", values[key])


def decode_setting(f: Facts, key: str) -> str:
    """One of the decoding settings (``neighbours``: the 8 cells around a peak)."""
    value = 8 if key == "neighbours" else getattr(task_of(f), key)
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return mark("decode", "", f"{key}={shown}", shown)


def found(f: Facts) -> dict[str, np.ndarray] | None:
    """The traced image's detections (boxes, scores, labels; best first), or None without an image."""
    if f.trace is None or f.task != "detection":
        return None
    return task_of(f).detections(f.trace.output.data[:1])[0]


def top_peak(f: Facts) -> dict[str, Any]:
    """The highest peak of the traced image's heatmaps: class, cell, logit, score, box numbers."""
    out = np.asarray(f.trace.output.data[0], np.float64)
    k = f.outputs - REGRESSION
    heat = sigmoid(out[:k])
    label, row, col = np.unravel_index(int(np.argmax(np.where(peaks(heat), heat, 0.0))), heat.shape)
    dx, dy, log_w, log_h = out[k:, row, col]
    return {"label": int(label), "row": int(row), "col": int(col), "logit": out[label, row, col],
            "score": heat[label, row, col], "dx": dx, "dy": dy, "logw": log_w, "logh": log_h}


def det(key: str, value: object) -> str:
    shown = f"{value:.3g}" if isinstance(value, float) else str(value)
    return mark("det", "", f"{key}={shown}", shown)


# ----- what it gives -------------------------------------------------------------------------
def gives(f: Facts, v: Voice) -> str:
    """The intro's "it gives back ..."."""
    k, b, size, s = grid(f, "classes"), grid(f, "boxes"), grid(f, "size"), grid(f, "stride")
    return v(f"a {size} grid of answers, one per {s}x{s} patch of pixels: {k} class scores and {b} box numbers "
             "in each cell",
             f"a {size} grid, each cell covering {s}x{s} pixels and holding {k} class scores and {b} box "
             "coordinates",
             f"per cell of a {size} grid (stride {s}): {k} class scores + {b} box numbers")


def loss_words(v: Voice) -> str:
    L1 = formula("l1")
    return v(f"how far its class maps are from a soft bump at each object's centre, and how far its box "
             f"numbers are from the true box (their {L1} error)",
             f"the disagreement of the class heatmaps with Gaussian bumps at the objects' centres (a focal loss), "
             f"plus the {L1} error of the box offsets and log sizes at those centres",
             f"focal loss (heatmaps vs Gaussian bumps) + {L1} (offsets, log sizes at centres)")


def targets_block(f: Facts, v: Voice) -> Block:
    """How the detector learns: the targets of each cell and why the focal loss (learning section)."""
    k, b, cells, L1 = grid(f, "classes"), grid(f, "boxes"), grid(f, "cells"), formula("l1")
    text = v(f"What does it learn from? For every object, take its centre and find its cell. In that class's "
             f"map, the target there is {formula('one')}, and it falls off in a soft bump around it. Every other "
             f"cell's target is close to nothing. Most of your {cells} cells, in each of the {k} maps, hold no "
             "object, so the loss is a focal "
             "loss: it turns down the easy background cells and keeps your attention on the peaks. The "
             f"{b} box numbers are only learned at the centre cells, with a plain absolute ({L1}) error. You add both "
             "and divide by the number of objects.",
             f"The targets are constructed per object: its centre falls in one cell, where the heatmap of its "
             f"class has the target {formula('one')}, decaying around it as a Gaussian bump; all other targets are "
             f"near zero. As most of the {cells} cells of the {k} heatmaps contain no object, the heatmaps are "
             "trained with a focal loss, which down-weights the many easy background cells. The "
             f"{b} box quantities are trained only at the centre cells, with an {L1} error, and the sum of both "
             "terms is divided by the number of objects.",
             f"Targets per object: its centre cell = {formula('one')} in its class's heatmap, Gaussian bump "
             f"around, ≈ zero elsewhere ({cells} cells × {k} maps, mostly background ⇒ focal loss). {b} box numbers: "
             f"{L1} at centre cells only. Sum / number of objects.")
    return Block("learning", "learning.targets", 1.5, [("p", text)])


def loss_formulas() -> list[str]:
    return [formula("heat_sigmoid"), formula("bump"), formula("focal"), formula("l1_box"), formula("det_loss"),
            formula("focal_grad")]


def batch_lines() -> list[str]:
    return [formula("det_loss"), formula("focal_grad"), formula("l1_grad")]


# ----- how it predicts -----------------------------------------------------------------------
def output_text(f: Facts, v: Voice) -> str:
    last = f.layer(f.rows[-1])
    k, b, size, s = grid(f, "classes"), grid(f, "boxes"), grid(f, "size"), grid(f, "stride")
    eight, t, iou = decode_setting(f, "neighbours"), decode_setting(f, "score_threshold"), decode_setting(f, "nms_iou")
    return v(f"Layer {last} gives you {f.classes()} numbers for each cell of a {size} grid, one cell per {s}x{s} "
             f"pixels: {k} class scores and {b} box numbers. A sigmoid turns each class score into a chance "
             f"between zero and one on its own, not a softmax, because a cell may hold no object at all. A cell that "
             f"beats its {eight} neighbours is a peak: the centre of an object. Its {b} box numbers tell you where "
             f"in the cell the centre sits and how wide and tall the box is. You drop peaks scoring under {t}, and "
             f"when two boxes of one class overlap by more than {iou} (IoU), you keep the better one. The score "
             "of each box is how sure the network is.",
             f"Layer {last} yields {f.classes()} values for each cell of a {size} grid, each cell covering "
             f"{s}x{s} pixels: {k} class scores and {b} box quantities. Each class score is passed through a "
             "sigmoid independently, rather than a softmax, since a cell may contain no object. A cell no lower "
             f"than its {eight} neighbours is a peak, taken as an object's centre, and its {b} box quantities give "
             f"the centre's position within the cell and the box's width and height. Peaks scoring below {t} are "
             f"discarded, and of two boxes of one class overlapping by an IoU above {iou} only the higher-scoring "
             "is kept (non-maximum suppression); each box's score expresses the confidence.",
             f"Layer {last}: {f.classes()} per cell, {size} grid ({s} px/cell) = {k} class logits + {b} box numbers. "
             f"σ per class (no softmax). Peak = ≥ its {eight} neighbours → object centre; box numbers → "
             f"offset, size. Keep score ≥ {t}; NMS per class at IoU > {iou}; score = confidence.")


def channels_lead(f: Facts, v: Voice) -> str:
    k, b = grid(f, "classes"), grid(f, "boxes")
    return v(f"The scores before the sigmoid are logits. Your last layer gives {f.classes()} channels per cell: "
             f"the first {k} are the class heatmaps, the last {b} are dx, dy, log w and log h:",
             f"The scores before the sigmoid are known as logits; the last layer gives {f.classes()} channels per "
             f"cell, the first {k} being the class heatmaps and the last {b} the offsets dx, dy and the log "
             "sizes log w, log h:",
             f"Head → {f.classes()} channels/cell: {k} heatmap logits, then {b}: dx, dy, log w, log h:")


def decode_math(f: Facts, v: Voice) -> list[str]:
    t, iou, most = (decode_setting(f, k) for k in ("score_threshold", "nms_iou", "max_detections"))
    return [formula("heat_sigmoid"), formula("peak"), formula("box_decode"),
            f"keep the {most} highest peaks with p ≥ {t}", f"{formula('nms')},  t = {iou}", formula("iou")]


def image_text(f: Facts, v: Voice) -> str | None:
    boxes = found(f)
    if boxes is None:
        return None
    count, t = det("count", len(boxes["scores"])), decode_setting(f, "score_threshold")
    if not len(boxes["scores"]):
        return v(f"For your image, no peak reaches {t}: it finds nothing.",
                 f"For the traced image no peak reaches {t}, so nothing is detected.",
                 f"Traced image: no peak ≥ {t} → no box.")
    top = top_peak(f)
    best, score = f.class_name(top["label"]), det("top:score", top["score"])
    return v(f"For your image, it finds {count} boxes scoring at least {t}. The best is a {best}, at {score}. "
             "An untrained or unsure network gives many weak boxes, so look at the scores.",
             f"For the traced image it finds {count} boxes with a score of at least {t}, the best being of class "
             f"{best} with a score of {score}; many weak boxes indicate an untrained or uncertain network.",
             f"Traced image: {count} boxes ≥ {t}; best: class {best}, score {score}.")


def worked(f: Facts, v: Voice) -> list[Block]:
    """The best box of the traced image, from its cell's logit to its corners."""
    boxes = found(f)
    if boxes is None or not len(boxes["scores"]):
        return []
    top, s = top_peak(f), grid(f, "stride")
    row, col, z, p = (det(f"top:{key}", top[key]) for key in ("row", "col", "logit", "score"))
    dx, dy, lw, lh = (det(f"top:{key}", top[key]) for key in ("dx", "dy", "logw", "logh"))
    corners = det("top:box", ", ".join(f"{x:.1f}" for x in boxes["boxes"][0]))
    name = f.class_name(top["label"])
    text = v(f"Let's read the best box by hand. The highest peak is in the map of class {name}, at row {row}, "
             f"column {col} of the grid. Its logit is {z}, and the sigmoid makes that {p}. The cell's box numbers "
             f"are dx {dx}, dy {dy}, log w {lw} and log h {lh}. Add the offsets to the cell, take e to the log "
             f"sizes, multiply by the stride of {s}, and you get the box ({corners}) in pixels.",
             f"A worked example: the highest peak lies in the heatmap of class {name}, at row {row}, column {col} "
             f"of the grid; its logit {z} gives, through the sigmoid, the score {p}. The box quantities of that "
             f"cell are dx = {dx}, dy = {dy}, log w = {lw} and log h = {lh}; adding the offsets to the cell, "
             f"exponentiating the log sizes and multiplying by the stride {s} gives the box ({corners}) in pixels.",
             f"Worked: top peak class {name}, cell (row {row}, col {col}); z = {z} → p = σ(z) = {p}; dx {dx}, "
             f"dy {dy}, log w {lw}, log h {lh}; × stride {s} → box ({corners}) px.")
    return [Block("predictions", "predictions.worked", 5.6, [("p", text)])]
