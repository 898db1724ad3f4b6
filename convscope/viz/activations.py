"""What each layer produces for one input: feature maps, captured without touching the model.

:func:`capture_activations` runs the model once (:func:`convscope.trace.trace`) and returns
every layer's output in a dict; no visualisation state is stored on the model.

>>> from convscope.models import lenet5
>>> acts = capture_activations(lenet5(rng=np.random.default_rng(0)), np.zeros((1, 1, 28, 28), np.float32))
>>> [(name, a.shape) for name, a in acts.items()][:3]
[('0', (1, 6, 28, 28)), ('1', (1, 6, 28, 28)), ('2', (1, 6, 14, 14))]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .. import functional as F
from ..nn import Module
from ..tensor import Tensor
from ..trace import Trace, as_trace


def capture_activations(model: Module | Trace, x: np.ndarray | Tensor | None = None) -> dict[str, np.ndarray]:
    """Every layer's output for input ``x``, in the order the forward pass computes them.

    Leaf layers are included wherever they sit (inside residual blocks too), and so are
    blocks with a forward of their own (a residual block's output, after its sum);
    plain ``Sequential`` containers are not (their output is their last layer's).

    Args: x (ndarray or Tensor) (N, C, H, W), already normalised like the training data;
        or pass a :class:`~convscope.trace.Trace` as ``model`` and no ``x``.
    Returns: dict layer name (``name#2`` for a second call) -> ndarray output (N, ...).
    """
    t = as_trace(model, x)
    return t.outputs()


def conv_layers(model: Module) -> list[tuple[str, Module]]:
    """``[(name, layer)]`` of the conv layers (``role == "conv"``), in registration order."""
    return [(name, m) for name, m in model.named_modules() if m.role == "conv"]


def first_pool_input(model: Module | Trace, x: np.ndarray | Tensor | None = None) -> tuple[np.ndarray, str]:
    """The feature maps (C, H, W) entering the first pooling layer, and that layer's name.

    Falls back to the first 4-D layer output when the model has no pooling layer.
    """
    t = as_trace(model, x)
    pool = t.first("pool")
    if pool is not None:
        return pool.input.data[0], pool.name
    for layer in t.layers:
        if len(layer.output_shape) == 4:
            return layer.values[0], layer.name
    raise ValueError(f"{type(t.model).__name__} has no layer with a 4-D (N, C, H, W) output")


def compare_pooling(fmap: ArrayLike, kernel_size: int | tuple[int, int] = 2,
                    stride: int | tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Max, average and L2 pooling of the same feature map (H, W).

    Returns: dict {"max", "average", "L2"} -> (H_out, W_out) arrays, where
    ``H_out = floor((H - kernel_size)/stride) + 1``.
    """
    x = Tensor(np.asarray(fmap, dtype=np.float64)[None, None])
    return {"max": F.max_pool2d(x, kernel_size, stride).data[0, 0],
            "average": F.avg_pool2d(x, kernel_size, stride).data[0, 0],
            "L2": F.lp_pool2d(x, 2, kernel_size, stride).data[0, 0]}


def most_active_channel(fmaps: ArrayLike) -> int:
    """Index of the channel of (C, H, W) with the largest mean absolute activation."""
    return int(np.abs(np.asarray(fmaps)).mean(axis=(1, 2)).argmax())
