"""A small U-Net (Ronneberger, Fischer & Brox 2015) for per-pixel classes.

The encoder halves the maps twice, doubling the channels; the decoder doubles them back
with a stride-2 transposed convolution and concatenates (``F.cat``) the encoder's maps of
the same size, so fine detail skips the bottleneck. A 1x1 convolution gives the logits of
every class at every pixel. For 1 x 64 x 64 scenes with the default ``width=12``::

    enc1 [Conv3x3-BN-ReLU]x2   12 @ 64x64 ----------------------------.
    MaxPool 2 -> enc2 [...]x2   24 @ 32x32 -------------.              |
    MaxPool 2 -> bottom [...]x2 48 @ 16x16              |              |
    up2 ConvTranspose 2x2/2     24 @ 32x32 -> cat -> dec2 24 @ 32x32   |
    up1 ConvTranspose 2x2/2     12 @ 64x64 -> cat ----------> dec1 12 @ 64x64
    head Conv1x1                num_classes @ 64x64 (logits)

Differences from the paper: padded convolutions, so the output has the input's size (the
paper cropped the skip maps instead); batch norm after every convolution; two levels
instead of four. Height and width must be multiples of 4.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import ShapeError, Tensor


class DoubleConv(nn.Sequential):
    """``[Conv3x3 (padding 1) - BatchNorm - ReLU] x 2``: the U-Net's unit at each level."""

    repr_positional = 2

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True,
                 rng: np.random.Generator | None = None) -> None:
        rng = nn.init.generator(rng)
        layers = []
        for c_in in (in_channels, out_channels):
            layers.append(nn.Conv2d(c_in, out_channels, 3, padding=1, bias=not batch_norm, rng=rng))
            layers += [nn.BatchNorm2d(out_channels)] if batch_norm else []
            layers.append(nn.ReLU())
        super().__init__(*layers)
        self.in_channels, self.out_channels, self.batch_norm = in_channels, out_channels, batch_norm


class UNet(nn.Module):
    """U-Net with two down levels: (N, in_channels, H, W) -> logits (N, num_classes, H, W).

    Args:
        in_channels (int): image channels (default 1).
        num_classes (int): classes per pixel (default 11: background and ten digits).
        width (int): channels of the first level, doubled at each level down (default 12).
        batch_norm (bool): batch norm after each convolution (default True).

    Shape: input (N, C, H, W) with H and W multiples of 4; output (N, num_classes, H, W).

    >>> UNet(1, 3, width=4)(Tensor(np.zeros((2, 1, 8, 8), np.float32))).shape
    (2, 3, 8, 8)
    """

    repr_always = ("in_channels", "num_classes")

    def __init__(self, in_channels: int = 1, num_classes: int = 11, width: int = 12, batch_norm: bool = True,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if width < 1 or num_classes < 1:
            raise ValueError(f"UNet: width and num_classes must be >= 1, got {width} and {num_classes}")
        rng = nn.init.generator(rng)
        self.in_channels, self.num_classes, self.width, self.batch_norm = in_channels, num_classes, width, batch_norm
        w = width
        self.enc1 = DoubleConv(in_channels, w, batch_norm, rng=rng)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = DoubleConv(w, 2 * w, batch_norm, rng=rng)
        self.pool2 = nn.MaxPool2d(2)
        self.bottom = DoubleConv(2 * w, 4 * w, batch_norm, rng=rng)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2, rng=rng)
        self.dec2 = DoubleConv(4 * w, 2 * w, batch_norm, rng=rng)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2, rng=rng)
        self.dec1 = DoubleConv(2 * w, w, batch_norm, rng=rng)
        self.head = nn.Conv2d(w, num_classes, 1, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ShapeError(f"UNet(in_channels={self.in_channels}): expected input (N, {self.in_channels}, H, W) "
                                f"with H and W multiples of 4, got shape {tuple(x.shape)}")
        skip1 = self.enc1(x)
        skip2 = self.enc2(self.pool1(skip1))
        out = self.bottom(self.pool2(skip2))
        out = self.dec2(F.cat([self.up2(out), skip2], dim=1))
        out = self.dec1(F.cat([self.up1(out), skip1], dim=1))
        return self.head(out)
