"""A small U-Net (Ronneberger, Fischer & Brox 2015) for per-pixel classes.

The encoder halves the maps twice, doubling the channels; the decoder doubles them back
with a stride-2 transposed convolution and concatenates (``F.cat``) the encoder's maps of
the same size, so fine detail skips the bottleneck. A 1x1 convolution gives the logits of
every class at every pixel. For 1 x 64 x 64 scenes with ``width=8, depth=2``::

    down.0 [Conv3x3-BN-ReLU]x2   8 @ 64x64 -----------------------------.
    pool, down.1 [...]x2         16 @ 32x32 --------------.              |
    pool, bottom [...]x2         32 @ 16x16               |              |
    up.0 ConvTranspose 2x2/2     16 @ 32x32 -> cat -> dec.0 16 @ 32x32   |
    up.1 ConvTranspose 2x2/2      8 @ 64x64 -> cat ----------> dec.1  8 @ 64x64
    head Conv1x1                 num_classes @ 64x64 (logits)

The default ``depth=3`` adds one more level (64 channels at 8x8), so that a bottom pixel
sees about 70 input pixels: a whole digit of the scenes, which are 16-30 pixels tall.

Differences from the paper: padded convolutions, so the output has the input's size (the
paper cropped the skip maps instead); batch norm after every convolution; two levels
instead of four by default (``depth``). Height and width must be multiples of ``2**depth``.
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
    """U-Net: (N, in_channels, H, W) -> logits (N, num_classes, H, W).

    Args:
        in_channels (int): image channels (default 1).
        num_classes (int): classes per pixel (default 11: background and ten digits).
        width (int): channels of the first level, doubled at each level down (default 8).
        depth (int): times the maps are halved, then doubled back (default 3).
        batch_norm (bool): batch norm after each convolution (default True).

    Shape: input (N, C, H, W) with H and W multiples of ``2**depth``; output (N, num_classes, H, W).

    >>> UNet(1, 3, width=4, depth=2)(Tensor(np.zeros((2, 1, 8, 8), np.float32))).shape
    (2, 3, 8, 8)
    """

    repr_always = ("in_channels", "num_classes")

    def __init__(self, in_channels: int = 1, num_classes: int = 11, width: int = 8, depth: int = 3,
                 batch_norm: bool = True, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if width < 1 or num_classes < 1 or depth < 1:
            raise ValueError(f"UNet: width, num_classes and depth must be >= 1, got {width}, {num_classes}, {depth}")
        rng = nn.init.generator(rng)
        self.in_channels, self.num_classes, self.width, self.depth = in_channels, num_classes, width, depth
        self.batch_norm = batch_norm
        widths = [width * 2 ** level for level in range(depth + 1)]  # level 0 (full size) .. depth (bottom)
        self.down = nn.Sequential(*[DoubleConv(c_in, c_out, batch_norm, rng=rng)
                                    for c_in, c_out in zip([in_channels, *widths[:-2]], widths[:-1])])
        self.pool = nn.MaxPool2d(2)
        self.bottom = DoubleConv(widths[-2], widths[-1], batch_norm, rng=rng)
        # deepest first: up[i] doubles the maps from level depth-i to depth-i-1, dec[i] merges them
        self.up = nn.Sequential(*[nn.ConvTranspose2d(2 * c, c, 2, stride=2, rng=rng) for c in widths[-2::-1]])
        self.dec = nn.Sequential(*[DoubleConv(2 * c, c, batch_norm, rng=rng) for c in widths[-2::-1]])
        self.head = nn.Conv2d(width, num_classes, 1, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        step = 2 ** self.depth
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % step or x.shape[3] % step:
            raise ShapeError(f"UNet(in_channels={self.in_channels}, depth={self.depth}): expected input "
                             f"(N, {self.in_channels}, H, W) with H and W multiples of {step}, got shape "
                             f"{tuple(x.shape)}")
        skips = []
        for encode in self.down:
            x = encode(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, decode, skip in zip(self.up, self.dec, reversed(skips)):
            x = decode(F.cat([up(x), skip], dim=1))
        return self.head(x)
