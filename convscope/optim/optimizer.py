"""Optimizer base: holds parameters, per-parameter state, and saves/restores both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..tensor import Tensor


class Optimizer:
    """Base class. Subclasses set hyperparameters as attributes and implement ``update``.

    ``state_dict()`` returns ``{"hyper": {name: float}, "steps": int, "state": {"i.key": array}}``
    so a checkpoint can resume training exactly.
    """

    hyper_names = ("lr",)

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        self.lr = float(lr)
        self.steps = 0
        self.state = [{} for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        self.steps += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self.update(p.data, p.grad, state)

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        hyper = {name: getattr(self, name) for name in self.hyper_names}
        arrays = {f"{i}.{key}": value for i, s in enumerate(self.state) for key, value in s.items()}
        return {"hyper": hyper, "steps": self.steps, "state": arrays}

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        for name in self.hyper_names:
            value = saved["hyper"][name]
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        self.steps = int(saved["steps"])
        self.state = [{} for _ in self.params]
        for key, value in saved["state"].items():
            index, name = key.split(".", 1)
            index = int(index)
            if not 0 <= index < len(self.params):
                raise ValueError(f"optimizer state {key!r} names parameter {index}; there are {len(self.params)}")
            if np.shape(value) == ():  # a counter, such as Adam's step
                self.state[index][name] = np.array(value, dtype=np.int64)
                continue
            if np.shape(value) != self.params[index].shape:
                raise ValueError(f"optimizer state {key!r} has shape {np.shape(value)}, "
                                 f"parameter {index} has shape {self.params[index].shape}")
            self.state[index][name] = np.array(value, dtype=self.params[index].dtype)
