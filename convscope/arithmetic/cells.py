"""One cell of any layer: fully connected, pointwise and softmax cells, and :func:`cell`,
which picks the explanation by the layer's class (convolution and pooling: :mod:`.windowed`)."""

from __future__ import annotations

import functools

import numpy as np

from .. import nn
from ..explain import own_words
from ..trace import Layer, Trace
from . import resizing, windowed
from .locate import CellError, field_box, find, input_name, number, of_input, position, producer, whole


# ----- fully connected ----------------------------------------------------------------------
def _flattened_from(t: Trace, layer: Layer) -> Layer | None:
    """The Flatten layer that made ``layer``'s input, looking through identity layers
    (Dropout in eval mode returns its input itself); None if there is none."""
    source = producer(t, layer)
    while source is not None and source.output is source.input:
        source = producer(t, source)
    flat = source is not None and type(source.module) is nn.Flatten and len(source.output_shape) == 2
    return source if flat else None


def linear(t: Trace, layer: Layer, pos: tuple, top: int = 10) -> dict:
    """Unit ``channel``: every input times its weight, summed, plus bias; the ``top`` largest
    products by size are listed, the ``rest`` is the sum of the others."""
    m, (n, unit) = layer.module, pos
    inputs = layer.input.data[n].astype(np.float64)
    weights = m.weight.data[unit].astype(np.float64)
    products = inputs * weights
    shown = np.argsort(-np.abs(products), kind="stable")[:top]
    flatten = _flattened_from(t, layer)
    sources = np.unravel_index(shown, flatten.input_shape[1:]) if flatten else None
    rows = [{"index": int(k), "input": float(inputs[k]), "weight": float(weights[k]), "product": float(products[k])}
            | ({"source": [int(s[r]) for s in sources]} if flatten else {}) for r, k in enumerate(shown)]
    total, rest = float(products.sum()), float(np.delete(products, shown).sum())
    bias = 0.0 if m.bias is None else float(m.bias.data[unit])
    text = (f"Unit {unit} multiplied each of its {len(inputs)} inputs by its weight and added the products: "
            f"{number(total)} (the {len(shown)} largest are shown, the other {len(inputs) - len(shown)} add "
            f"{number(rest)}){f', plus bias {number(bias)}' if m.bias is not None else ', no bias'} = "
            f"{number(float(layer.values[pos]))}.")
    keys = {"unit": unit, "inputs_count": len(inputs), "contributions": rows, "sum": total, "rest": rest,
            "bias": bias, "text": text}
    if flatten:
        keys["flattened_from"] = {"layer": flatten.name, "map_layer": input_name(t, flatten),
                                  "shape": list(flatten.input_shape[1:])}
    return keys


# ----- one value in, one value out ------------------------------------------------------------
_ACTIVATIONS = {nn.ReLU: "max(0, x)", nn.LeakyReLU: "x if x > 0 else negative_slope*x",
                nn.Sigmoid: "1 / (1 + exp(-x))", nn.Tanh: "tanh(x)"}


def activation(t: Trace, layer: Layer, pos: tuple) -> dict:
    m, value = layer.module, float(layer.values[pos])
    keys = {"function": type(m).__name__, "formula": _ACTIVATIONS[type(m)], "input": float(layer.input.data[pos])}
    if type(m) is nn.LeakyReLU:
        keys["negative_slope"] = m.negative_slope
    keys["text"] = (f"{keys['function']} turned {number(keys['input'])} from {of_input(t, layer)} into "
                    f"{number(value)}: {keys['formula']}.")
    return keys


