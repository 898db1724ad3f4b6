"""What each layer produces for one input: feature maps, captured without touching the model.

:func:`capture_activations` runs the model once and returns every layer's output in a
dict; the model is wrapped only for the length of the call (see
:func:`convscope.summary.hooked`), so no visualisation state is stored on it.

>>> from convscope.models import lenet5
>>> acts = capture_activations(lenet5(rng=np.random.default_rng(0)), np.zeros((1, 1, 28, 28), np.float32))
>>> [(name, a.shape) for name, a in acts.items()][:3]
[('0', (1, 6, 28, 28)), ('1', (1, 6, 28, 28)), ('2', (1, 6, 14, 14))]
"""

import numpy as np

from .. import functional as F
from .. import nn
from ..summary import is_shown, trace
from ..tensor import Tensor

POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)


def _unique(name, taken):
    """``name``, or ``name#2``, ``name#3``... for a layer called more than once."""
    if name not in taken:
        return name
    k = 2
    while f"{name}#{k}" in taken:
        k += 1
    return f"{name}#{k}"


def capture_activations(model, x):
    """Every layer's output for input ``x``, in the order the forward pass computes them.

    Leaf layers are included wherever they sit (inside residual blocks too), and so are
    blocks with a forward of their own (a residual block's output, after its sum);
    plain ``Sequential`` containers are not (their output is their last layer's).

    Args: x (ndarray or Tensor) (N, C, H, W), already normalised like the training data.
    Returns: dict layer name -> ndarray output (N, ...). Eval mode, no gradients.
    """
    calls, _ = trace(model, x)
    out = {}
    for call in calls:
        if is_shown(call):
            out[_unique(call.name, out)] = call.output.data
    return out


def conv_layers(model):
    """``[(name, Conv2d)]`` in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def first_pool_input(model, x):
    """The feature maps (C, H, W) entering the first pooling layer, and that layer's name.

    Falls back to the first 4-D layer output when the model has no pooling layer.
    """
    calls, _ = trace(model, x)
    for call in calls:
        if isinstance(call.module, POOLS):
            return call.inputs[0].data[0], call.name
    for call in calls:
        if call.output.ndim == 4:
            return call.output.data[0], call.name
    raise ValueError(f"{type(model).__name__} has no layer with a 4-D (N, C, H, W) output")


def compare_pooling(fmap, kernel_size=2, stride=None):
    """Max, average and L2 pooling of the same feature map (H, W).

    Returns: dict {"max", "average", "L2"} -> (H_out, W_out) arrays, where
    ``H_out = floor((H - kernel_size)/stride) + 1``.
    """
    x = Tensor(np.asarray(fmap, dtype=np.float64)[None, None])
    return {"max": F.max_pool2d(x, kernel_size, stride).data[0, 0],
            "average": F.avg_pool2d(x, kernel_size, stride).data[0, 0],
            "L2": F.lp_pool2d(x, 2, kernel_size, stride).data[0, 0]}


def most_active_channel(fmaps):
    """Index of the channel of (C, H, W) with the largest mean absolute activation."""
    return int(np.abs(np.asarray(fmaps)).mean(axis=(1, 2)).argmax())
