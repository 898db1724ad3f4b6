"""Each convscope layer, and each operation between layers, as ONNX nodes (opset 18).

A converter ``convert(graph, layer, x, shape)`` takes the layer, the name of its input value
and the input's shape (N, C, H, W), adds its nodes and weights to ``graph`` (a
:class:`~convscope.interop.onnx_export.GraphBuilder`) and returns the output's name and its
shape, worked out with convscope's own size formulas (:class:`~convscope.windows.Window`,
:func:`~convscope.functional.upsampling.resized_hw`), never by onnx's shape inference.

Choices that keep ONNX's results equal to convscope's:

* padding is always written as explicit ``pads`` (top, left, bottom, right): "same" padding
  of an even kernel is uneven, and ONNX has no "same" that matches PyTorch's;
* a ``ceil_mode`` pooling keeps ``ceil_mode=0`` and writes the last window's overhang as
  extra bottom/right padding instead (the output size is then the floor formula's, which
  onnx's shape inference below opset 22 and every runtime agree on); the overhang never
  counts in an average, so an average with ``count_include_pad`` and an overhang first pads
  its declared padding with zeros (a Pad node: real zeros that count), then averages with
  ``count_include_pad=0``;
* BatchNormalization is the inference form (``training_mode=0``, running statistics);
  ONNX's momentum is PyTorch's ``1 - momentum``;
* Upsample is Resize: nearest with "asymmetric" coordinates and "floor" rounding
  (PyTorch's legacy nearest), bilinear with "half_pixel" or, with ``align_corners``,
  "align_corners" coordinates; an axis whose length stays is copied (scale 1).
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import nn
from ..functional.upsampling import resized_hw
from ..windows import conv_window, pool_window
from .graph import ExportError


def _onnx_pads(padding):
    """(top, bottom, left, right) -> ONNX's (top, left, bottom, right)."""
    top, bottom, left, right = padding
    return [top, left, bottom, right]


def _weights(graph, layer):
    """The layer's weight and, if it has one, its bias, as named initializers."""
    return [graph.constant(name, getattr(layer, name).data) for name in ("weight", "bias")
            if getattr(layer, name) is not None]


