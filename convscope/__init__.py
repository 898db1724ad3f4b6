"""convscope: build, train and look inside convolutional neural networks, on NumPy.

    import convscope
    model = convscope.models.lenet5(rng=np.random.default_rng(0))
    convscope.save_model("lenet.safetensors", model)
    model, meta = convscope.load_model("lenet.safetensors")
"""

import os as _os
import sys as _sys


def _quiet_interrupt_for_the_command():
    """When this process is the ``convscope`` command, a Ctrl-C during the imports below
    (half a second, before the command's own handling starts) ends it with one line instead
    of a traceback. Library users' interpreters are left alone."""
    argv = getattr(_sys, "orig_argv", _sys.argv)
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    command = _os.path.basename(argv[1]) == "convscope" if len(argv) > 1 else False
    ours = command or module in ("convscope.cli", "convscope.cli.__main__")
    if not ours or _sys.excepthook is not _sys.__excepthook__:
        return

    def hook(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            print("convscope: interrupted", file=_sys.stderr)
        else:
            _sys.__excepthook__(kind, value, traceback)

    _sys.excepthook = hook


_quiet_interrupt_for_the_command()

from . import data, functional, io, models, nn, optim, train  # noqa: E402
from .explain import explain  # noqa: E402
from .io import load_model, save_model  # noqa: E402
from .summary import summary  # noqa: E402
from .tensor import Tensor, is_grad_enabled, no_grad, tensor  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "functional", "nn", "optim", "data", "io", "models",
           "train", "load_model", "save_model", "summary", "explain", "__version__"]
