"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    """``p -= lr * v`` with ``v = momentum * v + (1 - dampening) * (grad + weight_decay * p)``.

    Nesterov uses ``grad + momentum * v`` instead of ``v`` (PyTorch's formulation; on the
    first step ``v`` starts as the gradient itself).
    """

    hyper_names = ("lr", "momentum", "dampening", "weight_decay")

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            if "velocity" not in state:
                state["velocity"] = grad.copy()
            else:
                velocity = state["velocity"]
                velocity *= self.momentum
                velocity += (1 - self.dampening) * grad
            grad = grad + self.momentum * state["velocity"] if self.nesterov else state["velocity"]
        param -= self.lr * grad
