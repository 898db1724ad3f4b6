"""Leaving and arriving: export a model to ONNX, import weights trained in PyTorch.

* :func:`export_onnx` / :func:`onnx_model`: a convscope model as an ONNX graph (opset 18,
  IR version 8) that onnxruntime runs with the same results (needs ``pip install convscope[onnx]``);
* :func:`load_torch_weights` / :func:`import_torch_state`: a PyTorch ``state_dict`` saved with
  safetensors into the matching convscope model, by dotted names and shapes.
"""

from .graph import ExportError, Step, forward_steps
from .onnx_export import export_onnx, onnx_model
from .torch_weights import WeightsMismatch, import_torch_model, import_torch_state, load_torch_weights

__all__ = ["ExportError", "Step", "forward_steps", "export_onnx", "onnx_model",
           "WeightsMismatch", "import_torch_state", "load_torch_weights", "import_torch_model"]
