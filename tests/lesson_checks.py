"""Reading a lesson's HTML back: every marked number, and the text that is not a number.

``check_fact`` recomputes each number from an independent summary of the model (and from the
run, the trace or a real layer where the number comes from there) without the lesson's own
formatting code, so a number the lesson wrote wrongly fails.
"""

from html.parser import HTMLParser

import numpy as np

from convscope import nn
from convscope.arithmetic import cell
from convscope.tasks import Detection
from convscope.tensor import Tensor

SHOWN_IS_VALUE = {"in", "out", "h", "params", "weights", "dense", "rf", "jump", "arith", "macs", "taps", "layer",
                  "total", "model", "input", "pred", "logit", "loss", "run", "config", "acts", "kib", "minutes", "wpm",
                  "kind", "w"}


class LessonPage(HTMLParser):
    """Collects ``facts`` [(kind, layer, value, shown)], ``sections`` and ``prose`` (the text
    outside facts, figure captions, notes, the page title and style)."""

    def __init__(self, text):
        super().__init__()
        self.facts, self.sections, self.prose, self.figures = [], [], [], []
        self._stack, self._fact = [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        skip = tag in ("figcaption", "style", "title") or "note" in (attrs.get("class") or "")
        self._stack.append((tag, skip))
        if tag == "section":
            self.sections.append(attrs["data-section"])
        if tag == "figure":
            self.figures.append(attrs["data-picture"])
        if tag == "span" and attrs.get("class") == "fact":
            self._fact = [attrs["data-kind"], attrs["data-layer"], attrs["data-value"], ""]

    def handle_endtag(self, tag):
        if self._fact is not None and tag == "span":
            self.facts.append(tuple(self._fact))
            self._fact = None
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if self._fact is not None:
            self._fact[3] += data
        elif not any(skip for _, skip in self._stack):
            self.prose.append(data)


def dims(shape):
    return "x".join(str(v) for v in shape)


def field(value):
    if value is None:
        return "the whole image"
    return f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}x{value[1]:g}"


def metric(key, value):
    if key.endswith("_acc"):
        return f"{value:.2%}"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def probability(p):
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def attribute_ok(module, name, shown):
    if name.endswith("]"):  # one axis of a pair: kernel_size[0]
        name, axis = name[:-1].split("[")
        return shown == str(getattr(module, name)[int(axis)])
    value = getattr(module, name)
    if isinstance(value, tuple):
        return shown == dims(value) or (len(set(value)) == 1 and shown == str(value[0]))
    return shown in (str(value), f"{value:g}" if isinstance(value, float) else str(value))


def whatif(row, key):
    """The output height of the row's conv rebuilt with other padding and stride: a real layer's output."""
    settings, part = key.split(":")
    p, s = (int(kv.split("=")[1]) for kv in settings.split(","))
    m = row.module
    if part in ("p", "s", "h", "k"):
        return {"p": p, "s": s, "h": row.input_shape[2], "k": m.kernel_size[0]}[part]
    conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, stride=s, padding=p)
    return conv(Tensor(np.zeros(row.input_shape, np.float32))).shape[2]


def cell_value(found, path):
    for part in path.split("."):
        found = found[int(part)] if isinstance(found, list) else found[part]
    return found


def check_cell(lesson, layer, value, shown):
    where, rest = value.split(":", 1)
    found = cell(lesson.trace, layer, *(int(v) for v in where.split(",")))
    if rest == "products":
        grid = np.asarray(found["products"], np.float64)[0]
        return shown == "\n".join("  ".join(f"{v:+.3f}" for v in line) for line in grid)
    path, number = rest.split("=")
    expected = cell_value(found, path)
    text = f"{expected:.4g}" if isinstance(expected, float) else dims(expected) if isinstance(expected, list) \
        else str(expected)
    return number == text == shown


