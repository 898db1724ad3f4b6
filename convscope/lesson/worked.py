"""Worked examples with the real numbers of one traced image: one output of the first
convolution, one pooling window, the softmax of the scores; and the backward pass, layer by
layer, with this model's shapes.

The worked numbers come from :func:`convscope.arithmetic.cell` on the lesson's trace and are
marked ``cell`` (``CHANNEL,Y,X:KEY``, checked by recomputing the cell), ``logit`` and ``pred``.

>>> import numpy as np
>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.writing import Voice
>>> model = lenet5(rng=np.random.default_rng(0))
>>> b = backward_blocks(Facts(model, summarize(model, (1, 28, 28)), (1, 28, 28)), Voice("technical"), ("math",))
>>> plain(b[0].full[1][1]).splitlines()[0]
'11 Linear: ∂L/∂W = g xᵀ (10x84), ∂L/∂x = Wᵀ g (84)'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..arithmetic import cell
from ..summary import LayerRow
from .facts import Facts, dims, formula, mark
from .plan import Block
from .writing import Voice

DEPTHS_ALL = ("conceptual", "technical", "math")


def brightest(f: Facts, row: LayerRow) -> tuple[int, int, int]:
    """(channel, y, x) of the largest value of a layer's output for the traced image."""
    values = f.trace[row.name].values[0]
    return tuple(int(i) for i in np.unravel_index(int(values.argmax()), values.shape))


def cell_value(found: dict, path: str) -> object:
    """``found["contributions"][0]["index"]`` for the path ``contributions.0.index``."""
    value = found
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def shown_value(value: object) -> str:
    """A cell's number as the lesson shows it: 4 significant digits, a list as ``3x5``."""
    return f"{value:.4g}" if isinstance(value, float) else dims(value) if isinstance(value, list) else str(value)


def cell_fact(f: Facts, row: LayerRow, where: tuple[int, ...], key: str, found: dict) -> str:
    shown = shown_value(cell_value(found, key))
    return mark("cell", row.name, f"{','.join(map(str, where))}:{key}={shown}", shown)


def grid_text(f: Facts, row: LayerRow, where: tuple[int, int, int], found: dict) -> str:
    """The products of the cell's first input channel, one row of the window a line."""
    grid = np.asarray(found["products"], np.float64)[0]
    shown = "\n".join("  ".join(f"{v:+.3f}" for v in line) for line in grid)
    return mark("cell", row.name, f"{','.join(map(str, where))}:products", shown)


def conv_cell(f: Facts, v: Voice, depths: Sequence[str]) -> list[Block]:
    conv = f.first("conv")
    if f.trace is None or conv is None or len(conv.output_shape) != 4:
        return []
    where = brightest(f, conv)
    found = cell(f.trace, conv.name, *where)
    ch, y, x = (cell_fact(f, conv, where, f"cell.{i}", found) for i in range(3))
    s, b, val = (cell_fact(f, conv, where, k, found) for k in ("sum", "bias", "value"))
    top, left = (cell_fact(f, conv, where, f"window_origin.{i}", found) for i in range(2))
    text = v(f"Let's do one by hand, with your real image. Take map {ch} of layer {f.layer(conv)}, row {y}, "
             f"column {x}: its brightest spot. The filter sits on the patch whose top-left corner is row {top}, "
             f"column {left}. Its {f.taps(conv)} products add up to {s}. Add the bias, {b}, and you get {val}.",
             f"A worked example with the traced image: for map {ch} of layer {f.layer(conv)} at row {y}, column "
             f"{x}, its largest value, the filter covers the patch whose top-left corner is at row {top}, column "
             f"{left}; the {f.taps(conv)} products sum to {s}, and adding the bias {b} gives {val}.",
             f"Worked: layer {f.layer(conv)}, map {ch}, (row {y}, col {x}) = max. Patch origin ({top}, {left}); "
             f"∑ of {f.taps(conv)} products = {s}; + bias {b} = {val}.")
    pieces = [("p", text)]
    if "math" in depths or "technical" in depths:
        pieces += [("p", v("Here are the products you just added, weight times pixel, for the first input channel:",
                           "The products of weight and pixel value, for the first input channel, are:",
                           "Products w·x, first input channel:")),
                   ("pre", grid_text(f, conv, where, found))]
    return [Block("processing", "processing.worked", 5.5, pieces, [("p", text)])] + pool_cell(f, v)


