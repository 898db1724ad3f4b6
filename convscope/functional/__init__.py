"""Functional ops with PyTorch's names and argument order (``torch.nn.functional``).

Each takes and returns :class:`~convscope.tensor.Tensor` objects; layers in
:mod:`convscope.nn` are thin wrappers that hold parameters and call these.
"""

from .activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .basic import cat, dropout, flatten, linear, pad
from .conv import conv2d, conv_transpose2d
from .loss import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_focal_loss,
    huber_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from .normalization import batch_norm
from .pooling import adaptive_avg_pool2d, avg_pool2d, lp_pool2d, max_pool2d, sum_pool2d
from .upsampling import interpolate

__all__ = [
    "conv2d", "conv_transpose2d", "interpolate",
    "max_pool2d", "avg_pool2d", "lp_pool2d", "sum_pool2d", "adaptive_avg_pool2d",
    "linear", "flatten", "pad", "cat", "dropout",
    "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "batch_norm", "cross_entropy", "nll_loss", "mse_loss",
    "binary_cross_entropy_with_logits", "smooth_l1_loss", "huber_loss", "gaussian_focal_loss",
]
