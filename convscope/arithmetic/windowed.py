"""Convolution and pooling cells: one sliding window, then products and a sum, or a reduction.

The window at output cell (y, x) reads input row ``y*stride - top + i*dilation`` and column
``x*stride - left + j*dilation`` at kernel offset (i, j), as in :mod:`convscope.windows`.
A position outside the input is padding: zero for convolution, average and L_p pooling,
``-inf`` for max pooling (shown as None: JSON has no infinity). A last ceil_mode window may
overhang the bottom or right edge; those taps are padding too, and average pooling never
counts them.
"""

from __future__ import annotations

import numpy as np

from ..trace import Layer, Trace
from .locate import floats, number, of_input


def taps(layer: Layer, y: int, x: int) -> tuple[list, list, np.ndarray]:
    """The input rows and columns the window at output (y, x) reads, and a (kH, kW) mask of
    which taps fall inside the input."""
    w, (h, wd) = layer.window, layer.input_shape[2:]
    (kh, kw), (sh, sw), (dh, dw), (top, _, left, _) = w.kernel, w.stride, w.dilation, w.padding
    rows = [y * sh - top + i * dh for i in range(kh)]
    cols = [x * sw - left + j * dw for j in range(kw)]
    inside = np.outer([0 <= r < h for r in rows], [0 <= c < wd for c in cols])
    return rows, cols, inside


def gather(maps: np.ndarray, rows: list, cols: list, inside: np.ndarray, fill: float) -> np.ndarray:
    """``maps[..., rows, cols]`` as float64, with ``fill`` at the taps outside the input."""
    r = np.clip(rows, 0, maps.shape[-2] - 1)
    c = np.clip(cols, 0, maps.shape[-1] - 1)
    return np.where(inside, maps[..., r[:, None], c[None, :]].astype(np.float64), fill)


def _window_keys(layer: Layer, rows: list, cols: list, inside: np.ndarray) -> dict:
    w = layer.window
    return {"window_origin": [rows[0], cols[0]], "rows": rows, "cols": cols, "kernel": list(w.kernel),
            "stride": list(w.stride), "dilation": list(w.dilation), "pads": list(w.padding),
            "padding": (~inside).tolist()}


def conv(t: Trace, layer: Layer, pos: tuple) -> dict:
    """Filter ``channel``'s weights times the window on each input channel of its group, summed, plus bias."""
    m, (n, out_c, y, x) = layer.module, pos
    per_group = m.in_channels // m.groups
    group = out_c // (m.out_channels // m.groups)
    channels = list(range(group * per_group, (group + 1) * per_group))
    rows, cols, inside = taps(layer, y, x)
    inputs = gather(layer.input.data[n, channels[0]:channels[-1] + 1], rows, cols, inside, 0.0)
    weights = m.weight.data[out_c].astype(np.float64)
    products = inputs * weights
    total, bias = float(products.sum()), 0.0 if m.bias is None else float(m.bias.data[out_c])
    keys = _window_keys(layer, rows, cols, inside)
    keys["padding"] = np.broadcast_to(~inside, inputs.shape).tolist()  # parallel to inputs: [C][kH][kW]
    pads = int((~inside).sum()) * len(channels)
    text = (f"Filter {out_c} laid its {len(channels)}x{len(rows)}x{len(cols)} weights on the window of "
            f"{of_input(t, layer)} whose top-left corner is row {rows[0]}, column {cols[0]}, multiplied each of "
            f"the {products.size} pairs{f' ({pads} in the zero padding)' if pads else ''} and added the products: "
            f"{number(total)}{f' plus bias {number(bias)}' if m.bias is not None else ', no bias'} = "
            f"{number(float(layer.values[pos]))}.")
    return dict(keys, filter=out_c, group=group, groups=m.groups, channels=channels, inputs=floats(inputs),
                weights=floats(weights), products=floats(products), sum=total, bias=bias, text=text)


