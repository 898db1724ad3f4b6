"""Export a model to ONNX (opset 18, IR version 8), to run it in onnxruntime and elsewhere.

:func:`export_onnx` writes a ``.onnx`` file; :func:`onnx_model` returns the same model as an
``onnx.ModelProto``. How it works:

1. the model runs once on an example input, two random images of ``input_shape``
   (:func:`~convscope.interop.graph.forward_steps`): that gives every leaf layer and every
   operation between layers (a ResNet's ``+``, a U-Net's ``F.cat``) in the order they depend
   on each other;
2. each step becomes ONNX nodes (:mod:`convscope.interop.onnx_layers`); its weights become
   initializers named as in the state dict (``"0.weight"``), its output a value named after the layer
   (the graph's input and output are ``"input"`` and ``"output"``);
3. every value's shape is written from convscope's own size formulas, with the batch axis
   left free (``"N"``), and checked against the shape the example pass produced.

The opset and IR version are stamped explicitly: onnxruntime 1.31 refuses the onnx
package's newer default stamp, and LpPool has ``ceil_mode`` only from opset 18. A layer or
operation with no ONNX equivalent raises :class:`~convscope.interop.graph.ExportError`
naming it. Weights are written as float32. The ``onnx`` package is needed only here:
``pip install convscope[onnx]``.

>>> import numpy as np
>>> from convscope.models import lenet5
>>> proto = onnx_model(lenet5(rng=np.random.default_rng(0)), (1, 28, 28))  # doctest: +SKIP
>>> [node.op_type for node in proto.graph.node][:4]  # doctest: +SKIP
['Conv', 'Relu', 'MaxPool', 'Conv']
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import __version__
from ..files import write_atomic
from ..nn import Module
from .graph import ExportError, Step, forward_steps
from .onnx_layers import LAYER_CONVERTERS, tensor_op

OPSET, IR_VERSION = 18, 8
INPUT, OUTPUT, BATCH = "input", "output", "N"


def require_onnx():
    """The ``onnx`` module, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install convscope[onnx] "
                          "(or pip install onnx)") from None
    return onnx


