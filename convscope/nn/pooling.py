"""Pooling layers: shrink feature maps by summarising each window (max, average, L_p)."""

from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from ..windows import Window, pair, pool_window
from .module import Module


class _Pool2d(Module):
    role = "pool"
    repr_always = ("kernel_size", "stride")

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False) -> None:
        super().__init__()
        try:
            window = pool_window(kernel_size, stride, padding, 1, ceil_mode)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}(kernel_size={kernel_size}): {error}") from None
        self.kernel_size, self.stride, self.padding = window.kernel, window.stride, window.before()
        self.ceil_mode = window.ceil_mode



class MaxPool2d(_Pool2d):
    """Keep the largest value of each window (the default pooling of CNNs).

    Args: kernel_size, stride (default kernel_size), padding (default 0, at most half the
    kernel, filled with -inf), ceil_mode (default False).

    Shape: ``H_out = floor((H + 2*padding - kernel_size)/stride) + 1`` (ceil with ceil_mode).

    >>> MaxPool2d(2)(Tensor(np.zeros((1, 6, 28, 28)))).shape
    (1, 6, 14, 14)
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, 1, self.ceil_mode)


class AvgPool2d(_Pool2d):
    """Average each window. ``count_include_pad`` (default True) counts zero padding.

    Shape: as :class:`MaxPool2d`.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class LPPool2d(_Pool2d):
    """Take the L_p norm of each window, ``(sum |x|^p)^(1/p)``; ``norm_type=2`` is L2 pooling.

    Uses ``|x|`` (PyTorch uses ``x``): identical for non-negative inputs such as ReLU output.
    Shape: as :class:`MaxPool2d`.
    """

    def __init__(self, norm_type: float, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, ceil_mode: bool = False,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if not float(norm_type) >= 1:
            raise ValueError(f"LPPool2d: norm_type must be >= 1, got {norm_type!r}")
        self.norm_type = float(norm_type)

    def forward(self, x: Tensor) -> Tensor:
        return F.lp_pool2d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average into a fixed ``output_size`` whatever the input size (1 = global average)."""

    role = "adaptive_pool"

    def __init__(self, output_size: int | tuple[int, int]) -> None:
        super().__init__()
        self.output_size = pair(output_size, "output_size")

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def geometry(self, in_hw: tuple[int, int]) -> Window:
        """The equivalent fixed window where the bins tile the input evenly (stride = H // out);
        otherwise the window of the largest bin, as an approximation for receptive fields."""
        strides = tuple(max(s // o, 1) for s, o in zip(in_hw, self.output_size))
        kernels = tuple(s - (o - 1) * st for s, o, st in zip(in_hw, self.output_size, strides))
        return Window(kernels, strides)
