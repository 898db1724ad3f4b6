"""The arithmetic behind one number: how a traced layer computed one cell of its output.

A learner clicks a cell of a feature map and sees the sum that made it, as CNN Explainer
shows it: the window of input numbers a convolution or a pooling layer read, the weights,
the products and their sum; a linear unit's largest contributions; an activation's input and
output; batch norm's statistics; and, for the model's last layer, the softmax that turns its
logits into probabilities. :func:`cell` answers from a :class:`~convscope.trace.Trace`
alone, so every number is the model's own: inputs, outputs and parameters are read from the
traced pass and the layer, the pieces (products, sums, exponentials) are worked out here in
float64 from those numbers, and ``value`` is the layer's own output, which the pieces
reproduce to within the layer's float32 rounding.

* :mod:`~convscope.arithmetic.locate`: which layer and cell, where its input came from,
  and the cell's receptive field on the image (:func:`field_box`);
* :mod:`~convscope.arithmetic.windowed`: convolution and pooling, the same sliding window;
* :mod:`~convscope.arithmetic.cells`: fully connected, pointwise and softmax layers, and
  :func:`cell` itself, which picks the explanation by the layer's class.

Results are plain Python (dicts, lists, floats, ints, strings, None), ready for
``json.dumps``; :func:`layer_cells` lists which layers can be asked.

>>> from convscope.models import lenet5
>>> from convscope.trace import trace
>>> t = trace(lenet5(rng=np.random.default_rng(0)), np.ones((1, 1, 28, 28), np.float32))
>>> c = cell(t, "0", channel=2, y=0, x=0)
>>> c["kind"], c["window_origin"], c["padding"][0][0], c["then"]["layer"]
('conv', [-2, -2], [True, True, True, True, True], '1')
>>> abs(c["sum"] + c["bias"] - c["value"]) < 1e-5
True
"""

from .cells import cell, layer_cells, softmax_pieces
from .locate import CellError, UnknownLayer, field_box

__all__ = ["cell", "layer_cells", "field_box", "softmax_pieces", "CellError", "UnknownLayer"]
