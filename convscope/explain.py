"""A walk through a model, layer by layer, in Markdown, at one of three depths.

* ``concepts``: what each layer is for, in plain words;
* ``technical``: shapes, parameter counts, stride and padding effects, cost, receptive field;
* ``math``: the equations, forward and backward (the gradients backpropagation computes).

Every sentence is built from the model in hand (a traced forward pass, see
:func:`convscope.summary.summarize`), so the numbers are this model's own.

>>> from convscope.models import lenet5
>>> text = explain(lenet5(rng=np.random.default_rng(0)), (1, 28, 28), "technical")
>>> "(28 + 2*2 - 5)/1 + 1 = 28" in text
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .nn import Module
from .summary import LayerRow, summarize

DEPTHS = ("concepts", "technical", "math")
_ACTIVATIONS = {"ReLU": ("max(0, x)", "[x > 0]"), "LeakyReLU": ("x if x > 0 else a·x", "(1 if x > 0 else a)"),
                "Sigmoid": ("1 / (1 + e^(-x))", "y·(1 - y)"), "Tanh": ("tanh(x)", "(1 - y²)")}


def _s(shape):
    return "x".join(str(v) for v in shape)


def _n(value):
    return f"{value:,}"


def _rf(row):
    return "the whole image" if row.receptive_field is None else f"{_s(row.receptive_field)} pixels"


def own_words(module: Module) -> str:
    """The first sentence of a layer's class docstring, without its full stop: how a layer
    convscope has no text for describes itself."""
    line = (type(module).__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return line.split(". ")[0].rstrip(".") or type(module).__name__


# ----- convolution ----------------------------------------------------------------------
def conv(row: LayerRow, depth: str) -> str:
    m, (c, h, w), out = row.module, row.input_shape[1:], row.output_shape[1:]
    (kh, kw), per_filter = m.kernel_size, row.weights // m.out_channels
    if depth == "concepts":
        return (f"Slides {m.out_channels} small {kh}x{kw} pattern detectors (filters) over its "
                f"{c}-channel input. Each filter makes one map of where its pattern shows up, so "
                f"{_s((c, h, w))} becomes {_s(out)}. A filter's {per_filter} weights are reused at every "
                f"position, so a pattern is found wherever it is, and the layer needs only "
                f"{_n(row.weights)} weights where a fully connected layer would need {_n(row.dense_weights)} "
                f"(weights only: biases are not counted on either side). "
                f"Each output pixel sees {_rf(row)} of the input image.")
    if depth == "technical":
        return "\n".join(_conv_technical(row))
    return "\n".join(_conv_math(row))


def _conv_technical(row):
    m, out = row.module, row.output_shape[1:]
    bias = f" + {m.out_channels} biases" if m.bias is not None else " (no bias)"
    groups = f", in {m.groups} groups" if m.groups > 1 else ""
    (s, _), (d, _), (k, _) = m.stride, m.dilation, m.kernel_size
    jump_in = row.jump[0] / s  # a fraction of a pixel after upsampling
    rf_in = row.receptive_field[0] - (k - 1) * d * jump_in
    return [f"- Shape: {_s(row.input_shape[1:])} -> {_s(out)}; kernel {_s(m.kernel_size)}, stride "
            f"{_s(m.stride)}, padding {m.padding if isinstance(m.padding, str) else _s(m.padding)}, "
            f"dilation {_s(m.dilation)}{groups}.",
            f"- Parameters: {m.out_channels} filters x ({m.in_channels // m.groups} x {_s(m.kernel_size)}) = "
            f"{_n(row.weights)} weights{bias} = {_n(row.params)}.",
            f"- Output size: `H_out = floor((H + 2*padding - dilation*(k-1) - 1)/stride) + 1`: `{row.arithmetic}`. "
            + _padding_effect(row),
            f"- Cost: {_n(row.mult_adds)} multiply-adds per image ({_s(out[1:])} positions x {m.out_channels} "
            f"filters x {row.weights // m.out_channels} taps).",
            f"- Receptive field: `{rf_in:g} + ({k}-1)*{d}*{jump_in:g} = {row.receptive_field[0]:g}` input pixels; "
            f"jump `{jump_in:g}*{s} = {row.jump[0]:g}` (input pixels between neighbouring outputs).",
            f"- A dense layer {_s(row.input_shape[1:])} -> {_s(out)} would need {_n(row.dense_weights)} "
            f"weights, {row.dense_weights / row.weights:,.0f} times the {_n(row.weights)} here "
            f"(weights only: biases are not counted on either side)."]


def _padding_effect(row):
    m, (h_in, h_out) = row.module, (row.input_shape[2], row.output_shape[2])
    if h_out == h_in:
        return f"The padding keeps the {h_in}-pixel size."
    if m.stride[0] > 1:
        return f"Stride {m.stride[0]} takes every {m.stride[0]}th position: {h_in} -> {h_out}."
    return (f"The kernel ({m.kernel_size[0]}) is wider than the padding allows for, so the map loses "
            f"{h_in - h_out} pixels: {h_in} -> {h_out}.")


def _conv_math(row):
    m, (c, h, w) = row.module, row.input_shape[1:]
    (kh, kw), (s, _), (d, _) = m.kernel_size, m.stride, m.dilation
    pad = "x_pad is x with zero padding " + (repr(m.padding) if isinstance(m.padding, str) else _s(m.padding))
    cg = c // m.groups
    b = "b[o] + " if m.bias is not None else ""
    return [f"Cross-correlation (the kernel is not flipped), for filter o = 0..{m.out_channels - 1}"
            " and output pixel (i, j):",
            "```",
            f"y[n, o, i, j] = {b}Σ_(c=0..{cg - 1}) Σ_(u=0..{kh - 1}) Σ_(v=0..{kw - 1}) "
            f"w[o, c, u, v] · x_pad[n, c, {s}·i + {d}·u, {s}·j + {d}·v]",
            "```",
            f"where {pad}. Output size: `{row.arithmetic}`.",
            "Backward, given g = ∂L/∂y:",
            "```",
            *(["∂L/∂b[o]       = Σ_(n,i,j) g[n, o, i, j]"] if m.bias is not None else []),
            f"∂L/∂w[o,c,u,v] = Σ_(n,i,j) g[n, o, i, j] · x_pad[n, c, {s}·i + {d}·u, {s}·j + {d}·v]",
            f"∂L/∂x_pad[n, c, {s}·i + {d}·u, {s}·j + {d}·v] += w[o, c, u, v] · g[n, o, i, j]   (all o, u, v, i, j)",
            "```",
            f"The last line adds each window's gradient back where the window came from (col2im), "
            f"then drops the padding: a {h}x{w} gradient for x."]


# ----- transposed convolution and upsampling ---------------------------------------------
def conv_transpose(row: LayerRow, depth: str) -> str:
    m, (c, h, w), out = row.module, row.input_shape[1:], row.output_shape[1:]
    (kh, kw), (s, _), (d, _), (p, _) = m.kernel_size, m.stride, m.dilation, m.padding
    if depth == "concepts":
        return (f"Makes the maps larger with learned filters: each of the {h}x{w} positions of its {c}-channel "
                f"input paints a {kh}x{kw} patch (its values times a filter) onto the output, the patches "
                f"{s} pixel{'s' if s > 1 else ''} apart, and where patches overlap they add up. "
                f"{_s((c, h, w))} becomes {_s(out)}. It undoes the size change of a convolution with the same "
                f"window (not its values), which is how segmentation networks grow maps back to image size.")
    if depth == "technical":
        return "\n".join(_conv_transpose_technical(row))
    b = "b[o] + " if m.bias is not None else ""
    return "\n".join([
        "Each input pixel (i, j) adds its kernel into the output window it paints:", "```",
        f"y_full[n, o, {s}·i + {d}·u, {s}·j + {d}·v] += w[c, o, u, v] · x[n, c, i, j]   (all c, u, v, i, j)",
        f"y[n, o, a, b] = {b}y_full[n, o, a + {p}, b + {p}]", "```",
        f"Output size: `{row.arithmetic}`. Backward, given g = ∂L/∂y (g_full: g put back in y_full):", "```",
        *(["∂L/∂b[o]          = Σ_(n,a,b) g[n, o, a, b]"] if m.bias is not None else []),
        f"∂L/∂x[n, c, i, j] = Σ_(o,u,v) w[c, o, u, v] · g_full[n, o, {s}·i + {d}·u, {s}·j + {d}·v]",
        f"∂L/∂w[c,o,u,v]    = Σ_(n,i,j) x[n, c, i, j] · g_full[n, o, {s}·i + {d}·u, {s}·j + {d}·v]", "```",
        "The gradient for x is an ordinary convolution of g (windows, then a product): the two ops are each "
        "other's adjoint."])


def _conv_transpose_technical(row):
    m, (c, h, w), out = row.module, row.input_shape[1:], row.output_shape[1:]
    (k, _), (s, _), (d, _) = m.kernel_size, m.stride, m.dilation
    bias = f" + {m.out_channels} biases" if m.bias is not None else " (no bias)"
    field = "the whole image" if row.receptive_field is None else (
        f"`rf_in + ({k}-1)*{d}*{row.jump[0]:g} = {row.receptive_field[0]:g}` input pixels (rf_in + (k-1)*dilation"
        f"*jump_out); jump `{row.jump[0] * s:g}/{s} = {row.jump[0]:g}`: finer than the input's, neighbouring "
        "outputs share inputs")
    return [f"- Shape: {_s((c, h, w))} -> {_s(out)}; kernel {_s(m.kernel_size)}, stride {_s(m.stride)}, padding "
            f"{_s(m.padding)} (cropped off the output), output_padding {_s(m.output_padding)}, dilation "
            f"{_s(m.dilation)}{f', in {m.groups} groups' if m.groups > 1 else ''}.",
            f"- Parameters: weight {_s(m.weight.shape)} (input channel first) = {_n(m.weight.size)}{bias} = "
            f"{_n(row.params)}.",
            "- Output size: `H_out = (H - 1)*stride - 2*padding + dilation*(k-1) + output_padding + 1`: "
            f"`{row.arithmetic}`.",
            f"- Cost: {_n(row.mult_adds)} multiply-adds per image (each of the {_n(c * h * w)} input values "
            f"times {_n(m.weight.size // c)} taps).",
            f"- Receptive field: {field}."]


def upsample(row: LayerRow, depth: str) -> str:
    m, (c, h, w), out = row.module, row.input_shape[1:], row.output_shape[1:]
    nearest = m.mode == "nearest"
    if depth == "concepts":
        how = ("copies the value of the input pixel it falls on" if nearest else
               "blends the four nearest input values, each weighted by how close it is")
        return (f"Makes each of the {c} maps larger, {h}x{w} -> {out[1]}x{out[2]}: every output pixel {how}. "
                f"Nothing is learned; later layers can then work at the finer size.")
    if depth == "technical":
        corners = "" if nearest else f", align_corners={bool(m.align_corners)}"
        jump = "" if row.jump is None else f"; jump {_pair(row.jump)} (the input's jump divided by the factor)"
        return (f"- Shape: {_s((c, h, w))} -> {_s(out)}; mode {m.mode}{corners}; channels unchanged, no parameters.\n"
                f"- Output size: `{row.arithmetic}`.\n"
                f"- Receptive field {_rf(row)}{jump}.")
    if nearest:
        return ("```\ny[n, c, a, b] = x[n, c, floor(a·scale_h), floor(b·scale_w)]    scale = in/out "
                "(1/scale_factor when given)\n∂L/∂x[n, c, i, j] = Σ of g over the outputs that copied (i, j)\n```")
    src = "a·scale" if m.align_corners else "max((a + 0.5)·scale - 0.5, 0)"
    return ("Along the rows, then along the columns (bilinear is separable):\n```\n"
            f"s = {src},  i0 = floor(s),  i1 = i0 + 1 (i0 at the edge),  l = s - i0\n"
            "y[.., a] = (1 - l)·x[.., i0] + l·x[.., i1]\n"
            "∂L/∂x[.., i0] += (1 - l)·g[.., a],   ∂L/∂x[.., i1] += l·g[.., a]\n```")


def _pair(value):
    return "x".join(f"{v:g}" for v in value) if value[0] != value[1] else f"{value[0]:g}"


# ----- pooling --------------------------------------------------------------------------
_POOL_WORDS = {"MaxPool2d": "keeps the strongest response", "AvgPool2d": "averages the responses",
               "LPPool2d": "takes sqrt(sum of squares) of the responses"}
_POOL_USED = {"MaxPool2d": "max", "AvgPool2d": "average", "LPPool2d": "L{p:g}"}


def pool(row: LayerRow, depth: str) -> str:
    m, (c, h, w), out = row.module, row.input_shape[1:], row.output_shape[1:]
    window = m.geometry(row.input_shape[2:])
    (k, _), (s, _) = window.kernel, window.stride
    if depth == "concepts":
        words = _POOL_WORDS[row.kind].capitalize() if row.kind in _POOL_WORDS else f"{own_words(m)}:"
        return (f"{words} in each {k}x{k} window, moving {s} pixels at a "
                f"time: each of the {c} maps shrinks from {h}x{w} to {out[1]}x{out[2]}. Later layers have "
                f"less to process, and a feature that moves by a pixel often gives the same output. "
                f"Nothing is learned here.")
    if depth == "technical":
        return (f"- Shape: {_s((c, h, w))} -> {_s(out)}; window {_s(window.kernel)}, stride {_s(window.stride)}, "
                f"padding {_s(window.before())}; channels unchanged, no parameters.\n"
                f"- Output size: `{row.arithmetic}`.\n"
                f"- Receptive field grows to {_rf(row)}; jump becomes {_s(row.jump)} (x{s}).")
    return "\n".join(_pool_math(row, k, s))


def _pool_math(row, k, s):
    used = _POOL_USED.get(row.kind, row.kind).format(p=getattr(row.module, "norm_type", 2))
    window = f"x[n, c, {s}·i + u, {s}·j + v]"
    lines = [f"Window: 0 <= u, v < {k}, stride {s}; output size `{row.arithmetic}`. This layer uses **{used}** "
             f"pooling; the three kinds on the same window:", "```",
             f"max:     y[n,c,i,j] = max_(u,v) {window}        ∂L/∂x = g at the window's argmax, 0 elsewhere",
             f"average: y[n,c,i,j] = (1/{k * k}) Σ_(u,v) {window}    ∂L/∂x = g/{k * k} to every pixel of the window",
             f"L2:      y[n,c,i,j] = sqrt(Σ_(u,v) {window}²)  ∂L/∂x = g · x / y",
             "```", "(g = ∂L/∂y; with overlapping windows a pixel adds up the gradients of every window it is in.)"]
    if getattr(row.module, "norm_type", 2) != 2:
        lines.append(f"Here p = {row.module.norm_type:g}: y = (Σ |x|^p)^(1/p), "
                     "∂L/∂x = g · sign(x) |x|^(p-1) / y^(p-1).")
    return lines


def adaptive_pool(row: LayerRow, depth: str) -> str:
    (c, h, w), out = row.input_shape[1:], row.output_shape[1:]
    if depth == "concepts":
        return (f"Averages each of the {c} maps down to {out[1]}x{out[2]}, whatever its size: each number now "
                f"says how strongly a feature appears anywhere in the {h}x{w} map.")
    if depth == "technical":
        return (f"- Shape: {_s((c, h, w))} -> {_s(out)}; `{row.arithmetic}`; no parameters.\n"
                f"- Receptive field {_rf(row)} (each output averages a whole map), jump {_s(row.jump)}.")
    return ("```\ny[n, c, i, j] = mean of x[n, c] over bin (i, j)"
            f"   (one {h}x{w} bin for {out[1]}x{out[2]} output)\n∂L/∂x[n, c, p, q] = g[n, c, i, j] / (bin size)\n```")


# ----- pointwise layers -----------------------------------------------------------------
def activation(row: LayerRow, depth: str) -> str:
    f, df = _ACTIVATIONS.get(row.kind, (row.kind.lower() + "(x)", "f'(x)"))
    values = int(np.prod(row.output_shape[1:]))
    if depth == "concepts":
        return (f"Applies {f} to each of the {_n(values)} values ({_s(row.output_shape[1:])}). This bend is what "
                f"lets stacked layers represent more than one big linear map; without it the whole network "
                f"would collapse into a single linear function.")
    if depth == "technical":
        return (f"- Elementwise, shape unchanged {_s(row.output_shape[1:])}, no parameters; receptive field "
                f"unchanged ({_rf(row)}).")
    return f"```\ny = {f}\n∂L/∂x = ∂L/∂y · {df}\n```\n(elementwise, on all {_n(values)} values)"


def batch_norm(row: LayerRow, depth: str) -> str:
    m, c = row.module, row.output_shape[1]
    if depth == "concepts":
        return (f"Rescales each of the {c} channels to a standard range, then applies a learned scale and "
                f"shift ({_n(row.params)} numbers). Training is faster and steadier.")
    if depth == "technical":
        return (f"- Shape unchanged {_s(row.output_shape[1:])}; {c} scales + {c} shifts = {_n(row.params)} "
                f"parameters, plus {c} running means and {c} running variances (momentum {m.momentum}).\n"
                f"- Training: statistics of the batch over (N, H, W); evaluation: the running averages.")
    count = "N·" + "·".join(str(v) for v in row.output_shape[2:]) if len(row.output_shape) == 4 else "N"
    return ("```\n"
            f"μ_c = mean over (n, i, j) of x[n, c, i, j],  σ²_c = variance,  m = {count}\n"
            f"x̂ = (x - μ_c) / sqrt(σ²_c + {m.eps:g}),  y = γ_c · x̂ + β_c      (c = 0..{c - 1})\n"
            "∂L/∂γ_c = Σ g · x̂,  ∂L/∂β_c = Σ g\n"
            "∂L/∂x = γ_c / (m · sqrt(σ²_c + ε)) · (m·g - Σ g - x̂ · Σ g·x̂)\n```")


def flatten(row: LayerRow, depth: str) -> str:
    (shape_in, features) = row.input_shape[1:], row.output_shape[1]
    if depth == "concepts":
        return (f"Lines the {_s(shape_in)} block of numbers up into one list of {_n(features)}, so the fully "
                f"connected layers can read it. From here on every unit can see the whole image.")
    if depth == "technical":
        return f"- {_s(shape_in)} -> {_n(features)} (row-major: channel, then row, then column); no parameters."
    if len(shape_in) == 3:
        c, h, w = shape_in
        return f"```\ny[n, c·{h * w} + i·{w} + j] = x[n, c, i, j]\n```\nBackward reshapes ∂L/∂y back to {_s(shape_in)}."
    return "A reshape; backward reshapes the gradient back."


def linear(row: LayerRow, depth: str) -> str:
    m = row.module
    if depth == "concepts":
        return (f"Each of its {m.out_features} outputs is a weighted sum of all {_n(m.in_features)} inputs: "
                f"it combines everything found so far. {_n(row.params)} numbers to learn.")
    if depth == "technical":
        bias = f" + {m.out_features} biases" if m.bias is not None else ""
        return (f"- {_n(m.in_features)} -> {m.out_features}; weight {m.out_features}x{m.in_features} = "
                f"{_n(m.in_features * m.out_features)}{bias} = {_n(row.params)} parameters; "
                f"{_n(row.mult_adds)} multiply-adds per image.")
    return ("```\n"
            f"y = W x + b,   W: {m.out_features}x{m.in_features},  b: {m.out_features}\n"
            "∂L/∂W = g xᵀ,  ∂L/∂b = g,  ∂L/∂x = Wᵀ g        (g = ∂L/∂y; summed over the batch)\n```")


def dropout(row: LayerRow, depth: str) -> str:
    p = row.module.p
    if depth == "concepts":
        return (f"While training, silences a random {p:.0%} of its inputs, so the network cannot lean on any "
                f"single one. When predicting it does nothing.")
    if depth == "technical":
        return f"- p = {p}; kept values are scaled by 1/(1-p) = {1 / (1 - p):.3g} in training; identity in eval."
    return f"```\ny = mask · x / (1 - {p}),  mask ~ Bernoulli({1 - p:g})\n∂L/∂x = mask · g / (1 - {p})\n```"


def block(row: LayerRow, depth: str, rows: list[LayerRow]) -> str:
    inner = [r for r in rows if r.name.startswith(row.name + ".")]
    params = sum(r.params for r in inner)
    identity = not any(".shortcut" in r.name for r in inner)
    shortcut = "the input itself (identity)" if identity else "a 1x1 convolution with batch norm (it changes shape)"
    if depth == "concepts":
        return (f"A residual block: adds its input back to what its {len(inner)} layers computed (a shortcut), "
                f"so the block only has to learn a correction, and gradients reach early layers easily.")
    if depth == "technical":
        return (f"- Output `relu(main(x) + shortcut(x))`, {_s(row.output_shape[1:])}; the shortcut is "
                f"{shortcut}; {_n(params)} parameters inside.\n"
                f"- Receptive field after the sum: the longer branch's, {_rf(row)}; jump {_s(row.jump)}.")
    return ("```\nz = F(x) + S(x),  y = max(0, z)\n"
            "∂L/∂x = (∂F/∂x)ᵀ g_z + (∂S/∂x)ᵀ g_z,   g_z = ∂L/∂y · [z > 0]\n```\n"
            + ("With the identity shortcut, g_z reaches x unchanged." if identity else
               "The shortcut's convolution and batch norm backpropagate as above."))


TEXTS = {"conv": conv, "conv_transpose": conv_transpose, "upsample": upsample, "pool": pool,
         "adaptive_pool": adaptive_pool, "activation": activation,
         "normalization": batch_norm, "flatten": flatten, "linear": linear, "dropout": dropout}


def layer_text(row: LayerRow, depth: str, rows: list[LayerRow]) -> str:
    """The explanation of one summary row at ``depth``, chosen by the layer's ``role``."""
    m = row.module
    if m.role in TEXTS:
        return TEXTS[m.role](row, depth)
    return block(row, depth, rows) if m.children() else generic(row, depth)


