"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), in its modern form.

Layout, for 1 x 28 x 28 digits (the paper used 32 x 32 inputs; ``padding=2`` on the first
convolution gives C1 the same 28 x 28 maps)::

    C1 Conv 6@5x5 -> ReLU -> S2 MaxPool 2x2 -> C3 Conv 16@5x5 -> ReLU -> S4 MaxPool 2x2
    -> Flatten 400 -> F5 Linear 120 -> ReLU -> F6 Linear 84 -> ReLU -> Linear 10 (logits)

Differences from the paper, all modern practice:

* ReLU instead of the scaled tanh ``1.7159 tanh(2x/3)``;
* max pooling instead of trainable subsampling (average times a learned coefficient plus
  a bias, then a sigmoid);
* C3 connects every one of its 16 maps to all 6 S2 maps (the paper used a hand-made
  sparse connection table to break symmetry and save computation);
* a plain linear output with softmax cross-entropy instead of Euclidean RBF units;
* C5 is written as Linear(400, 120): on 5 x 5 maps a 5 x 5 convolution is the same thing.
"""

from __future__ import annotations

import numpy as np

from .. import nn


class LeNet5(nn.Sequential):
    """LeNet-5 for ``in_channels`` x 28 x 28 images and ``num_classes`` classes (61,706 weights)."""

    repr_always = ("in_channels", "num_classes")

    def __init__(self, in_channels: int = 1, num_classes: int = 10, rng: np.random.Generator | None = None) -> None:
        rng = nn.init.generator(rng)
        super().__init__(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120, rng=rng), nn.ReLU(),
            nn.Linear(120, 84, rng=rng), nn.ReLU(),
            nn.Linear(84, num_classes, rng=rng),
        )
        self.in_channels, self.num_classes = in_channels, num_classes
