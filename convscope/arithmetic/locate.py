"""Finding a cell in a trace: the layer by name, the checked position, where the layer's
input came from, and the input pixels the cell can see."""

from __future__ import annotations

import math
import operator

import numpy as np

from ..trace import Field, Layer, Trace


class UnknownLayer(KeyError):
    """A layer name the trace does not have; the message lists the names it has."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


class CellError(ValueError):
    """A cell that cannot be shown: outside the output, or of a layer that kept no output."""


def number(value: float | None) -> str:
    """A number as a sentence shows it: 4 significant digits (None: -inf padding)."""
    return "-inf" if value is None else f"{value:.4g}"


def floats(a: np.ndarray) -> list:
    """Nested lists of Python floats (via float64, so a float32 number is shown exactly)."""
    return np.asarray(a, dtype=np.float64).tolist()


# ----- which layer, which cell ------------------------------------------------------------
def find(t: Trace, name: str) -> Layer:
    """The layer called ``name``; :class:`UnknownLayer` naming the layers there are."""
    if not isinstance(name, str) or name not in {layer.name for layer in t.layers}:
        names = ", ".join(layer.name for layer in t.layers)
        raise UnknownLayer(f"layer {name!r} is not in this trace; layers: {names}")
    return t[name]


def whole(value: int, what: str) -> int:
    """``value`` as an int (numpy ints too; not bools or floats), else :class:`CellError`."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise CellError(f"{what} must be an int, got {value!r}") from None


def position(layer: Layer, index: int, channel: int, y: int | None, x: int | None) -> tuple:
    """The checked output index ``(index, channel)`` or ``(index, channel, y, x)``."""
    if layer.output is None:
        raise CellError(f"layer {layer.name!r} kept no output (traced with keep_outputs=False); "
                        "trace again with keep_outputs=True")
    shape = layer.output_shape
    if len(shape) not in (2, 4):
        raise CellError(f"layer {layer.name!r} has output shape {shape}; cells are shown for outputs "
                        "of shape (N, C) or (N, C, H, W)")
    if len(shape) == 2 and (y, x) != (None, None):
        raise CellError(f"layer {layer.name!r} has an output of shape {shape[1:]}: give a unit (channel) only, "
                        f"got y={y!r}, x={x!r}")
    if len(shape) == 4 and None in (y, x):
        raise CellError(f"layer {layer.name!r} has an output of shape {shape[1:]}: give channel, y and x, "
                        f"got y={y!r}, x={x!r}")
    index = whole(index, "index")
    asked = tuple(whole(v, n) for v, n in list(zip((channel, y, x), ("channel", "y", "x")))[:len(shape) - 1])
    if not 0 <= index < shape[0]:
        raise CellError(f"image {index} is outside the batch of {shape[0]} image(s) in this trace")
    if not all(0 <= v < n for v, n in zip(asked, shape[1:])):
        shown = asked if len(asked) > 1 else asked[0]
        raise CellError(f"cell {shown} is outside the output of layer {layer.name!r}, of shape {shape[1:]}")
    return (index,) + asked


# ----- where the input came from -------------------------------------------------------------
def producer(t: Trace, layer: Layer) -> Layer | None:
    """The latest earlier layer whose output is ``layer``'s input (None: the input image, or
    a tensor made between layers, e.g. a residual sum)."""
    if layer.input is None:
        return None
    return next((e for e in reversed(t.layers[:layer.index]) if e.output is layer.input), None)


def input_name(t: Trace, layer: Layer) -> str | None:
    """The name of the layer that made ``layer``'s input, "input" for the image, None for a
    tensor made between layers."""
    source = producer(t, layer)
    if source is not None:
        return source.name
    return "input" if layer.input is not None and layer.input is t.input else None


def of_input(t: Trace, layer: Layer) -> str:
    """Words for ``layer``'s input: "the input image", "the output of layer '3'" or "its input"."""
    source = input_name(t, layer)
    return {"input": "the input image", None: "its input"}.get(source, f"the output of layer {source!r}")


# ----- the receptive field of one cell ----------------------------------------------------------
def field_box(field: Field | None, y: int, x: int, input_hw: tuple[int, int]) -> dict | None:
    """The input pixels output cell (y, x) can see, as an inclusive box clipped to the input:
    ``{"top", "left", "bottom", "right"}`` (rows top..bottom and columns left..right, both ends
    included). None when ``field`` is None (the cell sees the whole input). A cell whose
    field lies wholly in the padding gets an empty box (bottom < top or right < left).

    The field is centred on ``start + y*jump`` (see :class:`~convscope.trace.Field`)::

        top = start_h + y*jump_h - (rf_h - 1)/2        bottom = top + rf_h - 1

    (rounded inwards to whole pixels where upsampling made them fractions).

    >>> field_box(Field((5, 5), (1, 1), (0.0, 0.0)), 0, 3, (28, 28))
    {'top': 0, 'left': 1, 'bottom': 2, 'right': 5}
    """
    if field is None:
        return None
    spans = []
    for at, rf, jump, start, size in zip((y, x), field.rf, field.jump, field.start, input_hw):
        centre, reach = start + at * jump, (rf - 1) / 2  # fractions after upsampling: the pixels inside
        first, last = math.ceil(centre - reach - 1e-9), math.floor(centre + reach + 1e-9)
        spans.append((max(first, 0), min(last, size - 1)))
    (top, bottom), (left, right) = spans
    return {"top": top, "left": left, "bottom": bottom, "right": right}