def softmax_worked(f: Facts, v: Voice) -> list[Block]:
    probs = f.probabilities()
    if probs is None or len(probs) < 3:
        return []
    logits = f.trace.output.data[0]
    order = [int(k) for k in np.argsort(-probs)[:3]]
    rows = [[f.class_name(k), mark("logit", k, f"{logits[k]:.3f}"), f.pred(k, probs[k])] for k in order]
    text = v("Here are the three biggest scores for your image, and what softmax makes of them. You'll see a "
             "gap of a few points in score become a huge gap in probability.",
             "The three largest scores for the traced image, with their softmax probabilities, are given below; "
             "the exponential turns moderate differences between scores into large differences in probability.",
             "Top scores → softmax (exp amplifies gaps):")
    table = ("table", [["class", "score (logit)", "probability"]] + rows)
    return [Block("predictions", "predictions.worked", 5.6, [("p", text), table])] + linear_cell(f, v)


def pool_cell(f: Facts, v: Voice) -> list[Block]:
    pool = next((r for r in f.of("pool") if r.kind == "MaxPool2d"), None)
    if f.trace is None or pool is None or len(pool.output_shape) != 4:
        return []
    where = brightest(f, pool)
    found = cell(f.trace, pool.name, *where)
    ch, y, x = (cell_fact(f, pool, where, f"cell.{i}", found) for i in range(3))
    kept, top, left = (cell_fact(f, pool, where, k, found) for k in ("result", "window_origin.0", "window_origin.1"))
    size = f.attr(pool, "kernel_size")
    text = v(f"Now you do pooling by hand: map {ch} of layer {f.layer(pool)} at row {y}, column {x} looks at the "
             f"{size} window whose top-left corner is row {top}, column {left} of the map below, and keeps its "
             f"largest value, {kept}.",
             f"Likewise for pooling: the value of map {ch} of layer {f.layer(pool)} at row {y}, column {x} is the "
             f"maximum, {kept}, of the {size} window whose top-left corner lies at row {top}, column {left} of the "
             "map below.",
             f"Worked pool: layer {f.layer(pool)}, map {ch}, (row {y}, col {x}) = max of {size} window at ({top}, "
             f"{left}) = {kept}.")
    return [Block("processing", "processing.worked-pool", 5.55, [("p", text)])]


def linear_cell(f: Facts, v: Voice) -> list[Block]:
    last = f.rows[-1]
    if f.probabilities() is None or last.module.role != "linear":
        return []
    k = int(np.argmax(f.probabilities()))
    found = cell(f.trace, last.name, k, top=3)
    where = (k,)
    value, bias, count = (cell_fact(f, last, where, key, found) for key in ("value", "bias", "inputs_count"))
    parts = [(cell_fact(f, last, where, f"contributions.{i}.index", found),
              cell_fact(f, last, where, f"contributions.{i}.product", found))
             for i in range(min(3, len(found["contributions"])))]
    listed = v.join([f"input {i} ({p})" for i, p in parts])
    text = v(f"Where does the winning score come from? You can trace it. Class {f.class_name(k)} scores {value}: "
             f"the bias, {bias}, plus {count} products of input and weight. The biggest come from {listed}.",
             f"The winning score of class {f.class_name(k)}, {value}, is the bias {bias} plus the sum of {count} "
             f"products of input and weight, the largest of which come from {listed}.",
             f"Score of class {f.class_name(k)} = {value} = bias {bias} + ∑ of {count} products; largest: {listed}.")
    return [Block("predictions", "predictions.worked-linear", 5.65, [("p", text)])]


