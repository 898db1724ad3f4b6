"""Fully connected, flatten, activation, dropout and batch-norm layers, and the losses."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module, Parameter, new_array


class Linear(Module):
    """Fully connected layer ``y = x @ weight.T + bias``.

    Args:
        in_features, out_features (int): sizes of each input and output vector.
        bias (bool): default True.
        rng (numpy.random.Generator): draws weights and bias uniform in +-1/sqrt(in_features).

    Shape: input (N, in_features), output (N, out_features); weight (out, in).

    >>> Linear(400, 120, rng=np.random.default_rng(0)).weight.shape
    (120, 400)
    """

    role = "linear"
    repr_always = ("bias",)

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Linear({in_features}, {out_features}): {arg} must be a positive int")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(new_array((out_features, in_features)))
        self.bias = Parameter(new_array((out_features,))) if bias else None
        init.default_uniform_(self.weight, self.bias, init.generator(rng))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def mult_adds(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        return self.in_features * self.out_features


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W): feature maps become one vector per image."""

    role = "flatten"

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)


class ReLU(Module):
    """``max(x, 0)`` elementwise; its own layer so summaries and feature maps show it."""

    role = "activation"

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` if x > 0 else ``negative_slope * x``."""

    role = "activation"
    repr_always = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise."""

    role = "activation"

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent elementwise."""

    role = "activation"

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """Probabilities along ``dim`` (default 1, the class axis)."""

    repr_always = ("dim",)  # no role: it is not elementwise, the generic text fits

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)


class Dropout(Module):
    """Zero inputs with probability ``p`` while training (scaling the rest); identity in eval.

    Args: p (float, default 0.5); rng (numpy.random.Generator) draws the masks.
    """

    role = "dropout"
    repr_always = ("p",)

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)
        self.rng = init.generator(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)


class BatchNorm2d(Module):
    """Normalise each channel over (N, H, W), then scale by ``weight`` and shift by ``bias``.

    Args:
        num_features (int): channels C.
        eps (float): added to the variance. Default 1e-5.
        momentum (float): running-statistics update rate. Default 0.1.
        affine (bool): learn a per-channel scale and shift. Default True.

    Shape: input and output (N, C, H, W) (or (N, C)). Buffers ``running_mean``,
    ``running_var`` (C,) are used in eval mode and saved in the state dict.
    """

    role = "normalization"
    repr_positional, repr_always = 1, ("eps", "momentum")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"BatchNorm2d: num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.affine = bool(affine)
        self.weight = Parameter(new_array((num_features,), 1.0)) if affine else None
        self.bias = Parameter(new_array((num_features,))) if affine else None
        self.register_buffer("running_mean", new_array((num_features,)))
        self.register_buffer("running_var", new_array((num_features,), 1.0))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps)

    def mult_adds(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        return int(np.prod(out_shape[1:], dtype=np.int64))  # one scale-and-shift per value


def _check_reduction(layer, reduction):
    if reduction not in F.loss.REDUCTIONS:
        raise ValueError(f"{layer}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


class CrossEntropyLoss(Module):
    """Softmax + negative log-likelihood of the true class (see ``F.cross_entropy``).

    Args:
        reduction: "mean" (default), "sum" or "none".
        label_smoothing (float): in [0, 1). Default 0.
        weight (array (C,), optional, keyword only): a constant weight per class.
        ignore_index (int, keyword only): target value that contributes nothing. Default -100.
    """

    role = "loss"

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0, *,
                 weight: ArrayLike | None = None, ignore_index: int = -100) -> None:
        super().__init__()
        self.reduction = _check_reduction("CrossEntropyLoss", reduction)
        self.label_smoothing, self.ignore_index = float(label_smoothing), int(ignore_index)
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float64)

    def forward(self, logits: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.cross_entropy(logits, target, self.reduction, self.label_smoothing,
                               weight=self.weight, ignore_index=self.ignore_index)


class MSELoss(Module):
    """Mean squared error between prediction and target."""

    role = "loss"

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(Module):
    """Sigmoid + binary cross-entropy, stable for any logits (see ``F.binary_cross_entropy_with_logits``).

    Args:
        weight (optional): broadcast to the input; rescales each element's loss.
        reduction: "mean" (default), "sum" or "none".
        pos_weight (optional): one weight per class (last axis) for the positive term.
    """

    role = "loss"

    def __init__(self, weight: ArrayLike | None = None, reduction: str = "mean",
                 pos_weight: ArrayLike | None = None) -> None:
        super().__init__()
        self.reduction = _check_reduction("BCEWithLogitsLoss", reduction)
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float64)
        self.pos_weight = None if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.pos_weight, self.reduction)


class HuberLoss(Module):
    """Squared error within ``delta`` of the target, absolute error beyond (see ``F.huber_loss``)."""

    role = "loss"

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__()
        if not delta > 0:
            raise ValueError(f"HuberLoss(delta={delta}): delta must be positive")
        self.reduction, self.delta = _check_reduction("HuberLoss", reduction), float(delta)

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(Module):
    """Huber loss divided by ``beta``; ``beta=0`` is the L1 loss (see ``F.smooth_l1_loss``)."""

    role = "loss"

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__()
        if not beta >= 0:
            raise ValueError(f"SmoothL1Loss(beta={beta}): beta must be >= 0")
        self.reduction, self.beta = _check_reduction("SmoothL1Loss", reduction), float(beta)

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)
