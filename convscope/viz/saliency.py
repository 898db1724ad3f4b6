"""Which pixels matter to a prediction: saliency maps and Grad-CAM, by backpropagation.

* Saliency (Simonyan et al. 2014): the gradient of the class score ``z_c`` (the logit,
  before softmax) with respect to each input pixel, ``dz_c/dx``. Shown as
  ``max over channels of |dz_c/dx|``.
* Grad-CAM (Selvaraju et al. 2017): at a late conv layer with maps ``A_k`` (h, w), weight
  each map by its average gradient, ``alpha_k = mean_ij dz_c/dA_k[i, j]``, and keep the
  positive part of the sum, ``relu(sum_k alpha_k A_k)``: a coarse map of where the
  evidence for class ``c`` is.

Both come from one traced pass with gradients (:func:`convscope.trace.trace`) and one
backward pass of the class score: the model runs in eval mode with its weights frozen, so
no weight gradient is computed or left behind. Each function takes a model and an input,
or a :class:`~convscope.trace.Trace` made with ``gradients=True`` (then nothing runs again).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..inference import predict, top_k  # noqa: F401  (their home is convscope.inference)
from ..nn import Module
from ..tensor import Tensor
from ..trace import Trace, as_trace
from . import grids


def _one_image(x):
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if data.ndim != 4 or data.shape[0] != 1:
        raise ValueError(f"expected one image of shape (1, C, H, W), got shape {data.shape}")
    return data


def traced(model: Module | Trace, x: np.ndarray | Tensor | None = None) -> Trace:
    """``model`` itself if it is already a Trace (with gradients), else a new one of ``x``."""
    return as_trace(model, None if isinstance(model, Trace) else _one_image(x), gradients=True)


def backpropagated(t: Trace, target: int | None = None) -> int:
    """Run :meth:`Trace.backward` for ``target`` (default: the predicted class) unless the
    trace's last backward pass was for that class; returns the target."""
    target = t.predicted() if target is None else int(target)
    if (t.target, t.target_index) != (target, 0):
        t.backward(target)
    return target


def saliency(model: Module | Trace, x: np.ndarray | Tensor | None = None,
             target: int | None = None) -> tuple[np.ndarray, int]:
    """Gradient of the class score with respect to the input.

    Args:
        model: a model, or a gradient Trace (then leave ``x`` out).
        x: one input (1, C, H, W), normalised as in training.
        target (int): class index; default the predicted class.
    Returns: (gradient (C, H, W) ndarray ``dz_target/dx``, target).
    """
    t = traced(model, x)
    target = backpropagated(t, target)
    return t.input_gradient[0].copy(), target


def saliency_map(gradient: ArrayLike) -> np.ndarray:
    """``max over channels of |gradient|``: (C, H, W) -> (H, W)."""
    return np.abs(np.asarray(gradient)).max(axis=0)


def gradcam_layer(model: Module | Trace, x: np.ndarray | Tensor | None = None) -> str:
    """Name of the layer Grad-CAM looks at: where the last conv layer's feature maps come out
    rectified, as in Selvaraju et al. (the conv, then the batch norms and activations that
    follow it at the same shape: LeNet-5's ReLU ``4``). If that conv sits inside a block with
    its own forward (a residual block), the outermost such block, whose output includes the
    shortcut."""
    t = as_trace(model, None if isinstance(model, Trace) else _one_image(x), keep_outputs=False)
    convs = [i for i, layer in enumerate(t.layers) if layer.module.role == "conv"]
    if not convs:
        raise ValueError(f"{type(t.model).__name__} has no conv layer for Grad-CAM")
    last = t.layers[convs[-1]]
    blocks = [layer.name for layer in t.layers if layer.module.children() and last.name.startswith(layer.name + ".")]
    if blocks:
        return min(blocks, key=len)
    chosen = last
    for layer in t.layers[convs[-1] + 1:]:
        if layer.module.role not in ("activation", "normalization") or layer.output_shape != last.output_shape:
            break
        chosen = layer
    return chosen.name


def layer_gradient(model: Module | Trace, x: np.ndarray | Tensor | None = None, layer: str | None = None,
                   target: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """A layer's output and the gradient of the class score with respect to it.

    Returns: (activation (C, h, w), gradient (C, h, w), target).
    """
    t = traced(model, x)
    target = backpropagated(t, target)
    try:
        found = t[layer]
    except KeyError as error:
        raise ValueError(error.args[0]) from None
    return found.values[0], found.gradient[0], target


def grad_cam(model: Module | Trace, x: np.ndarray | Tensor | None = None, target: int | None = None,
             layer: str | None = None) -> tuple[np.ndarray, str, int]:
    """Grad-CAM map ``relu(sum_k alpha_k A_k)`` with ``alpha_k = mean_ij dz_c/dA_k``.

    Args:
        model: a model, or a gradient Trace (then leave ``x`` out).
        x: one input (1, C, H, W). target (int): default the predicted class.
        layer (str): layer name; default :func:`gradcam_layer`.
    Returns: (map (h, w) at the layer's resolution, not normalised; layer name; target).
    """
    t = traced(model, x)
    layer = gradcam_layer(t) if layer is None else layer
    activation, gradient, target = layer_gradient(t, layer=layer, target=target)
    weights = gradient.mean(axis=(1, 2))
    cam = np.maximum(np.tensordot(weights, activation, axes=1), 0)
    return cam, layer, target


def placed_grad_cam(model: Module | Trace, x: np.ndarray | Tensor | None = None, target: int | None = None,
                    layer: str | None = None) -> tuple[np.ndarray, str, int]:
    """:func:`grad_cam` resampled onto the input's pixels: each map value placed over the
    centre of the input pixels it sees (its layer's receptive-field start and jump), as
    ``convscope viz`` draws it. Returns (map (H, W), >= 0, not normalised; layer; target)."""
    t = traced(model, x)
    cam, layer, target = grad_cam(t, target=target, layer=layer)
    field = t[layer].field
    return np.maximum(grids.resize(cam, t.input.shape[2:], field.start, field.jump), 0), layer, target


def mass_share(values: np.ndarray, region: np.ndarray) -> float | None:
    """The share of ``values``' total (>= 0) inside the boolean ``region``; None if all zero."""
    total = float(np.sum(values))
    return None if total <= 0 else float(np.sum(values[region]) / total)
