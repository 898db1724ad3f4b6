"""Looking inside a CNN: filters, feature maps, saliency, Grad-CAM, invariance, reports.

The modules are pure array-to-array (or array-to-image) functions, except
:mod:`convscope.viz.render`, the only one that plots with matplotlib or writes files.

    from convscope.viz.activations import capture_activations
    acts = capture_activations(model, x)        # {layer name: (N, ...) ndarray}
"""

from .activations import capture_activations, compare_pooling
from .grids import feature_grid, filter_grid, overlay, tile
from .saliency import grad_cam, saliency

__all__ = ["capture_activations", "compare_pooling", "feature_grid", "filter_grid", "overlay",
           "tile", "saliency", "grad_cam"]
