"""The cells of layers that make maps larger: a transposed convolution's sum of the inputs
that scatter onto the cell, and an upsampling's copy (nearest) or blend of 4 inputs (bilinear).

A transposed convolution with stride s lays every input value, times its filter, onto the
output at ``s * (i, j) - padding`` (each tap ``dilation`` apart); an output cell is the sum of
every (input value x filter tap) that lands on it. Seen from the cell, input row i and tap ky
land on row y when ``s * i - padding + dilation * ky == y``.
"""

from __future__ import annotations

import numpy as np

from ..functional.upsampling import taps
from ..trace import Layer, Trace
from .locate import number, of_input


def _landing(out_index, size, kernel, stride, padding, dilation):
    """Pairs (input index i, tap k) with ``stride * i - padding + dilation * k == out_index``."""
    pairs = []
    for k in range(kernel):
        start = out_index + padding - dilation * k
        if start % stride == 0 and 0 <= start // stride < size:
            pairs.append((start // stride, k))
    return pairs


def transposed(t: Trace, layer: Layer, pos: tuple, top: int = 10) -> dict:
    """Every input value whose filter tap lands on output ``(channel, y, x)``, times that tap,
    summed, plus bias; the ``top`` largest products by size are listed, ``rest`` sums the others."""
    m, (n, out_c, y, x) = layer.module, pos
    per_group_out = m.out_channels // m.groups
    group, c_local = divmod(out_c, per_group_out)
    per_group_in = m.in_channels // m.groups
    h, w = layer.input_shape[2:]
    rows = _landing(y, h, m.kernel_size[0], m.stride[0], m.padding[0], m.dilation[0])
    cols = _landing(x, w, m.kernel_size[1], m.stride[1], m.padding[1], m.dilation[1])
    terms = []
    for c in range(group * per_group_in, (group + 1) * per_group_in):
        for i, ky in rows:
            for j, kx in cols:
                value, weight = float(layer.input.data[n, c, i, j]), float(m.weight.data[c, c_local, ky, kx])
                terms.append({"source": [c, i, j], "tap": [ky, kx], "input": value, "weight": weight,
                              "product": value * weight})
    products = np.array([term["product"] for term in terms])
    shown = np.argsort(-np.abs(products), kind="stable")[:top] if terms else np.zeros(0, np.int64)
    total, bias = float(products.sum()), 0.0 if m.bias is None else float(m.bias.data[out_c])
    rest = float(np.delete(products, shown).sum()) if terms else 0.0
    text = (f"{len(terms)} input values of {of_input(t, layer)} land on this cell ({len(rows)} row and {len(cols)} "
            f"column positions on each of {per_group_in} channels), each times the filter tap it lands with; "
            f"their products add up to {number(total)}"
            f"{f' plus bias {number(bias)}' if m.bias is not None else ', no bias'} = "
            f"{number(float(layer.values[pos]))}.")
    return {"filter": out_c, "group": group, "terms": [terms[k] for k in shown], "terms_count": len(terms),
            "sum": total, "rest": rest, "bias": bias, "text": text}


def upsample(t: Trace, layer: Layer, pos: tuple) -> dict:
    """Nearest: the one input value the cell copies. Bilinear: the 4 nearest input values
    (fewer at an edge), each with its weight, summed."""
    m, (n, c, y, x) = layer.module, pos
    (h, w), (out_h, out_w) = layer.input_shape[2:], layer.output_shape[2:]
    factors = (None, None) if m.scale_factor is None else \
        (m.scale_factor if isinstance(m.scale_factor, tuple) else (m.scale_factor,) * 2)
    dtype = layer.input.data.dtype
    along = [taps(size, out, f, m.mode, bool(m.align_corners), dtype)
             for size, out, f in zip((h, w), (out_h, out_w), factors)]
    reads = []
    for (ry, wy) in _axis(along[0], y):
        for (rx, wx) in _axis(along[1], x):
            value = float(layer.input.data[n, c, ry, rx])
            reads.append({"source": [c, ry, rx], "input": value, "weight": wy * wx, "product": value * wy * wx})
    merged = {}
    for read in reads:  # at an edge both taps of an axis are the same position: one read, weights added
        key = tuple(read["source"])
        if key in merged:
            merged[key]["weight"] += read["weight"]
            merged[key]["product"] += read["product"]
        else:
            merged[key] = dict(read)
    reads = [r for r in merged.values() if r["weight"] != 0]
    total = float(sum(r["product"] for r in reads))
    how = "copied" if m.mode == "nearest" else "blended"
    text = (f"{m.mode.capitalize()} upsampling {how} {len(reads)} value{'s' if len(reads) != 1 else ''} of "
            f"{of_input(t, layer)} into this cell (weights adding up to 1): {number(float(layer.values[pos]))}.")
    return {"mode": m.mode, "align_corners": m.align_corners, "terms": reads, "sum": total, "text": text}


def _axis(axis_taps, o):
    """[(input index, weight)] that output ``o`` reads along one axis."""
    if axis_taps.far is None:
        return [(int(axis_taps.near[o]), 1.0)]
    weight = float(axis_taps.weight[o])
    return [(int(axis_taps.near[o]), 1.0 - weight), (int(axis_taps.far[o]), weight)]
