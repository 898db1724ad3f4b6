"""Loss functions: cross-entropy (fused for speed and stability), NLL, binary cross-entropy on
logits, and the regression losses: mean squared error, Huber and smooth L1."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..tensor import ShapeError, Tensor
from .activation import log_softmax, sigmoid

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(losses, reduction):
    _check_reduction(reduction)
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses


def _class_targets(logits, target, ignore_index=-100):
    """Move classes to the last axis: (N, C, *) -> (M, C); targets (N, *) -> (M,)."""
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if logits.ndim < 2 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ShapeError("expected logits (N, C, ...) and class indices (N, ...), "
                         f"got {logits.shape} and {target.shape}")
    if not np.issubdtype(target.dtype, np.integer):
        target = target.astype(np.int64) if np.all(target == np.round(target)) else None
        if target is None:
            raise ValueError("targets must be integer class indices")
    classes = logits.shape[1]
    kept = target[target != ignore_index]
    if kept.size and (kept.min() < 0 or kept.max() >= classes):
        raise ValueError(f"targets must lie in [0, {classes - 1}] (or equal ignore_index={ignore_index}), "
                         f"got values {kept.min()}..{kept.max()}")
    return target.reshape(-1), classes


def _class_weights(weight, classes):
    """The per-class weights as an array (C,): ones when ``weight`` is None."""
    if weight is None:
        return np.ones(classes)
    weight = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=np.float64)
    if weight.shape != (classes,):
        raise ShapeError(f"weight must hold one value per class ({classes},), got shape {weight.shape}")
    return weight


def _mean_scale(reduction, weights_of_targets):
    """What the summed loss is multiplied by: 1/(sum of the kept targets' weights) for "mean"
    (nan when every target is ignored, as in PyTorch), else 1."""
    if reduction != "mean":
        return 1.0
    total = float(weights_of_targets.sum())  # a Python float: float32 gradients stay float32 arithmetic
    return 1.0 / total if total else np.nan


def cross_entropy(logits: Tensor, target: Tensor | ArrayLike, reduction: str = "mean",
                  label_smoothing: float = 0.0, *, weight: ArrayLike | None = None,
                  ignore_index: int = -100) -> Tensor:
    """Softmax cross-entropy between raw scores and class indices, as in PyTorch.

    Per item ``i`` with class weights ``w``, ``loss_i = -sum_c a_ic * log p_ic`` where
    ``a_ic = (1-e) * w_c * onehot_ic + (e/C) * w_c`` (label smoothing ``e``; ``e = 0`` and
    ``w = 1`` give ``-log p_i,target``). Items whose target is ``ignore_index`` lose 0 and do
    not count; "mean" divides the sum by the kept items' total weight ``sum_i w[target_i]``.
    Fused: the gradient ``p_ic * sum_c a_ic - a_ic`` is written directly
    (:func:`cross_entropy_reference` is the plain composition the tests compare with).

    Args:
        logits (Tensor): (N, C) or (N, C, d1, ...), e.g. (N, C, H, W) for segmentation.
        target (array of int): (N,) or (N, d1, ...), values in [0, C) or ``ignore_index``.
        reduction: "mean" (default), "sum" or "none" (shape of ``target``).
        label_smoothing (float): in [0, 1). Default 0.
        weight (array (C,), optional, keyword only): a constant weight per class.
        ignore_index (int, keyword only): target value that contributes nothing. Default -100.
    """
    labels, classes = _class_targets(logits, target, ignore_index)
    _check_reduction(reduction)
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    w = _class_weights(weight, classes)
    kept = labels != ignore_index
    safe, rows = np.where(kept, labels, 0), np.arange(len(labels))
    coef = np.broadcast_to(label_smoothing / classes * w, (len(labels), classes)).copy()
    coef[rows, safe] += (1 - label_smoothing) * w[safe]
    coef *= kept[:, None]
    coef = coef.astype(logits.dtype)  # the gradient in the logits' precision, as before weights existed
    scale = _mean_scale(reduction, w[safe] * kept)
    moved = np.moveaxis(logits.data, 1, -1).reshape(-1, classes)
    shifted = moved - moved.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    per_item = -(coef * log_probs).sum(axis=1)

    def backward(g):
        grad = np.exp(log_probs) * coef.sum(axis=1, keepdims=True) - coef
        grad *= np.reshape(g, (-1, 1)) if reduction == "none" else g * scale
        grad = grad.reshape(logits.shape[:1] + logits.shape[2:] + (classes,))
        return (np.moveaxis(grad, -1, 1).astype(logits.dtype),)

    if reduction == "none":
        out = per_item.reshape(logits.shape[:1] + logits.shape[2:])
    else:
        out = per_item.sum() * scale
    return Tensor.from_op(np.asarray(out, dtype=logits.dtype), (logits,), backward, "cross_entropy")


def nll_loss(log_probs: Tensor, target: Tensor | ArrayLike, reduction: str = "mean", *,
             weight: ArrayLike | None = None, ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of class indices, given log-probabilities (N, C) or (N, C, d1, ...).

    ``loss_i = -w[target_i] * log_probs[i, target_i]``, 0 where ``target_i == ignore_index``;
    "mean" divides the sum by the kept items' total weight, as in PyTorch.
    """
    labels, classes = _class_targets(log_probs, target, ignore_index)
    _check_reduction(reduction)
    w = _class_weights(weight, classes)
    kept = labels != ignore_index
    safe = np.where(kept, labels, 0)
    moved = log_probs.transpose((0,) + tuple(range(2, log_probs.ndim)) + (1,)) if log_probs.ndim > 2 else log_probs
    picked = moved.reshape(-1, classes)[np.arange(len(labels)), safe] * (w[safe] * kept)
    losses = -picked.reshape(log_probs.shape[:1] + log_probs.shape[2:])
    return losses if reduction == "none" else losses.sum() * _mean_scale(reduction, w[safe] * kept)


def cross_entropy_reference(logits: Tensor, target: Tensor | ArrayLike, reduction: str = "mean",
                            label_smoothing: float = 0.0, *, weight: ArrayLike | None = None,
                            ignore_index: int = -100) -> Tensor:
    """Cross-entropy as a plain composition of autograd ops (the tests' reference)."""
    labels, classes = _class_targets(logits, target, ignore_index)
    log_probs = log_softmax(logits, dim=1)
    nll = nll_loss(log_probs, target, "none", weight=weight, ignore_index=ignore_index).reshape(-1)
    w = _class_weights(weight, classes)
    moved = log_probs.transpose((0,) + tuple(range(2, logits.ndim)) + (1,)) if logits.ndim > 2 else log_probs
    smooth = -(moved.reshape(-1, classes) * w).mean(axis=1) * (labels != ignore_index)
    losses = nll * (1 - label_smoothing) + smooth * label_smoothing
    if reduction == "none":
        return losses.reshape(logits.shape[:1] + logits.shape[2:])
    kept = labels != ignore_index
    return losses.sum() * _mean_scale(reduction, w[np.where(kept, labels, 0)] * kept)


def _like_input(value, input):
    """``value`` as a Tensor of ``input``'s dtype (Tensors pass through, keeping their graph)."""
    return value if isinstance(value, Tensor) else Tensor(value, dtype=input.dtype)


def _target(target, input, op):
    target = _like_input(target, input)
    if target.shape != input.shape:
        raise ShapeError(f"{op}: input shape {input.shape} differs from target shape {target.shape}")
    return target


def mse_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2``, averaged (or summed) over all elements."""
    return _reduce((input - _target(target, input, "mse_loss")) ** 2, reduction)


def _softplus(z: Tensor) -> Tensor:
    """``log(1 + exp(z))`` as ``m + log(exp(-m) + exp(z - m))`` with the constant ``m = max(z, 0)``
    (the shift log_softmax uses): exp never overflows and the gradient is exactly ``sigmoid(z)``."""
    m = np.maximum(z.data, 0)
    return ((z - m).exp() + np.exp(-m)).log() + m


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor | ArrayLike,
                                     weight: Tensor | ArrayLike | None = None,
                                     pos_weight: Tensor | ArrayLike | None = None,
                                     reduction: str = "mean") -> Tensor:
    """Sigmoid + binary cross-entropy in one numerically stable expression, as in PyTorch.

    ``loss = -weight * (pos_weight * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))``,
    written with ``-log(sigmoid(x)) = softplus(-x)`` and ``-log(1 - sigmoid(x)) = x + softplus(-x)``:
    ``loss = weight * ((1 - y) * x + (1 + (pos_weight - 1) * y) * softplus(-x))``. No
    ``exp`` of a large number and no ``log(0)``, whatever the logits.

    Args:
        input (Tensor): logits, any shape.
        target: same shape, values in [0, 1] (soft targets allowed).
        weight (optional): broadcast to the input shape; rescales each element's loss.
        pos_weight (optional): broadcast along the last axis (one value per class, C,); weighs
            the positive term, e.g. ``negatives / positives`` for rare positives.
        reduction: "mean" (default), "sum" or "none".

    >>> float(binary_cross_entropy_with_logits(Tensor([0.0]), [1.0]).item()) == float(np.float32(np.log(2)))
    True
    """
    _check_reduction(reduction)
    target = _target(target, input, "binary_cross_entropy_with_logits")
    log_weight = 1.0
    if pos_weight is not None:
        log_weight = 1 + (_broadcastable(pos_weight, input, "pos_weight") - 1) * target
    losses = (1 - target) * input + log_weight * _softplus(-input)
    if weight is not None:
        losses = losses * _broadcastable(weight, input, "weight")
    return _reduce(losses, reduction)


def _broadcastable(value, input, name):
    value = _like_input(value, input)
    try:
        fits = np.broadcast_shapes(value.shape, input.shape) == input.shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"binary_cross_entropy_with_logits: {name} of shape {value.shape} does not "
                         f"broadcast to the input shape {input.shape}")
    return value


def huber_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """Squared error near the target, absolute error far from it, as ``torch.nn.functional.huber_loss``.

    With ``d = input - target``: ``0.5 * d^2`` where ``|d| < delta``, else
    ``delta * (|d| - 0.5 * delta)`` (the two meet with equal slope at ``|d| = delta``).

    Args:
        delta (float): where the loss turns linear; must be positive. Default 1.
    """
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    diff = input - _target(target, input, "huber_loss")
    size = diff.abs()
    near = size.data < delta  # a constant mask: each element takes one branch
    return _reduce((0.5 * diff * diff) * near + (delta * (size - 0.5 * delta)) * ~near, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Huber loss divided by its threshold, as ``torch.nn.functional.smooth_l1_loss``.

    ``0.5 * d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta``; ``beta = 0`` is the
    plain L1 loss ``|d|``.

    Args:
        beta (float): where the loss turns linear; must be >= 0. Default 1.
    """
    if not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    target = _target(target, input, "smooth_l1_loss")
    if beta == 0:
        return _reduce((input - target).abs(), reduction)
    return _reduce(huber_loss(input, target, "none", beta) * (1.0 / beta), reduction)


