"""Plain-words titles and colour keys for the pictures of ``convscope viz`` and the report.

A title names the layer, its type and its shape, then says in words what the picture shows:

>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> row = summarize(lenet5(rng=np.random.default_rng(0)), (1, 28, 28))[5]
>>> output_title(row)
'Layer 5 (MaxPool2d): 16 pooled maps of 5x5 — each keeps the strongest response in every 2x2 window'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..summary import LayerRow

WEIGHT_KEY = "Colours: red = positive weight, blue = negative weight, white = 0 (one scale for the whole layer)"
NORM_KEY = "Grey scale: dark = small weights, bright = large weights (size over all input channels)"
ACTIVATION_KEY = "Grey scale: dark = low, bright = high activation (one scale for the whole picture)"
HEAT_KEY = "Heat scale: black = no influence, red -> yellow -> white = strongest influence"
_POOL_WORDS = {"MaxPool2d": "keeps the strongest response in", "AvgPool2d": "averages",
               "LPPool2d": "takes sqrt(sum of squares) of"}
_BENDS = {"ReLU": "negative values set to 0", "LeakyReLU": "negative values shrunk",
          "Sigmoid": "each value squashed into 0..1", "Tanh": "each value squashed into -1..1"}


def shape_text(shape: Sequence[int]) -> str:
    """(6, 28, 28) -> "6x28x28"."""
    return "x".join(str(s) for s in shape)


def number(value: float) -> str:
    """A tick label: 3 significant digits, a sign for non-zero values."""
    return "0" if value == 0 else f"{value:+.3g}"


def filter_title(name: str, weight: np.ndarray, mode: str) -> tuple[str, str]:
    """(title, note) for the filter grid of conv layer ``name``, weight (C_out, C_in, kH, kW)."""
    c_out, c_in, kh, kw = np.shape(weight)
    k = f"{kh}x{kw}"
    if mode == "channels":
        return (f"Layer {name} (Conv2d): the {c_out} learned filters, each {c_in} channels of {k}",
                f"One tile per filter and input channel: column f is filter f (it makes feature map f), "
                f"row c holds its weights on input channel c. Tiles are enlarged {k} weight grids.")
    if mode == "norm":
        return (f"Layer {name} (Conv2d): the {c_out} learned {k} filters, each over {c_in} input channels",
                "One tile per filter (too many channels to show one by one): each tap shows the size of "
                "its weights over all input channels.")
    colour = " colour" if c_in == 3 else ""
    note = ("Each filter is drawn in the colours it responds to most (scaled on its own)." if c_in == 3 else
            "A filter responds where the image looks like its red parts and unlike its blue parts.")
    return f"Layer {name} (Conv2d): the {c_out} learned {k}{colour} filters, one per feature map", note


def _maps(shape):
    return f"{shape[0]} maps of {shape[1]}x{shape[2]}" if len(shape) == 3 else f"{shape[0]} numbers"


def output_words(row: LayerRow, last: bool = False) -> str:
    """What a layer's output is, in words, from its summary row (convscope.summary.LayerRow)
    and the layer's ``role``; a layer with no role of these is described by its shape."""
    m, out, inp = row.module, tuple(row.output_shape[1:]), tuple(row.input_shape[1:])
    role = getattr(m, "role", None)
    if role == "conv":
        return f"{out[0]} feature maps of {out[1]}x{out[2]}, one per learned {shape_text(m.kernel_size)} filter"
    if row.kind in _BENDS:
        return f"the same {_maps(out)} with {_BENDS[row.kind]}"
    if role == "pool" and len(out) == 3:
        window = shape_text(m.geometry(tuple(row.input_shape[2:])).kernel)
        words = _POOL_WORDS.get(row.kind, "summarises")
        return f"{out[0]} pooled maps of {out[1]}x{out[2]} — each {words} every {window} window"
    if role == "adaptive_pool" and len(out) == 3:
        return f"{out[0]} maps averaged down to {out[1]}x{out[2]} (one number per map)"
    if role == "normalization":
        return f"the same {_maps(out)}, each channel rescaled to a standard range"
    if role == "flatten":
        return f"the {shape_text(inp)} maps lined up as one list of {out[0]:,} numbers"
    if role == "linear" and last:
        return f"the {out[0]} class scores (logits) — the largest is the prediction"
    if role == "linear":
        return f"{out[0]} numbers, each a weighted sum of all {inp[0]:,} inputs"
    if role == "dropout":
        return f"the same {_maps(out)} (dropout only acts during training)"
    if m is not None and m.children():
        return f"{_maps(out)}: the block's layers plus its shortcut, added"
    return shape_text(out)


def output_title(row: LayerRow, last: bool = False) -> str:
    """"Layer NAME (Kind): <what the output is>"."""
    return f"Layer {row.name} ({row.kind}): {output_words(row, last)}"


def output_note(row: LayerRow, last: bool = False) -> str:
    """One sentence on how to read a layer's output picture."""
    if len(row.output_shape) == 4:
        return ("One tile per map (map k = channel k), enlarged; bright = the layer responds strongly there.")
    if last:
        return "One bar per class; the orange bar is the predicted class. Softmax turns these into probabilities."
    return "A list of numbers has no picture layout, so each number is one bar (height = its value)."
