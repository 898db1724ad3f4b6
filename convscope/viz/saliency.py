"""Which pixels matter to a prediction: saliency maps and Grad-CAM, by backpropagation.

* Saliency (Simonyan et al. 2014): the gradient of the class score ``z_c`` (the logit,
  before softmax) with respect to each input pixel, ``dz_c/dx``. Shown as
  ``max over channels of |dz_c/dx|``.
* Grad-CAM (Selvaraju et al. 2017): at a late conv layer with maps ``A_k`` (h, w), weight
  each map by its average gradient, ``alpha_k = mean_ij dz_c/dA_k[i, j]``, and keep the
  positive part of the sum, ``relu(sum_k alpha_k A_k)``: a coarse map of where the
  evidence for class ``c`` is.

The model runs in eval mode with its parameters' ``requires_grad`` switched off for the
call (no weight gradients are computed or left behind), then everything is restored.
"""

import contextlib

import numpy as np

from .. import functional as F
from .. import nn
from ..summary import eval_mode, hooked, is_shown, trace
from ..tensor import Tensor, no_grad


@contextlib.contextmanager
def frozen(model):
    """Switch off ``requires_grad`` on every parameter for the block, then restore it."""
    params = model.parameters()
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad = False
    try:
        yield model
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag


def _as_tensor(x, requires_grad=False):
    x = x.data if isinstance(x, Tensor) else np.asarray(x)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image of shape (1, C, H, W), got shape {x.shape}")
    return Tensor(x.copy(), requires_grad=requires_grad)


def predict(model, x):
    """Class probabilities (N, K): softmax of the logits, eval mode, no gradients."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    with eval_mode(model), no_grad():
        return F.softmax(model(x), dim=1).data


def top_k(probs, k=5):
    """The ``k`` most probable classes of one probability vector (K,): ``[(class, p)]``."""
    order = np.argsort(-np.asarray(probs), kind="stable")[:k]
    return [(int(c), float(probs[c])) for c in order]


def saliency(model, x, target=None):
    """Gradient of the class score with respect to the input.

    Args:
        x: one input (1, C, H, W), normalised as in training.
        target (int): class index; default the predicted class.
    Returns: (gradient (C, H, W) ndarray ``dz_target/dx``, target).
    """
    x = _as_tensor(x, requires_grad=True)
    with eval_mode(model), frozen(model):  # backward too: it reads requires_grad
        logits = model(x)
        target = int(logits.data[0].argmax()) if target is None else int(target)
        logits[0, target].backward()
    return x.grad[0], target


def saliency_map(gradient):
    """``max over channels of |gradient|``: (C, H, W) -> (H, W)."""
    return np.abs(np.asarray(gradient)).max(axis=0)


def gradcam_layer(model, x):
    """Name of the layer Grad-CAM looks at: the last Conv2d called, or, if that conv sits
    inside a block with its own forward (a residual block), the outermost such block, whose
    output includes the shortcut."""
    calls, _ = trace(model, x)
    convs = [c.name for c in calls if isinstance(c.module, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM")
    blocks = [c.name for c in calls if is_shown(c) and c.module.children()
              and convs[-1].startswith(c.name + ".")]
    return min(blocks, key=len) if blocks else convs[-1]


def layer_gradient(model, x, layer, target=None):
    """A layer's output and the gradient of the class score with respect to it.

    The layer's output is swapped, during the call, for a leaf tensor with the same values,
    so backpropagation stops there and leaves its gradient in ``.grad``.

    Returns: (activation (C, h, w), gradient (C, h, w), target).
    """
    x, tapped = _as_tensor(x), []

    def tap(name, module, inputs, output):
        if name == layer and not tapped:
            tapped.append(Tensor(output.data, requires_grad=True))
            return tapped[0]
        return None

    with eval_mode(model), frozen(model):  # backward too: it reads requires_grad
        with hooked(model, tap):
            logits = model(x)
        if not tapped:
            raise ValueError(f"no layer named {layer!r} in {type(model).__name__}")
        target = int(logits.data[0].argmax()) if target is None else int(target)
        logits[0, target].backward()
    return tapped[0].data[0], tapped[0].grad[0], target


def grad_cam(model, x, target=None, layer=None):
    """Grad-CAM map ``relu(sum_k alpha_k A_k)`` with ``alpha_k = mean_ij dz_c/dA_k``.

    Args:
        x: one input (1, C, H, W). target (int): default the predicted class.
        layer (str): layer name; default :func:`gradcam_layer`.
    Returns: (map (h, w) at the layer's resolution, not normalised; layer name; target).
    """
    layer = gradcam_layer(model, x) if layer is None else layer
    activation, gradient, target = layer_gradient(model, x, layer, target)
    weights = gradient.mean(axis=(1, 2))
    cam = np.maximum(np.tensordot(weights, activation, axes=1), 0)
    return cam, layer, target
