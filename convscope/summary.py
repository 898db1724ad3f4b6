"""What a model does to an input, layer by layer: shapes, weights, cost and receptive field.

Everything comes from one traced forward pass (:func:`convscope.trace.trace`, in eval mode,
without gradients): shapes, each spatial layer's window (its geometry protocol,
``module.geometry``) and the receptive field (see :mod:`convscope.trace`). Nothing is
stored on the model.

>>> from convscope.models import lenet5
>>> rows = summarize(lenet5(rng=np.random.default_rng(0)), (1, 28, 28))
>>> [(r.name, r.receptive_field) for r in rows if r.kind == "MaxPool2d"]
[('2', (6, 6)), ('5', (16, 16))]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .functional.upsampling import resized_hw
from .nn import Module, eval_mode  # noqa: F401  (eval_mode's home is nn; kept importable from here)
from .tensor import Tensor
from .trace import Field, Layer, Trace, hooked, is_shown, receptive_fields  # noqa: F401  (hooked & co: kept importable)
from .trace import trace as trace_model  # not as `trace`: summary.trace once returned (calls, output)


# ----- output-size arithmetic ---------------------------------------------------------
def _axis_formula(size, pads, kernel, stride, dilation, ceil_mode, out):
    """``(28 + 2*2 - 5)/1 + 1 = 28`` for one axis of ``out`` positions (from the layer's
    window); floor/ceil shown when stride does not divide, and a ceil_mode window that would
    start in the right padding said to be dropped."""
    top, bottom = pads
    pad = f"2*{top}" if top == bottom else f"({top}+{bottom})"
    span = f"{kernel}" if dilation == 1 else f"{dilation}*({kernel}-1) - 1"
    numerator = size + top + bottom - dilation * (kernel - 1) - 1
    text = f"({size} + {pad} - {span})/{stride}"
    if numerator % stride:
        text = ("ceil" if ceil_mode else "floor") + f"({text})"
    formula = (-(-numerator // stride) if ceil_mode else numerator // stride) + 1
    if formula != out:
        return f"{text} + 1 - 1 = {out} (the last window would start in the padding: dropped)"
    return f"{text} + 1 = {out}"


def _transposed_formula(size, pads, kernel, stride, dilation, output_padding, out):
    """``(14 - 1)*2 - 2*1 + (4-1) + 1 = 28``: a transposed conv's output size along one axis."""
    span = f"({kernel}-1)" if dilation == 1 else f"{dilation}*({kernel}-1)"
    extra = f" + {output_padding}" if output_padding else ""
    return f"({size} - 1)*{stride} - 2*{pads[0]} + {span}{extra} + 1 = {out}"


def _resize_formula(module, size, out, axis):
    """``floor(28*1.5) = 42`` (a scale factor) or ``size 56 (x2)`` (a size), one axis of an Upsample."""
    if module.size is not None:
        return f"size {out} ({out / size:.3g}x)"
    factor = module.scale_factor[axis] if isinstance(module.scale_factor, tuple) else module.scale_factor
    return f"floor({size}*{float(factor):g}) = {out}"


def size_arithmetic(module: Module, in_shape: tuple[int, ...]) -> str | None:
    """The output-size formula of a spatial layer with its numbers, or None."""
    in_hw = tuple(in_shape[2:])
    if module.role == "upsample" and len(in_shape) == 4:
        out_hw = resized_hw(in_hw, module.size, module.scale_factor)
        texts = [f"{module.mode}: " + _resize_formula(module, in_hw[a], out_hw[a], a) for a in (0, 1)]
        return texts[0] if texts[0] == texts[1] else f"H: {texts[0]};  W: {texts[1]}"
    window = module.geometry(in_hw) if len(in_shape) == 4 else None
    if window is None:
        return None
    if module.role == "adaptive_pool":
        (h, w), (oh, ow) = in_hw, module.output_size
        return f"adaptive: {h}x{w} -> {oh}x{ow} (bins of about {h / oh:g}x{w / ow:g})"
    out_hw = window.output_hw(in_hw)
    axes = [(in_hw[a], window.padding[2 * a:2 * a + 2], window.kernel[a], window.stride[a], window.dilation[a],
             window.output_padding[a] if window.transposed else window.ceil_mode, out_hw[a]) for a in (0, 1)]
    texts = [(_transposed_formula if window.transposed else _axis_formula)(*axis) for axis in axes]
    return texts[0] if texts[0] == texts[1] else f"H: {texts[0]};  W: {texts[1]}"


# ----- rows ---------------------------------------------------------------------------
@dataclass
class LayerRow:
    """One line of the summary; numbers are per image.

    Shapes include the batch axis. ``receptive_field``, ``jump`` and ``start`` (see
    :class:`~convscope.trace.Field`) are (h, w) in input pixels, None once every output sees
    the whole input (after Flatten). ``weights`` and ``dense_weights`` (conv only): the
    conv's weights, and what a fully connected layer mapping the same input to the same
    output would need. ``module`` is the layer itself.
    """

    name: str
    kind: str
    input_shape: tuple
    output_shape: tuple
    params: int
    mult_adds: int
    receptive_field: tuple = None
    jump: tuple = None
    start: tuple = None
    arithmetic: str = None
    weights: int = None
    dense_weights: int = None
    module: object = dataclasses.field(default=None, repr=False, compare=False)