class GraphBuilder:
    """The nodes, initializers and value shapes of the graph being written, named after the
    step being converted (:meth:`begin`): its nodes and outputs ``"name"`` or ``"name.part"``,
    its initializers ``"name.weight"``..."""

    def __init__(self, onnx: Any) -> None:
        self.onnx, self.nodes, self.initializers, self.values = onnx, [], [], []
        self.step, self.taken = None, set()

    def begin(self, step: Step) -> None:
        self.step = step

    def label(self) -> str:
        """The step being converted, for messages: ``"features.0 (Conv2d)"``."""
        kind = type(self.step.module).__name__ if self.step.module is not None else f"operation {self.step.op!r}"
        return f"{self.step.name} ({kind})"

    def _name(self, part):
        name = self.step.name if part is None else f"{self.step.name}.{part}"
        base, k = name, 2
        while name in self.taken:  # a layer called twice gets "name#2"
            name, k = f"{base}#{k}", k + 1
        self.taken.add(name)
        return name

    def constant(self, part: str, array: np.ndarray) -> str:
        """An initializer (floats as float32, integers as int64); returns its name."""
        array = np.asarray(array)
        array = array.astype(np.float32 if array.dtype.kind == "f" else np.int64)
        name = self._name(part)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: Sequence[str], part: str | None = None, **attrs: Any) -> str:
        """A node ``op`` on ``inputs`` with ONNX attributes ``attrs``; returns its output's name."""
        name = self._name(part)
        attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()}
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return name

    def pad(self, x: str, padding: tuple[int, int, int, int]) -> str:
        """Zero padding (top, bottom, left, right) of the H and W axes of ``x``."""
        top, bottom, left, right = padding
        pads = self.constant("pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
        return self.node("Pad", [x, pads], part="pad", mode="constant")

    def value(self, name: str, shape: Sequence[int]) -> Any:
        """The typed float32 value ``name`` of ``shape``, its first axis the free batch axis."""
        return self.onnx.helper.make_tensor_value_info(name, self.onnx.TensorProto.FLOAT, [BATCH, *shape[1:]])


def _convert(graph, step, names, shapes):
    """Add ``step``'s nodes; returns (output name, output shape by convscope's formulas)."""
    graph.begin(step)
    inputs, in_shapes = [names[id(t)] for t in step.inputs], [shapes[id(t)] for t in step.inputs]
    if step.module is None:
        return tensor_op(graph, step, inputs, in_shapes)
    convert = LAYER_CONVERTERS.get(type(step.module))
    if convert is None:
        known = ", ".join(sorted(cls.__name__ for cls in LAYER_CONVERTERS))
        raise ExportError(f"layer {graph.label()} has no ONNX equivalent; exported layers: {known}, Dropout")
    if len(inputs) != 1:
        raise ExportError(f"layer {graph.label()} takes {len(inputs)} tensors; exported layers take one")
    return convert(graph, step.module, inputs[0], in_shapes[0])


def onnx_model(model: Module, input_shape: Sequence[int], metadata: Mapping[str, str] | None = None) -> Any:
    """``model`` as an ``onnx.ModelProto`` for inputs (N, *input_shape), N free.

    Args:
        input_shape: (C, H, W) of one input.
        metadata: strings stored as the model's ``metadata_props`` (e.g. class names).
    Raises: ExportError naming the first layer or operation ONNX cannot express;
        ImportError without the onnx package.
    """
    onnx = require_onnx()
    shape = (2, *(int(n) for n in input_shape))  # two images: a reshape that mixes them shows
    example = np.random.default_rng(0).standard_normal(shape).astype(np.float32)  # distinct values show a transpose
    x, steps = forward_steps(model, example)
    graph, names, shapes = GraphBuilder(onnx), {}, {}
    names[id(x)], shapes[id(x)] = INPUT, shape
    for step in steps:
        name, out_shape = _convert(graph, step, names, shapes)
        if tuple(out_shape) != step.output.shape:
            raise RuntimeError(f"{graph.label()}: convscope's size formula gives {tuple(out_shape)}, its forward "
                               f"pass gave {step.output.shape}")
        names[id(step.output)], shapes[id(step.output)] = name, tuple(out_shape)
        graph.values.append(graph.value(name, out_shape))
    graph.values.pop()  # the last step's value is the graph's output, named "output"
    for node in graph.nodes:
        node.output[:] = [OUTPUT if value == name else value for value in node.output]
    output = graph.value(OUTPUT, out_shape)
    body = onnx.helper.make_graph(graph.nodes, type(model).__name__, [graph.value(INPUT, shape)], [output],
                                  graph.initializers, value_info=graph.values)
    proto = onnx.helper.make_model(body, opset_imports=[onnx.helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                                   producer_name="convscope", producer_version=__version__)
    onnx.helper.set_model_props(proto, dict(metadata or {}))
    return proto


def export_onnx(model: Module, path: str | os.PathLike, input_shape: Sequence[int],
                metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Write ``model`` to ``path`` as ONNX (see :func:`onnx_model`), atomically.

    Returns a summary: ``{"path", "opset", "ir_version", "input", "output", "nodes"
    (operator -> count), "initializers", "bytes"}``, the shapes with ``"N"`` for the batch axis.
    """
    proto = onnx_model(model, input_shape, metadata)
    data = proto.SerializeToString()
    write_atomic(path, data)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return {"path": str(path), "opset": OPSET, "ir_version": IR_VERSION, "input": dims(proto.graph.input[0]),
            "output": dims(proto.graph.output[0]), "nodes": dict(Counter(n.op_type for n in proto.graph.node)),
            "initializers": len(proto.graph.initializer), "bytes": len(data)}