def grid_fact(value, rows, request):
    """A grid detector's K, 4, cells, stride or grid size, from the last layer's output (N, K + 4, Gh, Gw)."""
    key, shown = value.split("=")
    channels, gh, gw = list(rows.values())[-1].output_shape[1:]
    expected = {"classes": channels - 4, "boxes": 4, "cells": gh * gw, "size": f"{gh}x{gw}",
                "stride": f"{request['input_shape'][1] / gh:g}"}
    return shown == str(expected[key])


def decode_fact(value):
    """The decoding settings: a Detection task's defaults, and the 8 neighbours of a 3x3 window."""
    key, shown = value.split("=")
    task = Detection(1, (8, 8))
    expected = {"neighbours": 3 * 3 - 1, "score_threshold": task.score_threshold, "nms_iou": task.nms_iou,
                "max_detections": task.max_detections}[key]
    return shown == (f"{expected:g}" if isinstance(expected, float) else str(expected))


def highest_peak(output):
    """(class, row, col) of the highest heatmap value no lower than its 8 neighbours, by loops."""
    heat = 1 / (1 + np.exp(-np.asarray(output[:-4], np.float64)))
    k, h, w = heat.shape
    best, where = -1.0, None
    for c in range(k):
        for i in range(h):
            for j in range(w):
                around = heat[c, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
                if heat[c, i, j] >= around.max() and heat[c, i, j] > best:
                    best, where = heat[c, i, j], (c, i, j)
    return where, heat


def detection_fact(lesson, value, shown, request):
    """The traced image's detections: their count, and the highest peak read off the output by hand."""
    key, number = value.split("=", 1)
    output = np.asarray(lesson.trace.output.data[0], np.float64)
    _, height, width = request["input_shape"]
    found = Detection(output.shape[0] - 4, (height, width)).detections(output[None])[0]
    if key == "count":
        return number == shown == str(len(found["scores"]))
    (c, i, j), heat = highest_peak(output)
    stride = height / output.shape[1]
    dx, dy, log_w, log_h = output[-4:, i, j]
    cx, cy = (j + dx) * stride, (i + dy) * stride
    half_w, half_h = np.exp(log_w) * stride / 2, np.exp(log_h) * stride / 2
    box = [min(max(v, 0), side) for v, side in ((cx - half_w, width), (cy - half_h, height), (cx + half_w, width),
                                                 (cy + half_h, height))]
    expected = {"top:row": str(i), "top:col": str(j), "top:logit": f"{output[c, i, j]:.3g}",
                "top:score": f"{heat[c, i, j]:.3g}", "top:dx": f"{dx:.3g}", "top:dy": f"{dy:.3g}",
                "top:logw": f"{log_w:.3g}", "top:logh": f"{log_h:.3g}",
                "top:box": ", ".join(f"{v:.1f}" for v in box)}[key]
    return number == shown == expected and int(found["labels"][0]) == c


def values(row):
    """How many numbers a layer outputs per image."""
    return int(np.prod(row.output_shape[1:]))


def model_fact(kind, layer, value, rows, model):
    """True/False for a number about the model itself, None when ``kind`` is not one of those."""
    row = rows.get(layer)
    total = sum(p.size for p in model.parameters())
    every = list(rows.values())
    simple = {"in": lambda: dims(row.input_shape[1:]), "out": lambda: dims(row.output_shape[1:]),
              "h": lambda: str(row.output_shape[2] if len(row.output_shape) == 4 else row.output_shape[1]),
              "w": lambda: str(row.output_shape[3]),
              "params": lambda: f"{row.params:,}", "weights": lambda: f"{row.weights:,}",
              "dense": lambda: f"{row.dense_weights:,}", "rf": lambda: field(row.receptive_field),
              "jump": lambda: field(row.jump), "arith": lambda: row.arithmetic, "kind": lambda: row.kind,
              "macs": lambda: f"{row.mult_adds if row else sum(r.mult_adds for r in every):,}",
              "taps": lambda: f"{row.weights // row.module.out_channels:,}", "layer": lambda: layer,
              "total": lambda: f"{total:,}", "model": lambda: type(model).__name__,
              "acts": lambda: f"{values(row) if row else sum(values(r) for r in every):,}",
              "kib": lambda: f"{sum(int(np.prod(r.output_shape[1:])) for r in every) * 4 / 1024:,.1f}"}
    if kind in simple:
        return value == simple[kind]()
    if kind == "attr":
        name, shown = value.split("=")
        return attribute_ok(row.module, name, shown)
    if kind in ("count", "share", "macshare"):
        role, shown = value.split("=")
        chosen = every if role == "all" else [r for r in every if r.module.role == role]
        if kind == "count":
            return shown == str(len(chosen))
        part, whole = ((sum(r.params for r in chosen), total) if kind == "share" else
                       (sum(r.mult_adds for r in chosen), sum(r.mult_adds for r in every)))
        return shown == f"{100 * part / whole:.1f}%"
    if kind == "wstat":
        name, shown = value.split("=")
        w = np.asarray(row.module.weight.data, np.float64)
        fan_in = int(np.prod(w.shape[1:]))
        stats = {"fan_in": str(fan_in), "bound": f"{1 / np.sqrt(fan_in):.3g}", "std": f"{w.std():.3g}",
                 "min": f"{w.min():.3g}", "max": f"{w.max():.3g}"}
        return shown == stats[name]
    if kind == "whatif":
        return value.rsplit(":", 1)[1] in ("p", "s", "h", "k", "out") and whatif(row, value) is not None
    return None


def check_fact(fact, lesson, model, rows, request, *, class_names=None, metrics=(), config=None):
    """Whether one (kind, layer, value, shown) of a lesson's HTML is right."""
    from convscope.lesson.facts import FORMULAS
    kind, layer, value, shown = fact
    if kind in SHOWN_IS_VALUE and shown != value:
        return False
    found = model_fact(kind, layer, value, rows, model)
    if found is not None:
        return found if kind != "whatif" else shown == str(whatif(rows[layer], value))
    probs = lesson.trace.probabilities()[0] if lesson.trace is not None else None
    if kind == "input":
        shape = request["input_shape"]
        return value == (dims(shape) if layer == "" else str(shape["chw".index(layer)]))
    if kind == "classes":
        return value == (str(list(rows.values())[-1].output_shape[1]) if layer == "" else
                         (class_names[int(layer)] if class_names else layer))
    if kind == "formula":
        return shown == FORMULAS[value]
    if kind == "minutes":
        return value == f"{request['minutes']:g}"
    if kind == "wpm":
        return value == "200"
    if kind == "run":
        key, epoch = layer.split("@")
        record = next(m for m in metrics if str(m["epoch"]) == epoch)
        return value == metric(key, record[key])
    if kind == "config":
        setting = config[layer]
        return value == (f"{setting:g}" if isinstance(setting, float) else str(setting))
    if kind == "pred":
        return value == probability(float(probs[int(layer)]))
    if kind == "logit":
        return value == f"{lesson.trace.output.data[0][int(layer)]:.3f}"
    if kind == "loss":
        return value == f"{-np.log(float(probs[int(layer)])):.4g}"
    if kind == "grad":
        k, j = (int(v) for v in layer.split(":"))
        return value == f"{float(probs[j]) - (j == k):.3g}"
    if kind == "zeros":
        return value == f"{float((lesson.trace[layer].values == 0).mean()):.1%}"
    if kind == "cell":
        return check_cell(lesson, layer, value, shown)
    if kind == "grid":
        return value.split("=")[1] == shown and grid_fact(value, rows, request)
    if kind == "decode":
        return value.split("=")[1] == shown and decode_fact(value)
    if kind == "det":
        return detection_fact(lesson, value, shown, request)
    raise AssertionError(f"a fact of unknown kind {kind!r}: {fact}")
