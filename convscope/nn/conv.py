"""Conv2d: a bank of small filters slid over the image, one feature map per filter; and
ConvTranspose2d, which runs the same window the other way to make maps larger."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from ..windows import Window, conv_transpose_window, conv_window
from . import init
from .module import Module, Parameter, new_array


class Conv2d(Module):
    """2-D convolution layer (cross-correlation), as ``torch.nn.Conv2d``.

    Each of ``out_channels`` filters of size ``in_channels/groups x kH x kW`` slides over
    the input; the same weights are used at every position (parameter sharing).

    Args:
        in_channels (int): channels of the input (1 for grayscale, 3 for RGB).
        out_channels (int): number of filters = channels of the output.
        kernel_size (int or pair): filter height and width.
        stride (int or pair): step between positions. Default 1.
        padding (int, pair, "valid" or "same"): zeros around the input. Default 0.
        dilation (int or pair): spacing between filter taps. Default 1.
        groups (int): independent channel groups (``in_channels`` = depthwise). Default 1.
        bias (bool): add a learned bias per filter. Default True.
        rng (numpy.random.Generator): draws the initial weights and biases, uniform in
            +-1/sqrt(fan_in) as PyTorch does (``nn.init.default_uniform_``).

    Shape:
        Input (N, C_in, H, W); output (N, C_out, H_out, W_out) with
        ``H_out = floor((H + 2*padding - dilation*(kH-1) - 1)/stride) + 1`` (same for W).
        Weight (C_out, C_in/groups, kH, kW); bias (C_out,).

    >>> conv = Conv2d(1, 6, kernel_size=5, padding=2, rng=np.random.default_rng(0))
    >>> conv(Tensor(np.zeros((8, 1, 28, 28), dtype=np.float32))).shape
    (8, 6, 28, 28)
    """

    role = "conv"
    repr_positional, repr_always = 2, ("kernel_size", "stride")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__()
        name = f"Conv2d({in_channels}, {out_channels}, kernel_size={kernel_size})"
        _check_channels(name, in_channels, out_channels, groups)
        try:
            window = conv_window(kernel_size, stride, padding, dilation)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size, self.stride, self.dilation = window.kernel, window.stride, window.dilation
        self.padding = padding if isinstance(padding, str) else window.before()
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(new_array(shape))
        self.bias = Parameter(new_array((self.out_channels,))) if bias else None
        init.default_uniform_(self.weight, self.bias, init.generator(rng))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def mult_adds(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        return int(np.prod(out_shape[1:], dtype=np.int64) * np.prod(self.weight.shape[1:]))


def _check_channels(name, in_channels, out_channels, groups):
    for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: in_channels and out_channels must be divisible by groups={groups}")


class ConvTranspose2d(Module):
    """Transposed 2-D convolution layer (learned upsampling), as ``torch.nn.ConvTranspose2d``.

    Each input pixel paints its values times a learned kernel onto a window of the output;
    windows lie ``stride`` pixels apart, so stride 2 doubles the map. It maps a Conv2d's
    output size back to its input size (the adjoint of Conv2d with the same window).

    Args:
        in_channels (int): channels of the input.
        out_channels (int): channels of the output.
        kernel_size (int or pair): kernel height and width.
        stride (int or pair): distance between the windows of neighbouring input pixels. Default 1.
        padding (int or pair): rows and columns cropped off each border of the output. Default 0.
        output_padding (int or pair): rows and columns added at the bottom and right (smaller
            than stride or dilation), to reach the sizes that a stride > 1 rounds together. Default 0.
        groups (int): independent channel groups. Default 1.
        bias (bool): add a learned bias per output channel. Default True.
        dilation (int or pair): spacing between kernel taps. Default 1.
        rng (numpy.random.Generator): draws the initial weights and biases, uniform in
            +-1/sqrt(fan_in) with PyTorch's fan_in for this layout, ``out_channels/groups*kH*kW``.

    Shape:
        Input (N, C_in, H, W); output (N, C_out, H_out, W_out) with
        ``H_out = (H - 1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1`` (same for W).
        Weight (C_in, C_out/groups, kH, kW): input channel first; bias (C_out,).

    >>> up = ConvTranspose2d(6, 1, kernel_size=4, stride=2, padding=1, rng=np.random.default_rng(0))
    >>> up(Tensor(np.zeros((8, 6, 14, 14), dtype=np.float32))).shape
    (8, 1, 28, 28)
    """

    role = "conv_transpose"
    repr_positional, repr_always = 2, ("kernel_size", "stride")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 output_padding: int | tuple[int, int] = 0, groups: int = 1, bias: bool = True,
                 dilation: int | tuple[int, int] = 1, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        name = f"ConvTranspose2d({in_channels}, {out_channels}, kernel_size={kernel_size})"
        _check_channels(name, in_channels, out_channels, groups)
        try:
            window = conv_transpose_window(kernel_size, stride, padding, output_padding, dilation)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size, self.stride, self.dilation = window.kernel, window.stride, window.dilation
        self.padding, self.output_padding = window.before(), window.output_padding
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        self.weight = Parameter(new_array(shape))
        self.bias = Parameter(new_array((self.out_channels,))) if bias else None
        init.default_uniform_(self.weight, self.bias, init.generator(rng))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)

    def geometry(self, in_hw: tuple[int, int]) -> Window:
        """The transposed :class:`~convscope.windows.Window`: windows on the output."""
        return conv_transpose_window(self.kernel_size, self.stride, self.padding, self.output_padding, self.dilation)

    def mult_adds(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        """Every input value times every tap of its kernels: C_in*H*W * (C_out/groups)*kH*kW."""
        return int(np.prod(in_shape[1:], dtype=np.int64) * np.prod(self.weight.shape[1:]))