def generic(row: LayerRow, depth: str) -> str:
    """A layer convscope has no text for: what its docstring says, its shapes and parameters."""
    text = (f"{own_words(row.module)}. {_s(row.input_shape[1:])} -> {_s(row.output_shape[1:])}, "
            f"{_n(row.params)} parameters.")
    if row.arithmetic:
        text += f" Output size: `{row.arithmetic}`; receptive field {_rf(row)}."
    return text


# ----- the whole walk -------------------------------------------------------------------
def introduction(model: Module, rows: list[LayerRow], input_shape: tuple[int, ...], depth: str) -> str:
    total, macs = sum(p.size for p in model.parameters()), sum(r.mult_adds for r in rows)
    k = rows[-1].output_shape[-1]
    if depth == "concepts":
        return (f"{type(model).__name__} turns a {_s(input_shape)} image into {k} scores, one per class, "
                f"in {len(rows)} steps. Convolution layers look for small patterns, pooling layers shrink "
                f"the maps, and fully connected layers combine everything into a decision. It learns "
                f"{_n(total)} numbers.")
    if depth == "technical":
        return (f"Input (N, {', '.join(map(str, input_shape))}) in NCHW layout; {len(rows)} layers; "
                f"{_n(total)} parameters; {_n(macs)} multiply-adds per image. RF = receptive field, in "
                f"input pixels; jump = distance in input pixels between neighbouring outputs.")
    return ("Notation: x[n, c, i, j] is image n, channel c, row i, column j; L is the loss; for each layer "
            "g = ∂L/∂y is the gradient arriving from above, and backpropagation turns it into ∂L/∂x "
            "(passed down) and ∂L/∂(parameters) (used by the optimizer).")