def batchnorm(t: Trace, layer: Layer, pos: tuple) -> dict:
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` with the running statistics (a trace
    runs in eval mode)."""
    m, c = layer.module, pos[1]
    x, mean, var = float(layer.input.data[pos]), float(m.running_mean[c]), float(m.running_var[c])
    gamma = 1.0 if m.weight is None else float(m.weight.data[c])
    beta = 0.0 if m.bias is None else float(m.bias.data[c])
    std = float(np.sqrt(var + m.eps))
    normalized = (x - mean) / std
    text = (f"Batch norm standardised {number(x)} with channel {c}'s running mean {number(mean)} and variance "
            f"{number(var)}: ({number(x)} - {number(mean)}) / sqrt({number(var)} + {m.eps:g}) = {number(normalized)}, "
            f"then scaled by {number(gamma)} and shifted by {number(beta)}: {number(normalized * gamma + beta)}.")
    return {"channel": c, "x": x, "mean": mean, "var": var, "eps": m.eps, "std": std, "normalized": normalized,
            "gamma": gamma, "beta": beta, "text": text}


def softmax_pieces(logits: np.ndarray) -> dict:
    """The softmax of a vector of logits, step by step, in float64::

        p_k = exp(z_k - max z) / sum_j exp(z_j - max z)

    Returns ``{"logits", "max", "shifted", "exps", "sum", "probabilities"}``.

    >>> softmax_pieces(np.array([1.0, 1.0]))["probabilities"]
    [0.5, 0.5]
    """
    z = np.asarray(logits, dtype=np.float64)
    shifted = z - z.max()
    exps = np.exp(shifted)
    return {"logits": z.tolist(), "max": float(z.max()), "shifted": shifted.tolist(), "exps": exps.tolist(),
            "sum": float(exps.sum()), "probabilities": (exps / exps.sum()).tolist()}


def softmax(t: Trace, layer: Layer, pos: tuple) -> dict:
    """A Softmax layer's cell: the pieces of the softmax of its input along ``dim``."""
    dim = layer.module.dim % len(pos)
    along = tuple(slice(None) if axis == dim else at for axis, at in enumerate(pos))
    pieces, k = softmax_pieces(layer.input.data[along]), pos[dim]
    text = (f"Softmax along axis {dim} took each of its {len(pieces['logits'])} inputs less their max "
            f"{number(pieces['max'])}, exponentiated them and divided by their sum: "
            f"exp({number(pieces['shifted'][k])}) / {number(pieces['sum'])} = {number(pieces['probabilities'][k])}.")
    return dict(pieces, dim=dim, position=k, text=text)


def output_softmax(t: Trace, pos: tuple) -> dict:
    """The probabilities :meth:`~convscope.trace.Trace.probabilities` gives for the image
    (and pixel) of ``pos``, piece by piece, with the class ``cls`` of the cell."""
    pieces = softmax_pieces(t.output.data[(pos[0], slice(None)) + pos[2:]])
    k, best = pos[1], int(np.argmax(pieces["probabilities"]))
    pieces.update(cls=k, probability=pieces["probabilities"][k], predicted=best,
                  text=f"As the model's output, logit {number(pieces['logits'][k])} of class {k} becomes probability "
                       f"exp({number(pieces['shifted'][k])}) / {number(pieces['sum'])} = "
                       f"{number(pieces['probabilities'][k])}; the predicted class is {best}.")
    return pieces


def flatten(t: Trace, layer: Layer, pos: tuple) -> dict:
    source = [int(s) for s in np.unravel_index(pos[1], layer.input_shape[1:])]
    return {"source": source, "text": f"Flatten copied the value at {tuple(source)} of {of_input(t, layer)} to "
                                      f"position {pos[1]}: {number(layer.values[pos])}."}


def other(t: Trace, layer: Layer, pos: tuple) -> dict:
    m = layer.module
    words = own_words(m).replace("``", "")
    return {"text": f"Layer {layer.name!r} ({type(m).__name__}: {words}) gave {number(layer.values[pos])} here; "
                    "its arithmetic is not broken down."}


def then(t: Trace, layer: Layer, pos: tuple) -> dict | None:
    """The activation applied next, when the first later layer that reads this output is one."""
    after = next((e for e in t.layers[layer.index + 1:] if e.input is layer.output), None)
    if after is None or type(after.module) not in _ACTIVATIONS or after.output_shape != layer.output_shape:
        return None
    value, function = float(after.values[pos]), type(after.module).__name__
    return {"layer": after.name, "kind": "activation", "function": function, "value": value,
            "text": f"Then {function} (layer {after.name!r}) makes it {number(value)}."}


# Exact classes: a subclass may compute something else, so it is shown as "other".
_CELLS = {nn.Conv2d: ("conv", windowed.conv), nn.MaxPool2d: ("pool", windowed.max_pool),
          nn.AvgPool2d: ("pool", windowed.avg_pool), nn.LPPool2d: ("pool", windowed.lp_pool),
          nn.AdaptiveAvgPool2d: ("pool", windowed.adaptive_pool), nn.Linear: ("linear", linear),
          nn.BatchNorm2d: ("batchnorm", batchnorm), nn.Softmax: ("softmax", softmax), nn.Flatten: ("other", flatten),
          nn.ConvTranspose2d: ("transposed", resizing.transposed), nn.Upsample: ("upsample", resizing.upsample)}
_CELLS.update({kind: ("activation", activation) for kind in _ACTIVATIONS})


def explainer(layer: Layer) -> tuple:
    """``(kind, function(t, layer, pos) -> dict)`` for the layer's class."""
    kind, explain = _CELLS.get(type(layer.module), ("other", other))
    odd_linear = kind == "linear" and len(layer.input_shape) != 2  # a Linear over the last axis of a map
    odd_flatten = type(layer.module) is nn.Flatten and len(layer.output_shape) != 2
    return ("other", other) if odd_linear or odd_flatten else (kind, explain)


# ----- the public functions -------------------------------------------------------------------------
def cell(t: Trace, layer: str, channel: int, y: int | None = None, x: int | None = None, index: int = 0,
         top: int = 10) -> dict:
    """How the value at ``output[index, channel, y, x]`` of layer ``layer`` was computed
    (``output[index, channel]`` for an (N, C) output: give no y and x).

    Args:
        t (Trace): a pass traced with its outputs kept (the default of :func:`~convscope.trace.trace`).
        layer (str): the layer's name, as in ``t.layers`` (e.g. "0", "stages.1.conv2").
        channel, y, x (int): the cell. index (int): the image in the batch, default 0.
        top (int): how many of a linear unit's largest contributions to list. Default 10.

    Returns a dict. Every kind has ``layer``, ``module`` (class name), ``kind`` ("conv", "pool",
    "linear", "activation", "batchnorm", "softmax", "transposed", "upsample" or "other"),
    ``index``, ``cell`` ([channel, y, x]
    or [unit]), ``value`` (the layer's own output), ``text`` (one sentence), ``field`` (see
    :func:`~convscope.arithmetic.locate.field_box`: an inclusive box in input pixels, or None when
    the cell sees the whole input or is not spatial) and ``input_layer`` (the layer whose output
    was the input, "input" for the image, None for a tensor made between layers). Optional:
    ``then`` (the activation that reads this output next: layer, kind, function, value, text)
    and, on the layer whose output is the model's, ``softmax`` (:func:`softmax_pieces` plus
    cls, probability, predicted, text). Per kind:

    * conv: filter, group, groups, channels, window_origin, rows, cols, kernel, stride,
      dilation, pads (top, bottom, left, right), inputs, padding (True at padding taps),
      weights and products (all [C][kH][kW]), sum, bias (0 without one); value = sum + bias.
    * pool: op ("max", "avg", "lp", "adaptive_avg"), channel, window_origin, rows, cols,
      padding [kH][kW], values (max: None at padding), result; max: winner [i, j] and
      winner_at [row, col]; avg: counted, count_include_pad, sum, count; lp: norm_type,
      powers, sum; adaptive_avg: sum, count. Fixed windows add kernel, stride, dilation, pads.
    * linear: unit, inputs_count, contributions (the ``top`` largest |input*weight|: index,
      input, weight, product, and ``source`` [c, y, x] when a Flatten made the input; then
      ``flattened_from`` gives its layer, map_layer and shape), sum (all products), rest
      (those not shown), bias; value = sum + bias.
    * activation: function, formula, input (and negative_slope for LeakyReLU).
    * batchnorm: channel, x, mean, var, eps, std, normalized, gamma, beta.
    * softmax: dim, position and the :func:`softmax_pieces` of the values along ``dim``.
    * transposed (ConvTranspose2d): filter, group, terms (the ``top`` largest |input*weight| of
      the inputs that land on the cell: source [c, i, j], tap [ky, kx], input, weight, product),
      terms_count, sum (all products), rest (those not shown), bias; value = sum + bias.
    * upsample: mode, align_corners, terms (each value read: source [c, i, j], input, weight,
      product), sum; value = sum (weights add up to 1).
    * other: the value and a sentence (a Flatten adds ``source``, the input's [c, y, x]).

    Raises :class:`~convscope.arithmetic.locate.UnknownLayer` (a KeyError) for a name not in
    ``t`` and :class:`~convscope.arithmetic.locate.CellError` (a ValueError) for a cell
    outside the output or a layer that kept no output.
    """
    found = find(t, layer)
    pos = position(found, index, channel, y, x)
    top = whole(top, "top")
    if top < 0:
        raise CellError(f"top must be >= 0, got {top}")
    kind, explain = explainer(found)
    if kind in ("linear", "transposed"):
        explain = functools.partial(linear if kind == "linear" else resizing.transposed, top=top)
    spatial = len(pos) == 4 and t.input.ndim == 4
    result = {"layer": found.name, "module": type(found.module).__name__, "kind": kind, "index": pos[0],
              "cell": list(pos[1:]), "value": float(found.values[pos]), "input_layer": input_name(t, found),
              "field": field_box(found.field, pos[2], pos[3], t.input.shape[2:]) if spatial else None}
    result.update(explain(t, found, pos))
    following = then(t, found, pos)
    if following is not None:
        result["then"] = following
    if found.output is t.output and t.output.ndim in (2, 4):
        result["softmax"] = output_softmax(t, pos)
    return result


def layer_cells(t: Trace) -> list[dict]:
    """Every traced layer, in order, and whether :func:`cell` can show its cells: ``name``,
    ``index``, ``module``, ``kind`` (as :func:`cell` gives it), ``shape`` (the output without
    the batch axis: [C, H, W] or [units]), ``clickable`` (an output was kept and has shape
    (N, C) or (N, C, H, W)) and ``input_layer``."""
    return [{"name": layer.name, "index": layer.index, "module": type(layer.module).__name__,
             "kind": explainer(layer)[0], "shape": list(layer.output_shape[1:]),
             "clickable": layer.output is not None and len(layer.output_shape) in (2, 4),
             "input_layer": input_name(t, layer)} for layer in t.layers]
