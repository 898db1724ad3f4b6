"""Upsample: make every feature map larger by a fixed rule (nothing to learn)."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional.upsampling import check_resize, resized_hw
from ..tensor import Tensor
from ..windows import Window, conv_transpose_window, pair
from .module import Module


class Upsample(Module):
    """Resize each map to ``size`` or by ``scale_factor``, as ``torch.nn.Upsample``.

    Args:
        size (int or pair): the output (H_out, W_out). Or:
        scale_factor (float or pair): ``H_out = floor(H * scale_factor)``.
        mode (str): "nearest" (default: copy the nearest value) or "bilinear" (blend the four
            nearest values by distance).
        align_corners (bool or None): bilinear only; True lines up the corner pixels' centres.

    Shape:
        Input (N, C, H, W); output (N, C, H_out, W_out), ``H_out = size`` or
        ``floor(H * scale_factor)`` (same for W).

    >>> Upsample(scale_factor=2, mode="bilinear")(Tensor(np.zeros((8, 6, 14, 14)))).shape
    (8, 6, 28, 28)
    """

    role = "upsample"

    def __init__(self, size: int | tuple[int, int] | None = None,
                 scale_factor: float | tuple[float, float] | None = None, mode: str = "nearest",
                 align_corners: bool | None = None) -> None:
        super().__init__()
        try:
            check_resize(size, scale_factor, mode, align_corners)
        except ValueError as error:
            raise ValueError(f"Upsample: {error}") from None
        self.size = None if size is None else pair(size, "size")
        self.scale_factor = scale_factor if not isinstance(scale_factor, list) else tuple(scale_factor)
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def factors(self, in_hw: tuple[int, int]) -> tuple[int, int] | None:
        """The whole-number factor f of each axis when every output o reads as if the map
        were exactly f times larger (``scale = 1/f``); None when an axis has none."""
        out_hw = resized_hw(in_hw, self.size, self.scale_factor)
        given = (None, None) if self.scale_factor is None else tuple(np.broadcast_to(self.scale_factor, 2))
        found = []
        for n, out, f in zip(in_hw, out_hw, given):
            whole = out // n if out % n == 0 else 0
            shortcut = whole == 1 or (self.mode == "nearest" and whole == 2)  # PyTorch's exact copies
            if not whole or not (f is None or float(f) == whole or shortcut):
                return None
            found.append(whole)
        return tuple(found)

    def geometry(self, in_hw: tuple[int, int]) -> Window | None:
        """The transposed convolution this upsampling is, for whole-number factors f:

        * nearest: kernel f, stride f (each value painted on an f x f block);
        * bilinear (align_corners False): kernel 2f - f%2, stride f, padding f//2 (each value
          painted as a tent, the bilinear weights); at the borders the map's edge repeats.

        None for other factors and for align_corners=True, whose positions do not repeat
        every f outputs; receptive fields stop there (every input pixel)."""
        f = self.factors(in_hw)
        if f is None or self.align_corners:
            return None
        if self.mode == "nearest":
            return conv_transpose_window(f, stride=f)
        return conv_transpose_window(tuple(2 * a - a % 2 for a in f), stride=f, padding=tuple(a // 2 for a in f))
