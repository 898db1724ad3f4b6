"""Pooling layers: shrink feature maps by summarising each window (max, average, L_p)."""

from .. import functional as F
from ..windows import pair
from .module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        name = f"{type(self).__name__}(kernel_size={kernel_size})"
        try:
            self.kernel_size = pair(kernel_size, "kernel_size")
            self.stride = self.kernel_size if stride is None else pair(stride, "stride")
            self.padding = pair(padding, "padding")
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{name}: kernel_size and stride must be >= 1 and padding >= 0")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name}: padding {self.padding} must be at most half of kernel_size")
        self.ceil_mode = bool(ceil_mode)

    def config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), ceil_mode=self.ceil_mode)

    def extra_repr(self):
        text = f"kernel_size={self.kernel_size}, stride={self.stride}"
        text += f", padding={self.padding}" if self.padding != (0, 0) else ""
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Keep the largest value of each window (the default pooling of CNNs).

    Args: kernel_size, stride (default kernel_size), padding (default 0, at most half the
    kernel, filled with -inf), ceil_mode (default False).

    Shape: ``H_out = floor((H + 2*padding - kernel_size)/stride) + 1`` (ceil with ceil_mode).

    >>> MaxPool2d(2)(Tensor(np.zeros((1, 6, 28, 28)))).shape
    (1, 6, 14, 14)
    """

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, 1, self.ceil_mode)


class AvgPool2d(_Pool2d):
    """Average each window. ``count_include_pad`` (default True) counts zero padding.

    Shape: as :class:`MaxPool2d`.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def config(self):
        return dict(super().config(), count_include_pad=self.count_include_pad)

    def extra_repr(self):
        return super().extra_repr() + ("" if self.count_include_pad else ", count_include_pad=False")


class LPPool2d(_Pool2d):
    """L_p norm of each window, ``(sum |x|^p)^(1/p)``; ``norm_type=2`` is L2 pooling.

    Uses ``|x|`` (PyTorch uses ``x``): identical for non-negative inputs such as ReLU output.
    Shape: as :class:`MaxPool2d`.
    """

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, padding=0):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if not float(norm_type) >= 1:
            raise ValueError(f"LPPool2d: norm_type must be >= 1, got {norm_type!r}")
        self.norm_type = float(norm_type)

    def forward(self, x):
        return F.lp_pool2d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode, self.padding)

    def config(self):
        return dict(super().config(), norm_type=self.norm_type)

    def extra_repr(self):
        return f"norm_type={self.norm_type:g}, " + super().extra_repr()


class AdaptiveAvgPool2d(Module):
    """Average into a fixed ``output_size`` whatever the input size (1 = global average)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = pair(output_size, "output_size")

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def config(self):
        return dict(output_size=list(self.output_size))

    def extra_repr(self):
        return f"output_size={self.output_size}"
