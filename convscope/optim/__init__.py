"""Optimizers (update rules) and learning-rate schedules."""

from .adam import Adam, AdamW
from .clip import clip_grad_norm_
from .lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR", "OneCycleLR",
           "clip_grad_norm_"]
