"""A small VGG-style network with batch normalisation for 28 x 28 images.

Two stages of (Conv 3x3 -> BatchNorm -> ReLU) x 2 -> MaxPool 2x2, then a classifier::

    32@28x28 -> 32@28x28 -> pool 14x14 -> 64@14x14 -> 64@14x14 -> pool 7x7
    -> Flatten 3136 -> Linear 256 -> ReLU -> Dropout 0.3 -> Linear num_classes

Stacked 3x3 convolutions (Simonyan & Zisserman 2015) see as far as one 5x5 with fewer
weights and an extra nonlinearity; batch norm (Ioffe & Szegedy 2015) lets it train fast.
"""

from __future__ import annotations

import numpy as np

from .. import nn


def _conv_block(in_channels, out_channels, rng):
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False, rng=rng),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


class SmallVGG(nn.Sequential):
    """VGG-style CNN for ``in_channels`` x 28 x 28 inputs (about 0.87 M weights)."""

    repr_always = ("in_channels", "num_classes", "width")

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32, dropout: float = 0.3,
                 rng: np.random.Generator | None = None) -> None:
        rng = nn.init.generator(rng)
        w = width
        super().__init__(
            *_conv_block(in_channels, w, rng), *_conv_block(w, w, rng), nn.MaxPool2d(2),
            *_conv_block(w, 2 * w, rng), *_conv_block(2 * w, 2 * w, rng), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * w * 7 * 7, 256, rng=rng), nn.ReLU(), nn.Dropout(dropout, rng=rng),
            nn.Linear(256, num_classes, rng=rng),
        )
        self.in_channels, self.num_classes, self.width, self.dropout = in_channels, num_classes, width, dropout