def output_section(model: Module, rows: list[LayerRow], depth: str, class_names: Sequence[str] | None) -> str:
    k, total = rows[-1].output_shape[-1], sum(p.size for p in model.parameters())
    names = ", ".join(class_names) if class_names else f"0..{k - 1}"
    if depth == "concepts":
        return (f"The last layer gives {k} scores, one per class ({names}). Softmax turns them into "
                f"probabilities that add up to 1; the largest is the prediction. Training nudges all "
                f"{_n(total)} numbers so the probability of the right class goes up.")
    if depth == "technical":
        return (f"- Logits: {k} numbers per image -> softmax -> {k} probabilities ({names}).\n"
                f"- Loss: cross-entropy, averaged over the batch. One backward pass costs about twice "
                f"the forward's {_n(sum(r.mult_adds for r in rows))} multiply-adds.")
    order = " -> ".join(f"`{r.name}`" for r in reversed(rows))
    return ("```\n"
            f"softmax:        p_k = exp(z_k) / Σ_(j=0..{k - 1}) exp(z_j)\n"
            "cross-entropy:  L = -log p_y                 (y = the true class; mean over the N images)\n"
            "gradient:       ∂L/∂z_k = p_k - [k = y]     (divided by N for the batch mean)\n```\n"
            f"Backpropagation applies the chain rule in reverse order, {order}: each layer's backward "
            "(above) maps ∂L/∂(its output) to ∂L/∂(its input) and its parameter gradients. "
            f"Then each of the {_n(total)} parameters takes a step, e.g. w <- w - η ∂L/∂w.")


