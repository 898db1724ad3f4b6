"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer


class Adam(Optimizer):
    """Step by the bias-corrected mean of gradients over the root of their mean square.

    ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g^2``,
    ``p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)``.
    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2 penalty).
    """

    hyper_names = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = tuple(map(float, betas)), float(eps), float(weight_decay)

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        self.adam_step(param, grad, state)

    def adam_step(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        b1, b2 = self.betas
        if "m" not in state:
            state["m"], state["v"], state["step"] = np.zeros_like(param), np.zeros_like(param), np.zeros((), np.int64)
        m, v = state["m"], state["v"]
        state["step"] += 1  # this parameter's own update count (it may join late)
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        correction1, correction2 = 1 - b1 ** state["step"], 1 - b2 ** state["step"]
        denominator = np.sqrt(v) / np.sqrt(correction2) + self.eps
        param -= (self.lr / correction1) * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p -= lr * weight_decay * p`` before the Adam step."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        param *= 1 - self.lr * self.weight_decay
        self.adam_step(param, grad, state)