def gaussian_focal_loss(input: Tensor, target: Tensor | ArrayLike, alpha: float = 2.0, beta: float = 4.0,
                        reduction: str = "sum") -> Tensor:
    """The penalty-reduced focal loss of CenterNet (Zhou et al. 2019, "Objects as Points", eq. 1)
    on heatmap logits, for targets that are 1 at object centres and a Gaussian bump around them.

    With ``p = sigmoid(input)`` and ``y = target``::

        y == 1:  -(1 - p)^alpha * log(p)                    (a centre: find it)
        y <  1:  -(1 - y)^beta * p^alpha * log(1 - p)      (elsewhere: stay low, less so near a centre)

    The ``(1 - p)^alpha`` and ``p^alpha`` factors (the focal part, Lin et al. 2017) take the weight
    off the many cells already right, so the few centres are not drowned out; ``(1 - y)^beta``
    forgives a high score next to a centre. ``log(p)`` and ``log(1 - p)`` are
    ``-softplus(-input)`` and ``-softplus(input)``: finite whatever the logits. CenterNet divides
    the sum by the number of objects: ``reduction="sum"`` (the default), then divide.

    Args:
        input (Tensor): logits, any shape, e.g. (N, K, H, W).
        target: same shape, values in [0, 1]; exactly 1 marks a centre.
        alpha (float): the focusing power. Default 2.
        beta (float): how much a target near 1 forgives. Default 4.
        reduction: "sum" (default), "mean" or "none".

    >>> round(gaussian_focal_loss(Tensor([0.0, 0.0]), [1.0, 0.0]).item(), 4)  # 2 x 0.25 * log 2
    0.3466
    """
    target = _target(target, input, "gaussian_focal_loss")
    y = target.data
    centre = _like_input(y == 1, input)
    spared = _like_input((1 - y) ** beta * (y != 1), input)    # the targets are constants: no gradient
    p = sigmoid(input)
    found = (1 - p) ** alpha * _softplus(-input) * centre      # -(1 - p)^a log p, at centres
    false_alarm = p ** alpha * _softplus(input) * spared       # -(1 - y)^b p^a log(1 - p), elsewhere
    return _reduce(found + false_alarm, reduction)