def loss_worked(f: Facts, v: Voice, depths: Sequence[str] = DEPTHS_ALL) -> list[Block]:
    """The loss of the traced image for its predicted class; the gradient's numbers at technical or math depth."""
    probs = f.probabilities()
    if probs is None:
        return []
    k = int(np.argmax(probs))
    loss = mark("loss", k, f"{-np.log(max(float(probs[k]), 1e-45)):.4g}")
    grads = [(f.class_name(j), mark("grad", f"{k}:{j}", f"{float(probs[j]) - (j == k):.3g}")) for j in
             [int(i) for i in np.argsort(-probs)[:3]]]
    listed = v.join([f"{g} for class {c}" for c, g in grads])
    if not {"technical", "math"} & set(depths):
        text = v(f"Say your image really is a {f.class_name(k)}. Then you get a loss of {loss}: the network gave "
                 "the right class nearly all its probability, so this image has little left to teach it. The "
                 "gradient pushes the right score up and the others down, each by the probability it got wrong.",
                 f"Were the label of this image {f.class_name(k)}, its loss would be {loss}: nearly all the "
                 "probability already lies on the correct class, so that the image has little left to teach; the "
                 "gradient raises the correct score and lowers each other one by the probability it received.",
                 f"If label = {f.class_name(k)}: L = {loss}. Gradient: correct score ↑, others ↓ by their p.")
        return [Block("learning", "learning.worked", 5.7, [("p", text)])]
    text = v(f"Say your image really is a {f.class_name(k)}. Then you get a loss of {loss}. The gradient at the "
             f"scores is {listed}: you push the right class up and the others down.",
             f"Were the label of this image {f.class_name(k)}, its loss would be {loss}, and the gradient with "
             f"respect to the scores would be {listed}, raising the correct class and lowering the others.",
             f"If label = {f.class_name(k)}: L = {loss}; ∂L/∂z = {listed}.")
    return [Block("learning", "learning.worked", 5.7, [("p", text)])]


def backward_line(f: Facts, r: LayerRow) -> str | None:
    role, L = r.module.role, f"{f.layer(r)} {f.kind(r)}"
    if role == "linear":
        w = f"{f.attr(r, 'out_features')}x{f.attr(r, 'in_features')}"
        return f"{L}: ∂L/∂W = g xᵀ ({w}), ∂L/∂x = Wᵀ g ({f.attr(r, 'in_features')})"
    if role == "activation" and r.kind == "ReLU":
        return f"{L}: {formula('relu_grad')} on {f.out(r)}"
    if role == "flatten":
        return f"{L}: reshape g back to {f.inp(r)}"
    if role == "pool":
        return f"{L}: g to the {'argmax' if r.kind == 'MaxPool2d' else 'inputs'} of each window → {f.inp(r)}"
    if role == "conv":
        return f"{L}: ∂L/∂w = Σ g · x_pad patches ({f.weights(r)} weights), ∂L/∂x → {f.inp(r)}"
    return f"{L}: its own backward → {f.inp(r)}"


def backward_blocks(f: Facts, v: Voice, depths: Sequence[str]) -> list[Block]:
    """The backward pass from the last layer to the first, one line a layer (math or technical depth)."""
    if "math" not in depths and "technical" not in depths:
        return []
    lines = [line for line in (backward_line(f, r) for r in reversed(f.rows)) if line]
    lead = v(f"Backpropagation walks the layers in reverse, from layer {f.layer(f.rows[-1])} to layer "
             f"{f.layer(f.rows[0])}. With g the gradient arriving at each layer, this is what you compute there:",
             f"Backpropagation visits the layers in reverse order, from layer {f.layer(f.rows[-1])} to layer "
             f"{f.layer(f.rows[0])}; writing g for the gradient arriving at each layer, the steps are:",
             f"Backward, layer {f.layer(f.rows[-1])} → layer {f.layer(f.rows[0])} (g = incoming gradient):")
    return [Block("learning", "learning.backward", 6.8, [("p", lead), ("pre", "\n".join(lines))],
                  [("p", lead), ("pre", "\n".join(lines[:3]))])]
