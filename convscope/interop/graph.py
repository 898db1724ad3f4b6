"""A model's forward pass as a list of steps: the layers and the operations between them.

Exporting needs more than the module tree: a ResNet block adds its shortcut with ``+`` and
a U-Net joins its skips with ``F.cat``, inside ``forward``, where no module is called. So
:func:`forward_steps` runs the model once on an example input (eval mode, the graph
recorded) and reads the pass back from the output:

* a tensor that a **leaf layer** returned (a module with no children: Conv2d, ReLU, ...)
  is one step, that layer applied to its input; what the layer does inside is not looked at;
* any other tensor was made by a **tensor operation** between layers (``op`` "add", "cat",
  "relu"...), one step with the operation's name, whose inputs are the tensors it was made from;
* the example input ends the walk.

A layer that returns its input unchanged (Dropout in eval mode, an empty ``Sequential``
shortcut) makes no step. A tensor reached that is neither (a constant, or a tensor cut off
with ``detach``) raises :class:`ExportError`: it cannot be recomputed from a new input.
The steps come in an order where every input is made before it is used.

>>> import numpy as np
>>> from convscope.models import SmallResNet
>>> x, steps = forward_steps(SmallResNet(width=4, rng=np.random.default_rng(0)), np.zeros((1, 3, 8, 8), np.float32))
>>> [step.name for step in steps[3:9]]
['stages.0.conv1', 'stages.0.bn1', 'stages.0.relu', 'stages.0.conv2', 'stages.0.bn2', 'add']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn import Module, eval_mode
from ..tensor import Tensor
from ..trace import record_calls


class ExportError(ValueError):
    """A model, layer or operation that has no equivalent in the export format."""


@dataclass(eq=False)
class Step:
    """One step of a forward pass: ``module`` (a leaf layer, named by its dotted ``name``)
    or the tensor operation ``op`` (then ``module`` is None), from ``inputs`` to ``output``."""

    name: str
    module: Module | None
    op: str | None
    inputs: tuple[Tensor, ...]
    output: Tensor


def _layer_outputs(calls, x):
    """``{id(output tensor): call}`` for every leaf layer call that made a new tensor."""
    made = {}
    for call in calls:
        if call.module.children() or not isinstance(call.output, Tensor):
            continue
        if any(call.output is a for a in call.inputs):  # identity: Dropout in eval, Sequential()
            continue
        made.setdefault(id(call.output), call)
    return made


def _sources(tensor, made, x):
    """The tensors ``tensor`` was computed from, as steps see them."""
    if tensor is x:
        return ()
    call = made.get(id(tensor))
    if call is not None:
        return tuple(a for a in call.inputs if isinstance(a, Tensor))
    return tensor._parents


def _ordered(out, made, x):
    """Every tensor the output depends on, inputs before the tensors made from them."""
    order, seen, stack = [], set(), [(out, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
        elif id(tensor) not in seen:
            seen.add(id(tensor))
            stack.append((tensor, True))
            stack.extend((s, False) for s in reversed(_sources(tensor, made, x)))
    return order


def _check_sources(model, step, made, x):
    """Raise ExportError if ``step`` reads a tensor that is neither the input nor made by a step."""
    for source in step.inputs:
        if source is not x and id(source) not in made and not source._parents:
            what = f"layer {step.name} ({type(step.module).__name__})" if step.module else f"the operation {step.op!r}"
            raise ExportError(f"{what} in the forward of {type(model).__name__} takes a tensor of shape "
                              f"{source.shape} that is not computed from the input (a constant, or cut off with "
                              "detach); an exported graph holds only layers and operations on the input")


def forward_steps(model: Module, x: np.ndarray | Tensor) -> tuple[Tensor, list[Step]]:
    """``(input, steps)``: the :class:`Step` list of ``model(x)`` (run once in eval mode), in
    dependency order, and the input Tensor the first steps read.

    Args:
        x: an example input (N, C, H, W): its shape sets every shape of the pass; the
            exporter reads a transpose's axes off its values, so random values serve best.
    Raises: ExportError when the output is not a Tensor computed from ``x``.
    """
    x = Tensor(np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float32), requires_grad=True)
    with eval_mode(model):
        calls, out = record_calls(model, x)
    if not isinstance(out, Tensor):
        raise ExportError(f"{type(model).__name__} returns a {type(out).__name__}; only a model returning "
                          "one Tensor can be exported")
    made, steps, counts = _layer_outputs(calls, x), [], {}
    for tensor in _ordered(out, made, x):
        call = made.get(id(tensor))
        if call is not None:
            steps.append(Step(call.name or type(call.module).__name__, call.module, None,
                              _sources(tensor, made, x), tensor))
        elif tensor is not x and tensor.op is not None and tensor._parents:
            counts[tensor.op] = counts.get(tensor.op, 0) + 1
            name = tensor.op if counts[tensor.op] == 1 else f"{tensor.op}#{counts[tensor.op]}"
            steps.append(Step(name, None, tensor.op, tensor._parents, tensor))
        else:
            continue  # the input, or a constant: the step using it says so
        _check_sources(model, steps[-1], made, x)
    if not steps or not any(x is s for step in steps for s in step.inputs):
        raise ExportError(f"{type(model).__name__}: its output is its input or does not depend on it; "
                          "there is nothing to export")
    return x, steps
