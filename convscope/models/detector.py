"""A single-stage grid detector: finds every digit on a scene and draws its box.

CenterNet-style (Zhou, Wang & Krähenbühl 2019, "Objects as Points"): an object is the peak of
its class's heatmap at its centre, plus the offset and size of its box, all read off a grid 4
times coarser than the image (see :mod:`convscope.heatmaps` for the targets and the decoding).
There are no anchor boxes: each grid cell says "the centre of a k is here" and how big it is.
For 1 x 64 x 64 scenes (``width`` w = 32)::

    Conv w/2@3x3 -> BN -> ReLU -> MaxPool 2      16 @ 32x32
    Conv w@3x3   -> BN -> ReLU -> MaxPool 2      32 @ 16x16   (the grid: stride 4)
    Conv 2w@3x3  -> BN -> ReLU                   64 @ 16x16
    Conv 2w@3x3 dilation 2 -> BN -> ReLU         64 @ 16x16
    Conv 2w@3x3 dilation 4 -> BN -> ReLU         64 @ 16x16   (each cell sees 66 x 66 pixels)
    Conv 2w@3x3 -> ReLU -> Conv 1x1 K + 4        the K class heatmaps, (dx, dy), (log w, log h)

Dilated convolutions widen what a cell sees to the whole digit (the scenes' digits are up to
about 30 pixels tall) without shrinking the grid, which must stay fine enough that two
digits' centres rarely share a cell. Differences from CenterNet: a small plain backbone instead
of an hourglass or DLA-34 network, log sizes instead of sizes in pixels, TTFNet's elliptical
Gaussians, and a final class-wise NMS after the 3x3 peak finding.

>>> import numpy as np
>>> from convscope.tensor import Tensor
>>> Detector(rng=np.random.default_rng(0))(Tensor(np.zeros((2, 1, 64, 64), np.float32))).shape
(2, 14, 16, 16)
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..heatmaps import REGRESSION


def _unit(in_channels, out_channels, rng, dilation=1):
    """Conv 3x3 (same size) - BatchNorm - ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False, rng=rng),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


class Detector(nn.Sequential):
    """Grid detector for ``in_channels`` x H x W images (H, W multiples of 4) of ``num_classes``
    kinds of object; outputs (N, num_classes + 4, H / 4, W / 4). 135,230 weights at the default
    ``width`` 32 with 10 classes."""

    repr_always = ("in_channels", "num_classes", "width")
    stride = 4  # image pixels per grid cell

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32,
                 rng: np.random.Generator | None = None) -> None:
        rng = nn.init.generator(rng)
        w = width
        super().__init__(
            *_unit(in_channels, w // 2, rng), nn.MaxPool2d(2),
            *_unit(w // 2, w, rng), nn.MaxPool2d(2),
            *_unit(w, 2 * w, rng),
            *_unit(2 * w, 2 * w, rng, dilation=2),
            *_unit(2 * w, 2 * w, rng, dilation=4),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1, rng=rng), nn.ReLU(),
            nn.Conv2d(2 * w, num_classes + REGRESSION, 1, rng=rng),
        )
        self.in_channels, self.num_classes, self.width = in_channels, num_classes, width
        self[-1].bias.data[:num_classes] = -np.log((1 - 0.1) / 0.1)  # start at p = 0.1 (CenterNet's prior)