def max_pool(t: Trace, layer: Layer, pos: tuple) -> dict:
    """The largest value of the window; ``winner`` is the first maximum in row-major order
    (the one the backward pass sends the gradient to)."""
    n, c, y, x = pos
    rows, cols, inside = taps(layer, y, x)
    values = gather(layer.input.data[n, c], rows, cols, inside, -np.inf)
    i, j = divmod(int(np.argmax(values)), len(cols))
    padded = " (padding counts as -inf)" if not inside.all() else ""
    text = (f"Max pooling kept the largest of the {values.size} values in its window of {of_input(t, layer)}"
            f"{padded}: {number(float(values[i, j]))}, at row {rows[i]}, column {cols[j]}.")
    return dict(_window_keys(layer, rows, cols, inside), op="max", channel=c,
                values=np.where(inside, values, None).tolist(), winner=[i, j], winner_at=[rows[i], cols[j]],
                result=float(values[i, j]), text=text)


def avg_pool(t: Trace, layer: Layer, pos: tuple) -> dict:
    """The window's sum over the number of counted positions (``counted``): the real pixels,
    and the explicit padding too with ``count_include_pad``."""
    n, c, y, x = pos
    rows, cols, inside = taps(layer, y, x)
    values = gather(layer.input.data[n, c], rows, cols, inside, 0.0)
    include = layer.module.count_include_pad
    if include:
        (h, w), (top, bottom, left, right) = layer.input_shape[2:], layer.window.padding
        counted = np.outer([-top <= r < h + bottom for r in rows], [-left <= q < w + right for q in cols])
    else:
        counted = inside
    total, count = float(values.sum()), int(counted.sum())
    text = (f"Average pooling added the {count} counted values of its window of {of_input(t, layer)} "
            f"({'padding included' if include else 'padding left out'}): "
            f"{number(total)} / {count} = {number(total / count)}.")
    return dict(_window_keys(layer, rows, cols, inside), op="avg", channel=c, values=floats(values),
                counted=counted.tolist(), count_include_pad=include, sum=total, count=count, result=total / count,
                text=text)


def lp_pool(t: Trace, layer: Layer, pos: tuple) -> dict:
    """``(sum |x|^p)^(1/p)`` over the window (zero padding adds nothing)."""
    n, c, y, x = pos
    p = layer.module.norm_type
    rows, cols, inside = taps(layer, y, x)
    values = gather(layer.input.data[n, c], rows, cols, inside, 0.0)
    powers = np.abs(values) ** p
    total = float(powers.sum())
    text = (f"L{p:g} pooling raised the size of each of the {values.size} values in its window of "
            f"{of_input(t, layer)} to the power {p:g}, added them and took the root: "
            f"({number(total)})^(1/{p:g}) = {number(total ** (1 / p))}.")
    return dict(_window_keys(layer, rows, cols, inside), op="lp", norm_type=p, channel=c, values=floats(values),
                powers=floats(powers), sum=total, result=total ** (1 / p), text=text)


def adaptive_pool(t: Trace, layer: Layer, pos: tuple) -> dict:
    """The mean of the cell's bin: bin i of an axis of length L cut into ``out`` bins is
    ``[floor(i*L/out), ceil((i+1)*L/out))``, as in PyTorch."""
    (n, c, y, x), (h, w), (oh, ow) = pos, layer.input_shape[2:], layer.output_shape[2:]
    rows = list(range(y * h // oh, -(-(y + 1) * h // oh)))
    cols = list(range(x * w // ow, -(-(x + 1) * w // ow)))
    values = layer.input.data[n, c, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float64)
    total, count = float(values.sum()), values.size
    text = (f"Adaptive average pooling averaged rows {rows[0]}-{rows[-1]} and columns {cols[0]}-{cols[-1]} of "
            f"{of_input(t, layer)}: {number(total)} / {count} = {number(total / count)}.")
    return {"op": "adaptive_avg", "channel": c, "window_origin": [rows[0], cols[0]], "rows": rows, "cols": cols,
            "padding": np.zeros(values.shape, bool).tolist(), "values": floats(values), "sum": total,
            "count": count, "result": total / count, "text": text}