def own_params(module: Module) -> int:
    """Parameters held by this module itself (not by its children)."""
    return sum(p.size for p in module._parameters.values() if p is not None)


def make_row(layer: Layer) -> LayerRow:
    """The :class:`LayerRow` of one traced :class:`~convscope.trace.Layer`."""
    module, in_shape, out_shape = layer.module, layer.input_shape, layer.output_shape
    row = LayerRow(layer.name, layer.kind, in_shape, out_shape, own_params(module),
                   int(module.mult_adds(in_shape, out_shape)), module=module)
    if layer.field is not None:
        row.receptive_field, row.jump, row.start = layer.field
    row.arithmetic = size_arithmetic(module, in_shape)
    if module.role == "conv":
        row.weights = module.weight.size
        row.dense_weights = int(np.prod(in_shape[1:], dtype=np.int64) * np.prod(out_shape[1:], dtype=np.int64))
    return row


def rows_of(traced: Trace) -> list[LayerRow]:
    """One :class:`LayerRow` per layer of a :class:`~convscope.trace.Trace`, in call order."""
    return [make_row(layer) for layer in traced.layers]


def example_input(model: Module, input_shape: tuple[int, ...]) -> np.ndarray:
    """Zeros of shape (N, C, H, W) (N = 1 for a (C, H, W) shape) in the model's dtype."""
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {input_shape!r}")
    params = model.parameters()
    return np.zeros(shape, dtype=params[0].dtype if params else np.float32)


def summarize(model: Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """One :class:`LayerRow` per layer, in the order the forward pass calls them.

    Args: input_shape (C, H, W) or (N, C, H, W).
    """
    return rows_of(trace_model(model, Tensor(example_input(model, input_shape)), keep_outputs=False))


# ----- text ---------------------------------------------------------------------------
def _shape(shape):
    return "x".join(str(s) for s in shape[1:])


def _pair(value):
    """``5``, ``5x3``, ``2.5`` (a field after upsampling can be a fraction), or ``all``."""
    if value is None:
        return "all"
    return f"{value[0]:g}x{value[1]:g}" if value[0] != value[1] else f"{value[0]:g}"


def format_table(rows: list[LayerRow], input_shape: tuple[int, ...]) -> str:
    """The layer table: name, type, output shape, params, mult-adds, RF and jump."""
    header = ("Layer", "Type", "Output", "Params", "Mult-adds", "RF", "Jump")
    lines = [("input", "", _shape((1,) + tuple(input_shape)[-3:]), "", "", "1", "1")]
    lines += [(r.name, r.kind, _shape(r.output_shape), f"{r.params:,}", f"{r.mult_adds:,}",
               _pair(r.receptive_field), _pair(r.jump)) for r in rows]
    widths = [max(len(str(line[i])) for line in [header] + lines) for i in range(len(header))]
    def fmt(line):
        cells = [str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()
    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule] + [fmt(line) for line in lines] + [rule])


def format_totals(model: Module, rows: list[LayerRow]) -> str:
    """Total parameters, mult-adds and the float32 size of the weights."""
    total = sum(p.size for p in model.parameters())
    macs = sum(r.mult_adds for r in rows)
    return (f"Total parameters: {total:,} ({total * 4 / 1024:,.1f} KiB as float32)\n"
            f"Total multiply-adds per image: {macs:,}\n"
            f"Output: {_shape(rows[-1].output_shape) if rows else '-'}")


def format_sharing(rows: list[LayerRow]) -> str:
    """Per conv layer: its weights against a dense layer with the same input and output."""
    lines = []
    for r in rows:
        if r.dense_weights is not None:
            lines.append(f"  {r.name}: {r.weights:,} shared weights vs {r.dense_weights:,} for a dense "
                         f"{_shape(r.input_shape)} -> {_shape(r.output_shape)} layer "
                         f"({r.dense_weights / r.weights:,.0f}x fewer)")
    header = "Local, shared weights (conv layers; weights only, biases not counted on either side):\n"
    return header + "\n".join(lines) if lines else ""


def summary(model: Module, input_shape: tuple[int, ...], rows: list[LayerRow] | None = None) -> str:
    """A printable summary of ``model`` on inputs of ``input_shape`` ((C, H, W) or (N, C, H, W)).

    The table has, per layer, output shape, parameter count, multiply-adds per image and the
    receptive field (RF) and jump in input pixels; then the output-size arithmetic of each
    spatial layer, the totals, and the saving of local, shared conv weights. ``rows``: the
    :class:`LayerRow` list of an existing trace (default: trace the model now).
    """
    rows = summarize(model, input_shape) if rows is None else rows
    arithmetic = [f"  {r.name} {r.kind}: {r.arithmetic}" for r in rows if r.arithmetic]
    formulas = "Output size, H_out = floor((H + 2*padding - dilation*(k-1) - 1)/stride) + 1"
    if any(r.module is not None and r.module.role == "conv_transpose" for r in rows):
        formulas += ";\n  transposed: H_out = (H - 1)*stride - 2*padding + dilation*(k-1) + output_padding + 1"
    parts = [f"{type(model).__name__} on input {_shape((1,) + tuple(input_shape)[-3:])}",
             format_table(rows, input_shape), format_totals(model, rows),
             formulas + ":\n" + "\n".join(arithmetic), format_sharing(rows)]
    return "\n\n".join(p for p in parts if p) + "\n"
