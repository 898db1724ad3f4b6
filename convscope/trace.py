"""One forward pass, recorded: every layer call in order, with its shapes, output and geometry.

:func:`trace` runs a model once on an input (in eval mode) and returns a :class:`Trace`:
the shown layers in the order they ran, each with its name, module, input and output
shapes, its output tensor (when asked), its :class:`~convscope.windows.Window` if it slides
one, and the cumulative receptive field. The summary, the explanation, every picture of
``convscope viz``, the report and the web explorer read this one object instead of running
the model again. Traced with ``gradients=True``, the same pass also gives, after one
:meth:`Trace.backward`, the gradient of a class score with respect to the input and to
every layer's output (saliency and Grad-CAM).

The receptive field (how many input pixels one output pixel can see) and the jump (how many
input pixels apart two neighbouring output pixels are) follow from each layer's window::

    conv, pooling:          jump_out = jump_in * stride     RF_out = RF_in + (k - 1) * dilation * jump_in
    transposed conv:        jump_out = jump_in / stride     RF_out = RF_in + (k - 1) * dilation * jump_out
    upsampling by f:        as the transposed conv it equals (nearest: k = f, stride f)

After upsampling the jump and the field can be fractions of an input pixel: the field is
then the span that contains every input pixel the output pixel can see (at most
floor(RF) of them along an axis). A residual block adds two branches; its receptive field is
that of the longer one.

Nothing is stored on the model: each module's ``forward`` is wrapped for the length of the
pass (:func:`hooked`) and put back afterwards.

>>> from convscope.models import lenet5
>>> t = trace(lenet5(rng=np.random.default_rng(0)), np.zeros((1, 1, 28, 28), np.float32))
>>> [(layer.name, layer.output_shape, layer.field.rf) for layer in t.layers[:3]]
[('0', (1, 6, 28, 28), (5, 5)), ('1', (1, 6, 28, 28), (5, 5)), ('2', (1, 6, 14, 14), (6, 6))]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import functional as F
from .nn import Module, eval_mode
from .tensor import Tensor, no_grad
from .windows import Window


# ----- wrapping every module's forward for one pass -------------------------------------
@contextlib.contextmanager
def hooked(model: Module, hook: Callable[[str, Module, tuple, Tensor], Tensor | None]) -> Iterator[Module]:
    """Within the block, each call of a module inside ``model`` ends with ``hook``.

    ``hook(name, module, inputs, output)`` is called after the module's forward; if it
    returns something other than None, that replaces the module's output. Each module's
    ``forward`` is wrapped in the instance dict and the wrapper is deleted on exit, even
    after an error.
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
def frozen(model: Module) -> Iterator[Module]:
    """Switch off ``requires_grad`` on every parameter for the block, then restore it, so a
    backward pass through the model computes input gradients only."""
    params = model.parameters()
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad = False
    try:
        yield model
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag


@dataclass
class LayerCall:
    """One module call seen during a traced forward pass (containers included)."""

    name: str
    module: Module
    inputs: tuple
    output: Tensor


def record_calls(model: Module, x: Tensor) -> tuple[list[LayerCall], Tensor]:
    """``model(x)`` with every module call recorded, in completion order (children finish
    before parents): ``(list of LayerCall, output)``. Runs as called: no mode or grad change."""
    calls = []
    with hooked(model, lambda *call: calls.append(LayerCall(*call))):
        out = model(x)
    return calls, out


# ----- receptive field ----------------------------------------------------------------
class Field(NamedTuple):
    """What one output pixel sees, in input pixels, as (h, w) pairs: the receptive field
    size ``rf``, the ``jump`` between neighbouring outputs, and the ``start``, the centre
    of output pixel (0, 0)'s field (output pixel i is centred on ``start + i*jump``)."""

    rf: tuple
    jump: tuple
    start: tuple


INPUT_FIELD = Field((1, 1), (1, 1), (0.0, 0.0))


