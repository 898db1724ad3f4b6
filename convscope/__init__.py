"""convscope: build, train and look inside convolutional neural networks, on NumPy."""

from . import functional, nn, optim
from .explain import explain
from .summary import summary
from .tensor import Tensor, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "functional", "nn", "optim", "summary", "explain",
           "__version__"]