def position_output(model: Module, rows: list[LayerRow], depth: str) -> str:
    """The output of a model that regresses a position (x, y), as :class:`~convscope.tasks.Positions` trains it."""
    total = sum(p.size for p in model.parameters())
    if depth == "concepts":
        return (f"The last layer gives {rows[-1].output_shape[-1]} numbers: where the centre is, x and y, as "
                f"fractions of the canvas size. Training nudges all {_n(total)} numbers so the predicted "
                "centre moves towards the true one.")
    return ("```\n"
            "prediction:  (x, y) = s * (z_0, z_1)                (s = the canvas size; in pixels)\n"
            "loss:        L = mean over n, i of (z_i - t_i / s)^2  (t = the true centre in pixels)\n"
            "gradient:    ∂L/∂z_i = (z_i - t_i / s) / N            (N images, 2 outputs each)\n```\n"
            "No softmax: the outputs are the answer itself. Each parameter then takes a step, "
            "e.g. w <- w - η ∂L/∂w.")


def grid_output(model: Module, rows: list[LayerRow], depth: str) -> str:
    """The output of a grid detector (:mod:`convscope.heatmaps`): K heatmaps and 4 box numbers per cell."""
    channels, gh, gw = rows[-1].output_shape[1:]
    k, (h, w) = channels - 4, rows[0].input_shape[2:]
    if depth == "concepts":
        return (f"The last layer gives, for each of the {gh}x{gw} cells of a grid laid over the {h}x{w} image, "
                f"{k} scores (is the centre of a digit of this class here?) and 4 numbers that place its box. A "
                "cell whose score beats its neighbours' becomes a detected box; overlapping boxes of one class "
                "are merged (non-maximum suppression).")
    return ("```\n"
            f"heatmap:  p[k, i, j] = sigmoid(z[k, i, j])          k = 0..{k - 1}, cell (i, j) of {gh}x{gw}\n"
            f"box:      centre = ({h // gh} px) * (j + dx, i + dy), size = ({h // gh} px) * (exp(lw), exp(lh))\n"
            "loss:     focal(p, Gaussian bumps at the true centres) + |(dx, dy, lw, lh) - true| at the centres,\n"
            "          divided by the number of objects (CenterNet)\n```\n"
            "A detection is a cell no lower than its 8 neighbours, with score >= 0.05; non-maximum suppression "
            "within each class then drops boxes overlapping a better one by IoU > 0.5.")


