"""What a model does to an input, layer by layer: shapes, weights, cost and receptive field.

Shapes come from a real forward pass (under ``no_grad``, in eval mode) traced with
:func:`hooked`, which wraps every module's ``forward`` for the length of a ``with`` block
and puts it back afterwards: nothing is stored on the model. The receptive field (how
many input pixels one output pixel can see) and the jump (how many input pixels apart
two neighbouring output pixels are) follow from each layer's hyperparameters::

    RF_out = RF_in + (k - 1) * dilation * jump_in        jump_out = jump_in * stride

A residual block adds two branches; its receptive field is that of the longer one.

>>> from convscope.models import lenet5
>>> rows = summarize(lenet5(rng=np.random.default_rng(0)), (1, 28, 28))
>>> [(r.name, r.receptive_field) for r in rows if r.kind == "MaxPool2d"]
[('2', (6, 6)), ('5', (16, 16))]
"""

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import nn
from .functional.conv import conv_padding
from .tensor import Tensor, no_grad
from .windows import output_size

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)


# ----- tracing: every module call, without leaving anything on the model ----------------
@contextlib.contextmanager
def hooked(model, hook):
    """Within the block, each call of a module inside ``model`` ends with ``hook``.

    ``hook(name, module, inputs, output)`` is called after the module's forward; if it
    returns something other than None, that replaces the module's output (Grad-CAM uses
    this to tap a layer). Each module's ``forward`` is wrapped in the instance dict and
    the wrapper is deleted on exit, even after an error.
    """
    wrapped, seen = [], set()
    try:
        for name, module in model.named_modules():
            if id(module) in seen:
                continue
            seen.add(id(module))
            if "forward" in vars(module):
                raise RuntimeError(f"module {name or type(module).__name__!r} is already hooked")
            object.__setattr__(module, "forward", _wrap(name, module, module.forward, hook))
            wrapped.append(module)
        yield model
    finally:
        for module in wrapped:
            object.__delattr__(module, "forward")


def _wrap(name, module, forward, hook):
    def traced(*args, **kwargs):
        out = forward(*args, **kwargs)
        replaced = hook(name, module, args, out)
        return out if replaced is None else replaced
    return traced


@contextlib.contextmanager
def eval_mode(model):
    """Put every module in eval mode for the block, then restore each one's own flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            object.__setattr__(module, "training", flag)


@dataclass
class LayerCall:
    """One module call seen during a traced forward pass."""

    name: str
    module: object
    inputs: tuple
    output: Tensor


def trace(model, x):
    """Run ``model(x)`` in eval mode without gradients; every module call, in completion order.

    Args: x (ndarray or Tensor) of shape (N, C, H, W).
    Returns: (list of :class:`LayerCall`, output Tensor). Children finish before parents.
    """
    calls = []
    x = x if isinstance(x, Tensor) else Tensor(x)
    with eval_mode(model), no_grad(), hooked(model, lambda *call: calls.append(LayerCall(*call))):
        out = model(x)
    return calls, out


def is_shown(call):
    """Layers that get a row: leaves (except an identity ``Sequential()``) and blocks with
    their own forward (e.g. a residual block), but not plain ``Sequential`` containers."""
    if call.name == "":
        return False
    if isinstance(call.module, nn.Sequential):
        return False
    return True


# ----- receptive field ----------------------------------------------------------------
class Field(NamedTuple):
    """What one output pixel sees, in input pixels, as (h, w) pairs: the receptive field
    size ``rf``, the ``jump`` between neighbouring outputs, and the ``start``, the centre
    of output pixel (0, 0)'s field (output pixel i is centred on ``start + i*jump``)."""

    rf: tuple
    jump: tuple
    start: tuple


INPUT_FIELD = Field((1, 1), (1, 1), (0.0, 0.0))