def conv(graph, layer, x, shape):
    window = conv_window(layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    inputs = [x, *_weights(graph, layer)]
    y = graph.node("Conv", inputs, kernel_shape=window.kernel, strides=window.stride,
                   pads=_onnx_pads(window.padding), dilations=window.dilation, group=layer.groups)
    return y, (shape[0], layer.out_channels, *window.output_hw(shape[2:]))


def conv_transpose(graph, layer, x, shape):
    window = layer.geometry(shape[2:])
    inputs = [x, *_weights(graph, layer)]
    y = graph.node("ConvTranspose", inputs, kernel_shape=window.kernel, strides=window.stride,
                   pads=_onnx_pads(window.padding), dilations=window.dilation, group=layer.groups,
                   output_padding=window.output_padding)
    return y, (shape[0], layer.out_channels, *window.output_hw(shape[2:]))


def _pool_geometry(layer, shape):
    """(window, output (H, W), pads with the ceil_mode overhang) of a pooling layer."""
    window = pool_window(layer.kernel_size, layer.stride, layer.padding, 1, layer.ceil_mode)
    out_hw = window.output_hw(shape[2:])
    return window, out_hw, window.pads(shape[2:], out_hw)


def max_pool(graph, layer, x, shape):
    window, out_hw, pads = _pool_geometry(layer, shape)
    y = graph.node("MaxPool", [x], kernel_shape=window.kernel, strides=window.stride,
                   pads=_onnx_pads(pads), dilations=window.dilation, ceil_mode=0)
    return y, (*shape[:2], *out_hw)


def avg_pool(graph, layer, x, shape):
    window, out_hw, pads = _pool_geometry(layer, shape)
    count_pad = layer.count_include_pad
    if count_pad and pads != window.padding:  # declared padding counts, the overhang does not
        x = graph.pad(x, window.padding)
        pads, count_pad = tuple(p - d for p, d in zip(pads, window.padding)), False
    y = graph.node("AveragePool", [x], kernel_shape=window.kernel, strides=window.stride,
                   pads=_onnx_pads(pads), ceil_mode=0, count_include_pad=int(count_pad))
    return y, (*shape[:2], *out_hw)


def lp_pool(graph, layer, x, shape):
    if not float(layer.norm_type).is_integer():
        raise ExportError(f"{graph.label()}: ONNX LpPool takes a whole-number p, got norm_type={layer.norm_type}")
    window, out_hw, pads = _pool_geometry(layer, shape)
    y = graph.node("LpPool", [x], kernel_shape=window.kernel, strides=window.stride,
                   pads=_onnx_pads(pads), dilations=window.dilation, ceil_mode=0, p=int(layer.norm_type))
    return y, (*shape[:2], *out_hw)


def adaptive_avg_pool(graph, layer, x, shape):
    in_hw, out_hw = shape[2:], layer.output_size
    if out_hw == (1, 1):
        return graph.node("GlobalAveragePool", [x]), (*shape[:2], 1, 1)
    if any(n % o for n, o in zip(in_hw, out_hw)):
        raise ExportError(f"{graph.label()}: its bins on a {in_hw[0]}x{in_hw[1]} input are uneven; ONNX "
                          f"AveragePool has one window size (input sizes that are multiples of {out_hw} export)")
    kernel = tuple(n // o for n, o in zip(in_hw, out_hw))
    y = graph.node("AveragePool", [x], kernel_shape=kernel, strides=kernel, pads=[0, 0, 0, 0], ceil_mode=0,
                   count_include_pad=0)
    return y, (*shape[:2], *out_hw)


def upsample(graph, layer, x, shape):
    in_hw = shape[2:]
    out_hw = resized_hw(in_hw, layer.size, layer.scale_factor)
    if layer.mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        attrs = dict(mode="linear", coordinate_transformation_mode="align_corners" if layer.align_corners
                     else "half_pixel")
    if layer.scale_factor is None:
        inputs = [x, "", "", graph.constant("sizes", np.array(out_hw, np.int64))]
    else:
        factors = np.broadcast_to(np.asarray(layer.scale_factor, np.float32), 2)
        scales = [1.0 if o == n else 2.0 if layer.mode == "nearest" and o == 2 * n else float(f)
                  for n, o, f in zip(in_hw, out_hw, factors)]  # convscope (as PyTorch) copies or doubles exactly
        inputs = [x, "", graph.constant("scales", np.array(scales, np.float32))]
    y = graph.node("Resize", inputs, axes=[2, 3], **attrs)
    return y, (*shape[:2], *out_hw)


def linear(graph, layer, x, shape):
    out = (*shape[:-1], layer.out_features)
    if len(shape) == 2:
        inputs = [x, *_weights(graph, layer)]
        return graph.node("Gemm", inputs, alpha=1.0, beta=1.0, transB=1), out
    y = graph.node("MatMul", [x, graph.constant("weight_t", layer.weight.data.T)])
    return (graph.node("Add", [y, graph.constant("bias", layer.bias.data)], part="bias") if layer.bias is not None
            else y), out


def flatten(graph, layer, x, shape):
    start, end = layer.start_dim % len(shape), layer.end_dim % len(shape)
    if start == 0:
        raise ExportError(f"{graph.label()}: start_dim=0 merges the batch axis; an exported graph keeps "
                          "the batch axis free (use start_dim >= 1)")
    out = (*shape[:start], int(np.prod(shape[start:end + 1])), *shape[end + 1:])
    if start == 1 and end == len(shape) - 1:
        return graph.node("Flatten", [x], axis=1), out
    target = np.array([0, *out[1:]], np.int64)  # 0: copy the batch axis
    return graph.node("Reshape", [x, graph.constant("shape", target)]), out


def batch_norm(graph, layer, x, shape):
    channels = layer.num_features
    affine = _weights(graph, layer) or [graph.constant("weight", np.ones(channels, np.float32)),
                                        graph.constant("bias", np.zeros(channels, np.float32))]
    inputs = [x, *affine, graph.constant("running_mean", layer.running_mean),
              graph.constant("running_var", layer.running_var)]
    y = graph.node("BatchNormalization", inputs, epsilon=layer.eps, momentum=1.0 - layer.momentum,
                   training_mode=0)
    return y, shape


def _pointwise(op, **attrs_of):
    def convert(graph, layer, x, shape):
        attrs = {key: read(layer) for key, read in attrs_of.items()}
        return graph.node(op, [x], **attrs), shape
    return convert


LAYER_CONVERTERS = {
    nn.Conv2d: conv, nn.ConvTranspose2d: conv_transpose,
    nn.MaxPool2d: max_pool, nn.AvgPool2d: avg_pool, nn.LPPool2d: lp_pool, nn.AdaptiveAvgPool2d: adaptive_avg_pool,
    nn.Upsample: upsample, nn.Linear: linear, nn.Flatten: flatten, nn.BatchNorm2d: batch_norm,
    nn.ReLU: _pointwise("Relu"), nn.Sigmoid: _pointwise("Sigmoid"), nn.Tanh: _pointwise("Tanh"),
    nn.LeakyReLU: _pointwise("LeakyRelu", alpha=lambda layer: layer.negative_slope),
    nn.Softmax: _pointwise("Softmax", axis=lambda layer: layer.dim),
}
"""Layer class -> converter. Dropout needs none: in eval mode it returns its input (no node)."""

ELEMENTWISE_OPS = {"add": "Add", "mul": "Mul", "div": "Div", "neg": "Neg", "relu": "Relu", "sigmoid": "Sigmoid",
                   "tanh": "Tanh", "exp": "Exp", "abs": "Abs", "clone": "Identity"}
"""Tensor operations between layers (``a + b``, ``F.relu``...) and their ONNX operators."""


def tensor_op(graph, step, inputs, shapes):
    """The ONNX node of a tensor operation between layers (``step.op``); returns (name, shape).

    The example pass's tensors tell what the operation did: a concatenation's axis is the
    one that grew, a transpose's axes the permutation that turns its input into its output,
    a reshape's shape its output's (the batch axis copied: ``view(x.shape[0], -1)``)."""
    if step.op == "cat":
        axis = _cat_axis(shapes, step.output.shape)
        return graph.node("Concat", inputs, axis=axis), step.output.shape
    if step.op in ("reshape", "transpose"):
        return _reshape(graph, step, inputs[0], shapes[0])
    if step.op not in ELEMENTWISE_OPS:
        ops = ", ".join(sorted([*ELEMENTWISE_OPS, "cat", "reshape", "transpose"]))
        raise ExportError(f"the operation {step.op!r} between layers has no ONNX equivalent here "
                          f"(exported: every nn layer, and between layers {ops})")
    return graph.node(ELEMENTWISE_OPS[step.op], inputs), tuple(np.broadcast_shapes(*shapes))


def _cat_axis(shapes, out_shape):
    """The axis a concatenation joined along: the one where the output is longer than an input."""
    axes = [i for i, n in enumerate(out_shape) if any(s[i] != n for s in shapes)]
    if len(shapes) == 1:
        return 1
    if len(axes) != 1:
        raise ExportError(f"cannot tell the axis of a concatenation of {shapes} into {out_shape}")
    return axes[0]


def _reshape(graph, step, x, shape):
    source, out = step.inputs[0].data, step.output.data
    if step.op == "transpose":
        axes = next(p for p in itertools.permutations(range(source.ndim)) if np.array_equal(source.transpose(p), out))
        if axes[0] != 0:
            raise ExportError(f"{graph.label()}: a transpose {axes} that moves the batch axis does not export")
        return graph.node("Transpose", [x], perm=axes), out.shape
    if out.ndim == 0 or out.shape[0] != shape[0]:
        raise ExportError(f"{graph.label()}: a reshape of {shape} into {out.shape} merges or splits the batch "
                          "axis; an exported graph keeps it free (reshape to (x.shape[0], ...))")
    target = graph.constant("shape", np.array([0, *out.shape[1:]], np.int64))  # 0: copy the batch axis
    return graph.node("Reshape", [x, target]), out.shape