def pixel_output(model: Module, rows: list[LayerRow], depth: str) -> str:
    """The output of a segmentation model: a score per class at every pixel."""
    k, h, w = rows[-1].output_shape[1:]
    if depth == "concepts":
        return (f"The last layer gives {k} scores at each of the {h}x{w} pixels; the largest names the pixel's "
                "class. Training nudges the weights so each pixel's right class scores highest.")
    return ("```\n"
            f"per pixel:  p_k = softmax(z[:, i, j])_k, k = 0..{k - 1}; class = argmax_k p_k\n"
            f"loss:       L = mean over the N x {h} x {w} pixels of -log p_(true class)\n```")


OUTPUTS = {"positions": position_output, "detection": grid_output, "segmentation": pixel_output}


def explain(model: Module, input_shape: tuple[int, ...], depth: str = "technical",
            class_names: Sequence[str] | None = None, task: str = "classification") -> str:
    """Markdown walk through ``model`` for inputs of ``input_shape`` (C, H, W).

    Args:
        depth: "concepts", "technical" or "math". class_names: optional list of K names.
        task: the kind of task the model does (a model file's ``task["kind"]``): "classification"
            (default), "positions", "segmentation" or "detection".
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {', '.join(DEPTHS)}, got {depth!r}")
    input_shape = tuple(input_shape)[-3:]
    rows = summarize(model, input_shape)
    parts = [f"# {type(model).__name__}, layer by layer ({depth})", introduction(model, rows, input_shape, depth)]
    for row in rows:
        parts.append(f"## Layer {row.name}: {row.kind} ({_s(row.input_shape[1:])} -> {_s(row.output_shape[1:])})")
        parts.append(layer_text(row, depth, rows))
    output = OUTPUTS[task](model, rows, depth) if task in OUTPUTS else output_section(model, rows, depth, class_names)
    parts += ["## Output", output]
    return "\n\n".join(parts) + "\n"
