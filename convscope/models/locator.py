"""A small CNN that regresses a position: where the digit's centre is on a 64 x 64 canvas.

Layout, for 1 x 64 x 64 canvases (``width`` w = 8)::

    Conv w@4x4 stride 2 -> ReLU           w@32x32
    Conv 2w@4x4 stride 2 -> ReLU         2w@16x16
    Conv 4w@4x4 stride 2 -> ReLU         4w@8x8
    Conv 4w@3x3 -> ReLU -> MaxPool 2x2   4w@4x4
    -> Flatten 64w -> Linear hidden -> ReLU -> Linear num_outputs: the centre (x, y)

Strided convolutions shrink the canvas early (a 3x3 convolution at full size would do 16
times the work of the whole first layer), and the one pooling comes last, on small maps.
The convolutions find the ink wherever it is; the fully connected layers read its place off
the 4 x 4 map of cells. The outputs are the centre in the units the model is trained on:
:class:`convscope.tasks.Positions` trains on pixels / canvas size and reports pixels.

>>> import numpy as np
>>> from convscope.tensor import Tensor
>>> Locator(rng=np.random.default_rng(0))(Tensor(np.zeros((3, 1, 64, 64), np.float32))).shape
(3, 2)
"""

from __future__ import annotations

import numpy as np

from .. import nn


class Locator(nn.Sequential):
    """Position regressor for ``in_channels`` x 64 x 64 canvases with ``num_outputs`` outputs
    (2: the centre (x, y)); 52,634 weights at the default ``width`` 8 and ``hidden`` 64."""

    repr_always = ("in_channels", "num_outputs", "width")

    def __init__(self, in_channels: int = 1, num_outputs: int = 2, width: int = 8, hidden: int = 64,
                 rng: np.random.Generator | None = None) -> None:
        rng = nn.init.generator(rng)
        w = width
        super().__init__(
            nn.Conv2d(in_channels, w, 4, stride=2, padding=1, rng=rng), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, rng=rng), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1, rng=rng), nn.ReLU(),
            nn.Conv2d(4 * w, 4 * w, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * w * 4 * 4, hidden, rng=rng), nn.ReLU(),
            nn.Linear(hidden, num_outputs, rng=rng),
        )
        self.in_channels, self.num_outputs, self.width, self.hidden = in_channels, num_outputs, width, hidden
