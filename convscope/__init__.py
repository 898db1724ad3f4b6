"""convscope: build, train and look inside convolutional neural networks, on NumPy.

    import convscope
    model = convscope.models.lenet5(rng=np.random.default_rng(0))
    convscope.save_model("lenet.safetensors", model)
    model, meta = convscope.load_model("lenet.safetensors")
"""

from . import data, functional, io, models, nn, optim, train
from .explain import explain
from .io import load_model, save_model
from .summary import summary
from .tensor import Tensor, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "functional", "nn", "optim", "data", "io", "models",
           "train", "load_model", "save_model", "summary", "explain", "__version__"]