def next_field(field: Field | None, window: Window | None, in_shape: tuple[int, ...],
               out_shape: tuple[int, ...]) -> Field | None:
    """The :class:`Field` after a layer with ``window`` (None: a pointwise layer), per axis.

    A conv or pooling window at output i reads inputs ``i*stride - padding + t*dilation`` for
    taps t = 0..k-1, so::

        jump_out = jump_in*stride      rf_out = rf_in + (k-1)*dilation*jump_in
        start_out = start_in + ((k-1)*dilation/2 - padding)*jump_in

    A transposed window is read the other way: output o receives input i when
    ``o = i*stride - padding + t*dilation``, i.e. from inputs between
    ``(o + padding - (k-1)*dilation)/stride`` and ``(o + padding)/stride``, so::

        jump_out = jump_in/stride      rf_out = rf_in + (k-1)*dilation*jump_out
        start_out = start_in + (padding - (k-1)*dilation/2)*jump_out

    (``output_padding`` only adds outputs at the end; it moves no centre.) The field of output
    o spans ``start + o*jump +- (rf - 1)/2``; after a transposed window it is a bound (not every
    o meets inputs at both ends). None means "every input pixel" (after Flatten, Linear, a
    resize without a window, or any non-image output).
    """
    if field is None or len(out_shape) != 4 or len(in_shape) != 4:
        return None
    if window is None:
        return field if out_shape[2:] == in_shape[2:] else None
    per_axis = zip(field.rf, field.jump, field.start, window.kernel, window.stride, window.dilation, window.before())
    if window.transposed:
        rf, jump, start = zip(*[(r + (k - 1) * d * j / s, j / s, c + (p - (k - 1) * d / 2) * j / s)
                                for r, j, c, k, s, d, p in per_axis])
    else:
        rf, jump, start = zip(*[(r + (k - 1) * d * j, j * s, c + ((k - 1) * d / 2 - p) * j)
                                for r, j, c, k, s, d, p in per_axis])
    return Field(tuple(map(_whole, rf)), tuple(map(_whole, jump)), start)


def _whole(value):
    """An int-valued rf or jump as an int (a conv stack's stay ints), a fraction as a float."""
    return int(value) if isinstance(value, float) and value.is_integer() and not isinstance(value, bool) else value


def _geometry(call):
    source = call.inputs[0] if call.inputs else None
    if not isinstance(source, Tensor) or source.ndim != 4:
        return None
    return call.module.geometry(source.shape[2:])


def receptive_fields(calls: list[LayerCall], x: Tensor) -> list[Field | None]:
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
            if isinstance(source, Tensor):
                field = next_field(fields.get(id(source), latest), _geometry(call), source.shape, call.output.shape)
            else:  # no tensor input to follow
                field = None
        fields.setdefault(id(call.output), field)
        result.append(fields[id(call.output)])
        latest = result[-1]
    return result


# ----- the record of one pass -------------------------------------------------------------
@dataclass(eq=False)
class Layer:
    """One shown layer call of a traced pass.

    ``name`` is the module's dotted name (``name#2`` for its second call); shapes include the
    batch axis; ``output`` and ``input`` are the output Tensor and the first input Tensor
    (None when the trace keeps shapes only);
    ``window`` the layer's :class:`~convscope.windows.Window` (None if it slides none);
    ``field`` the :class:`Field` of its output (None once every output sees the whole input).
    """

    index: int
    name: str
    module: Module
    input_shape: tuple
    output_shape: tuple
    output: Tensor | None = None
    window: Window | None = None
    field: Field | None = None
    input: Tensor | None = None

    @property
    def kind(self) -> str:
        """The layer's class name, e.g. "Conv2d"."""
        return type(self.module).__name__

    @property
    def values(self) -> np.ndarray | None:
        """The output as an ndarray (N, ...)."""
        return None if self.output is None else self.output.data

    @property
    def gradient(self) -> np.ndarray | None:
        """d(score)/d(output) after :meth:`Trace.backward` (None before, or without gradients)."""
        return None if self.output is None else self.output.grad


def is_shown(call: LayerCall) -> bool:
    """Layers that get a row: leaves (except an identity ``Sequential()``) and blocks with
    their own forward (e.g. a residual block), but not the model itself or plain containers."""
    return call.name != "" and not call.module.container


def _unique(name, taken):
    """``name``, or ``name#2``, ``name#3``... for a layer called more than once."""
    if name not in taken:
        return name
    k = 2
    while f"{name}#{k}" in taken:
        k += 1
    return f"{name}#{k}"


