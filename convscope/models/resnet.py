"""A small ResNet-style network for 3 x 32 x 32 images (CIFAR-10), after He et al. 2016.

Each residual block computes ``relu(x + F(x))`` with ``F`` = Conv3x3-BN-ReLU-Conv3x3-BN;
when the block halves the resolution (stride 2) or changes width, the shortcut is a
1x1 convolution with batch norm. Stages of 16, 32, 64 channels at 32, 16, 8 pixels, then
global average pooling and a linear classifier (ResNet-8 style with one block per stage
by default).
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import Tensor


class BasicBlock(nn.Module):
    """Residual block ``relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x))))))``."""

    repr_positional, repr_always = 2, ("stride",)

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__()
        rng = nn.init.generator(rng)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False, rng=rng)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False, rng=rng)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, rng=rng),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """ResNet-style CIFAR-10 classifier: stem, three residual stages, global pooling, linear."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16, blocks_per_stage: int = 1,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__()
        rng = nn.init.generator(rng)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.width, self.blocks_per_stage = width, blocks_per_stage
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False, rng=rng),
                                  nn.BatchNorm2d(width), nn.ReLU())
        blocks, channels = [], width
        for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks_per_stage):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(channels, out_channels, stride, rng=rng))
                channels = out_channels
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(self.pool(self.stages(self.stem(x)))))
