"""Optimizers (update rules) and learning-rate schedules."""

from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR", "OneCycleLR"]