class Trace:
    """Everything one forward pass of ``model`` on ``input`` showed.

    ``layers``: the shown :class:`Layer` calls in the order they finished; ``output``: the
    model's output Tensor; ``calls``: every module call (containers included). Index by
    layer name: ``t["0"]``.
    """

    def __init__(self, model: Module, x: Tensor, calls: list[LayerCall], output: Tensor, keep_outputs: bool,
                 gradients: bool = False) -> None:
        self.model, self.input, self.output, self.calls = model, x, output, calls
        self.gradients = gradients  # the graph was kept: backward() can run
        self.target = self.target_index = None  # the class (and image) the last backward() followed
        calls = [c for c in calls if isinstance(c.output, Tensor)]  # a layer returning a tuple is not shown
        fields, names = receptive_fields(calls, x), set()
        self.layers = []
        for call, field in zip(calls, fields):
            if not is_shown(call):
                continue
            name = _unique(call.name, names)
            names.add(name)
            source = call.inputs[0] if call.inputs and isinstance(call.inputs[0], Tensor) else call.output
            kept = (call.output, source) if keep_outputs else (None, None)
            self.layers.append(Layer(len(self.layers), name, call.module, tuple(source.shape),
                                     tuple(call.output.shape), kept[0], _geometry(call), field, kept[1]))
        self._by_name = {layer.name: layer for layer in self.layers}
        if not keep_outputs:
            self.calls = [LayerCall(c.name, c.module, (), None) for c in calls]

    def __getitem__(self, name: str) -> Layer:
        if name not in self._by_name:
            raise KeyError(f"no layer named {name!r}; the traced layers are {', '.join(self._by_name)}")
        return self._by_name[name]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def outputs(self) -> dict[str, np.ndarray | None]:
        """``{layer name: output ndarray (N, ...)}`` in order."""
        return {layer.name: layer.values for layer in self.layers}

    def first(self, role: str) -> Layer | None:
        """The first layer whose module has ``role`` ("conv", "pool", ...), or None."""
        return next((layer for layer in self.layers if layer.module.role == role), None)

    def probabilities(self) -> np.ndarray:
        """Softmax of the model's output over the class axis, (N, K), as ``predict`` gives."""
        return F.softmax(Tensor(self.output.data), dim=1).data

    def predicted(self, index: int = 0) -> int:
        """The class with the largest output score for image ``index`` (summed over any
        axes after the class axis)."""
        scores = self.output.data[index]
        return int(scores.reshape(len(scores), -1).sum(axis=1).argmax() if scores.ndim > 1 else scores.argmax())

    def backward(self, target: int | None = None, index: int = 0) -> int:
        """Backpropagate the score of class ``target`` (default: the predicted class) of
        image ``index``; afterwards ``input_gradient`` and each layer's ``gradient`` hold
        d(score)/d(them). The score is ``output[index, target]``, summed if it has more than
        one value (a class's map of a per-pixel model). Needs a trace made with
        ``gradients=True``; returns ``target``."""
        if not self.gradients:
            raise RuntimeError("backward() needs a trace made with trace(..., gradients=True)")
        target = self.predicted(index) if target is None else int(target)
        self.input.grad = None
        for call in self.calls:  # every recorded output, shown or not: nothing accumulates
            if isinstance(call.output, Tensor):
                call.output.grad = None
        with frozen(self.model):  # backward reads requires_grad: no weight gradients
            score = self.output[index, target]
            (score if score.size == 1 else score.sum()).backward()
        self.target, self.target_index = target, index
        return target

    @property
    def input_gradient(self) -> np.ndarray | None:
        """d(score)/d(input) after :meth:`backward`, shape of the input (N, C, H, W)."""
        return self.input.grad


def trace(model: Module, x: np.ndarray | Tensor, gradients: bool = False, keep_outputs: bool = True) -> Trace:
    """Run ``model(x)`` once, in eval mode, and record it.

    Args:
        x (ndarray or Tensor): input (N, C, H, W), normalised as in training.
        gradients (bool): keep the graph (input gradients only: weights are frozen) so that
            :meth:`Trace.backward` can follow. Default False: no graph, like ``no_grad``.
        keep_outputs (bool): keep every layer's output (default); False keeps shapes only.
    Returns: :class:`Trace`.
    """
    if gradients and not keep_outputs:
        raise ValueError("trace: gradients=True keeps every layer's output for its gradient; "
                         "keep_outputs=False cannot go with it")
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    with eval_mode(model):
        if gradients:
            x = Tensor(data.copy(), requires_grad=True)
            with frozen(model):
                calls, out = record_calls(model, x)
            for call in calls:
                if isinstance(call.output, Tensor):
                    call.output.retain_grad()
        else:
            x = x if isinstance(x, Tensor) else Tensor(data)
            with no_grad():
                calls, out = record_calls(model, x)
    return Trace(model, x, calls, out, keep_outputs, gradients)


def as_trace(model: Module | Trace, x: np.ndarray | Tensor | None = None, **options: bool) -> Trace:
    """``model`` itself if it is already a :class:`Trace`, else :func:`trace` of ``x`` with
    ``options`` (``gradients``, ``keep_outputs``): so a picture can be drawn from an existing
    pass or make its own."""
    return model if isinstance(model, Trace) else trace(model, x, **options)