def window_geometry(module, in_hw):
    """(kernel, stride, dilation, padding before) pairs of a spatial layer, or None."""
    if isinstance(module, nn.Conv2d):
        top, _, left, _ = conv_padding(module.padding, module.kernel_size, module.dilation, module.stride)
        return module.kernel_size, module.stride, module.dilation, (top, left)
    if isinstance(module, _POOLS):
        return module.kernel_size, module.stride, (1, 1), module.padding
    if isinstance(module, nn.AdaptiveAvgPool2d):
        strides = tuple(s // o for s, o in zip(in_hw, module.output_size))
        kernels = tuple(s - (o - 1) * st for s, o, st in zip(in_hw, module.output_size, strides))
        return kernels, strides, (1, 1), (0, 0)
    return None


def next_field(field, module, in_shape, out_shape):
    """The :class:`Field` after ``module``, per axis::

        rf_out = rf_in + (k-1)*dilation*jump_in      jump_out = jump_in*stride
        start_out = start_in + ((k-1)*dilation/2 - padding)*jump_in

    None means "every input pixel" (after Flatten, Linear, or any non-image output).
    """
    if field is None or len(out_shape) != 4 or len(in_shape) != 4:
        return None
    geometry = window_geometry(module, in_shape[2:])
    if geometry is None:
        return field if out_shape[2:] == in_shape[2:] else None
    per_axis = zip(field.rf, field.jump, field.start, *geometry)
    rf, jump, start = zip(*[(r + (k - 1) * d * j, j * s, c + ((k - 1) * d / 2 - p) * j)
                            for r, j, c, k, s, d, p in per_axis])
    return Field(rf, jump, start)


def receptive_fields(calls, x):
    """The :class:`Field` of every call's output, by call index.

    A call's input is looked up by identity among earlier outputs; an input made by a
    functional op between layers (e.g. ``F.relu(a + b)``) takes the latest known field.
    A block whose output is new (a residual sum) takes the largest field of its layers.
    """
    fields, result, latest = {id(x): INPUT_FIELD}, [], INPUT_FIELD
    for call in calls:
        known = id(call.output) in fields
        if call.module.children() and not known:
            inner = [fields[id(c.output)] for c in calls[:len(result)]
                     if c.name.startswith(call.name + ".") and id(c.output) in fields]
            field = max(inner, key=lambda f: (-1,) if f is None else f.rf, default=latest)
        elif call.module.children() or known:
            field = fields.get(id(call.output), latest)
        else:
            source = call.inputs[0] if call.inputs else None
            field = next_field(fields.get(id(source), latest), call.module,
                               source.shape, call.output.shape)
        fields.setdefault(id(call.output), field)
        result.append(fields[id(call.output)])
        latest = result[-1]
    return result


# ----- output-size arithmetic ---------------------------------------------------------
def _axis_formula(size, pads, kernel, stride, dilation, ceil_mode):
    """``(28 + 2*2 - 5)/1 + 1 = 28`` for one axis; floor/ceil shown when stride does not divide."""
    top, bottom = pads
    pad = f"2*{top}" if top == bottom else f"({top}+{bottom})"
    span = f"{kernel}" if dilation == 1 else f"{dilation}*({kernel}-1) - 1"
    numerator = size + top + bottom - dilation * (kernel - 1) - 1
    text = f"({size} + {pad} - {span})/{stride}"
    if numerator % stride:
        text = ("ceil" if ceil_mode else "floor") + f"({text})"
    out = output_size(size + top + bottom, kernel, stride, 0, dilation, ceil_mode)
    return f"{text} + 1 = {out}"


def size_arithmetic(module, in_shape):
    """The output-size formula of a spatial layer with its numbers, or None."""
    in_hw = in_shape[2:]
    if isinstance(module, nn.Conv2d):
        t, b, l, r = conv_padding(module.padding, module.kernel_size, module.dilation, module.stride)
        axes = [(in_hw[0], (t, b), module.kernel_size[0], module.stride[0], module.dilation[0], False),
                (in_hw[1], (l, r), module.kernel_size[1], module.stride[1], module.dilation[1], False)]
    elif isinstance(module, _POOLS):
        axes = [(s, (p, p), k, st, 1, module.ceil_mode) for s, p, k, st in
                zip(in_hw, module.padding, module.kernel_size, module.stride)]
    elif isinstance(module, nn.AdaptiveAvgPool2d):
        (h, w), (oh, ow) = in_hw, module.output_size
        return f"adaptive: {h}x{w} -> {oh}x{ow} (bins of about {h / oh:g}x{w / ow:g})"
    else:
        return None
    texts = [_axis_formula(*axis) for axis in axes]
    return texts[0] if texts[0] == texts[1] else f"H: {texts[0]};  W: {texts[1]}"


# ----- rows ---------------------------------------------------------------------------
@dataclass
class LayerRow:
    """One line of the summary; numbers are per image.

    Shapes include the batch axis. ``receptive_field``, ``jump`` and ``start`` (see
    :class:`Field`) are (h, w) in input pixels, None once every output sees the whole
    input (after Flatten). ``weights`` and
    ``dense_weights`` (conv only): the conv's weights, and what a fully connected layer
    mapping the same input to the same output would need. ``module`` is the layer itself.
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


def own_params(module):
    """Parameters held by this module itself (not by its children)."""
    return sum(p.size for p in module._parameters.values() if p is not None)


def mult_adds(module, in_shape, out_shape):
    """Multiply-adds per image: conv and linear weights, batch norm's scale-and-shift; else 0."""
    per_output = np.prod(out_shape[1:], dtype=np.int64)
    if isinstance(module, nn.Conv2d):
        return int(per_output * np.prod(module.weight.shape[1:]))
    if isinstance(module, nn.Linear):
        return int(module.in_features * module.out_features)
    if isinstance(module, nn.BatchNorm2d):
        return int(per_output)
    return 0


def make_row(call, field):
    """The :class:`LayerRow` of one traced call, given its :class:`Field` (or None)."""
    module, out_shape = call.module, call.output.shape
    in_shape = call.inputs[0].shape if call.inputs else out_shape
    row = LayerRow(call.name, type(module).__name__, in_shape, out_shape, own_params(module),
                   mult_adds(module, in_shape, out_shape), module=module)
    if field is not None:
        row.receptive_field, row.jump, row.start = field
    if len(in_shape) == 4:
        row.arithmetic = size_arithmetic(module, in_shape)
    if isinstance(module, nn.Conv2d):
        row.weights = module.weight.size
        row.dense_weights = int(np.prod(in_shape[1:], dtype=np.int64) * np.prod(out_shape[1:], dtype=np.int64))
    return row


def example_input(model, input_shape):
    """Zeros of shape (N, C, H, W) (N = 1 for a (C, H, W) shape) in the model's dtype."""
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {input_shape!r}")
    params = model.parameters()
    return np.zeros(shape, dtype=params[0].dtype if params else np.float32)


def summarize(model, input_shape):
    """One :class:`LayerRow` per layer, in the order the forward pass calls them.

    Args: input_shape (C, H, W) or (N, C, H, W).
    """
    x = Tensor(example_input(model, input_shape))
    calls, _ = trace(model, x)
    fields = receptive_fields(calls, x)
    return [make_row(c, f) for c, f in zip(calls, fields) if is_shown(c)]


# ----- text ---------------------------------------------------------------------------
def _shape(shape):
    return "x".join(str(s) for s in shape[1:])


def _pair(value):
    if value is None:
        return "all"
    return f"{value[0]}x{value[1]}" if value[0] != value[1] else f"{value[0]}"


def format_table(rows, input_shape):
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


def format_totals(model, rows):
    """Total parameters, mult-adds and the float32 size of the weights."""
    total = sum(p.size for p in model.parameters())
    macs = sum(r.mult_adds for r in rows)
    return (f"Total parameters: {total:,} ({total * 4 / 1024:,.1f} KiB as float32)\n"
            f"Total multiply-adds per image: {macs:,}\n"
            f"Output: {_shape(rows[-1].output_shape) if rows else '-'}")


def format_sharing(rows):
    """Per conv layer: its weights against a dense layer with the same input and output."""
    lines = []
    for r in rows:
        if r.dense_weights is not None:
            lines.append(f"  {r.name}: {r.weights:,} shared weights vs {r.dense_weights:,} for a dense "
                         f"{_shape(r.input_shape)} -> {_shape(r.output_shape)} layer "
                         f"({r.dense_weights / r.weights:,.0f}x fewer)")
    header = "Local, shared weights (conv layers; weights only, biases not counted on either side):\n"
    return header + "\n".join(lines) if lines else ""


def summary(model, input_shape):
    """A printable summary of ``model`` on inputs of ``input_shape`` ((C, H, W) or (N, C, H, W)).

    The table has, per layer, output shape, parameter count, multiply-adds per image and the
    receptive field (RF) and jump in input pixels; then the output-size arithmetic of each
    spatial layer, the totals, and the saving of local, shared conv weights.
    """
    rows = summarize(model, input_shape)
    arithmetic = [f"  {r.name} {r.kind}: {r.arithmetic}" for r in rows if r.arithmetic]
    parts = [f"{type(model).__name__} on input {_shape((1,) + tuple(input_shape)[-3:])}",
             format_table(rows, input_shape), format_totals(model, rows),
             "Output size, H_out = floor((H + 2*padding - dilation*(k-1) - 1)/stride) + 1:\n"
             + "\n".join(arithmetic), format_sharing(rows)]
    return "\n\n".join(p for p in parts if p) + "\n"
