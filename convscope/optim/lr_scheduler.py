"""Learning-rate schedules: call ``scheduler.step()`` after each optimizer step or epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping

from .optimizer import Optimizer


class LRScheduler:
    """Sets ``optimizer.lr`` from the number of ``step()`` calls so far (``last_step``)."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_step = 0
        self.apply()

    def lr_at(self, step: int) -> float:
        raise NotImplementedError

    def apply(self) -> None:
        self.optimizer.lr = self.lr_at(self.last_step)

    def step(self) -> None:
        self.last_step += 1
        self.apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate now in force, as a one-element list (PyTorch's habit)."""
        return [self.optimizer.lr]

    def state_dict(self) -> dict[str, float]:
        return {"last_step": self.last_step, "base_lr": self.base_lr}

    def load_state_dict(self, saved: Mapping[str, float]) -> None:
        self.last_step, self.base_lr = int(saved["last_step"]), float(saved["base_lr"])
        self.apply()


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base rate down to ``eta_min`` over ``T_max`` steps.

    Past ``T_max`` the cosine carries on (rising again), exactly as PyTorch's closed form.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        progress = step / self.T_max
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2


def _cosine(start, end, fraction):
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2


class OneCycleLR(LRScheduler):
    """Smith's one-cycle policy, as PyTorch's ``OneCycleLR`` (cosine annealing).

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start``
    of ``total_steps``, then falls to ``max_lr / (div_factor * final_div_factor)``. With
    ``cycle_momentum`` the momentum (SGD) or beta1 (Adam) moves the opposite way, between
    ``max_momentum`` and ``base_momentum``.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps < 2:
            raise ValueError(f"OneCycleLR: total_steps must be >= 2, got {total_steps}")
        self.max_lr, self.total_steps = float(max_lr), int(total_steps)
        self.initial_lr = self.max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        self.warmup_end = float(pct_start * self.total_steps) - 1
        self.cycle_momentum = cycle_momentum and (hasattr(optimizer, "betas") or getattr(optimizer, "momentum", 0) > 0)
        self.momenta = (float(base_momentum), float(max_momentum))
        super().__init__(optimizer)

    def _fraction(self, step):
        if step <= self.warmup_end:
            return 0, step / self.warmup_end
        return 1, (step - self.warmup_end) / (self.total_steps - 1 - self.warmup_end)

    def lr_at(self, step: int) -> float:
        phase, fraction = self._fraction(min(step, self.total_steps - 1))
        if phase == 0:
            return _cosine(self.initial_lr, self.max_lr, fraction)
        return _cosine(self.max_lr, self.min_lr, fraction)

    def apply(self) -> None:
        super().apply()
        if not self.cycle_momentum:
            return
        phase, fraction = self._fraction(min(self.last_step, self.total_steps - 1))
        low, high = self.momenta
        momentum = _cosine(high, low, fraction) if phase == 0 else _cosine(low, high, fraction)
        if hasattr(self.optimizer, "betas"):
            self.optimizer.betas = (momentum, self.optimizer.betas[1])
        else:
            self.optimizer.momentum = momentum
