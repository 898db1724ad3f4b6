"""Model zoo: classic CNNs by name.

``build(name, **config)`` makes a model from its registered name; model files store that
name and config, so a model can be rebuilt without running any code from the file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn import Module
from .detector import Detector
from .lenet import LeNet5
from .locator import Locator
from .resnet import BasicBlock, SmallResNet
from .unet import DoubleConv, UNet
from .vgg import SmallVGG

ZOO = {"lenet5": LeNet5, "vgg": SmallVGG, "resnet": SmallResNet, "locator": Locator, "unet": UNet,
       "detector": Detector}
ZOO_INPUTS = {"lenet5": (1, 28, 28), "vgg": (1, 28, 28), "resnet": (3, 32, 32),  # what each was designed for
              "locator": (1, 64, 64), "unet": (1, 64, 64), "detector": (1, 64, 64)}
# the task kind of each model that is not a classifier
ZOO_TASKS = {"locator": "positions", "unet": "segmentation", "detector": "detection"}


def build(name: str, rng: np.random.Generator | None = None, **config: Any) -> Module:
    """Build a zoo model: ``build("lenet5", in_channels=1, num_classes=10, rng=rng)``; a
    regression model takes the size of its targets instead: ``build("locator", num_outputs=2)``."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; the zoo has {', '.join(sorted(ZOO))}")
    return ZOO[name](rng=rng, **config)


def lenet5(in_channels: int = 1, num_classes: int = 10, rng: np.random.Generator | None = None) -> LeNet5:
    """LeNet-5 for 28 x 28 images (see :mod:`convscope.models.lenet`)."""
    return LeNet5(in_channels, num_classes, rng=rng)


__all__ = ["ZOO", "ZOO_INPUTS", "ZOO_TASKS", "build", "lenet5", "LeNet5", "SmallVGG", "SmallResNet", "BasicBlock",
           "Locator", "UNet", "DoubleConv", "Detector"]
