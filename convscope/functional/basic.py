"""Fully connected layers, reshaping, padding, concatenation and dropout."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..tensor import ShapeError, Tensor


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``: every output is a weighted vote of every input.

    Args:
        x (Tensor): (N, in_features) (any leading dims).
        weight (Tensor): (out_features, in_features).
        bias (Tensor or None): (out_features,).

    >>> linear(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 3)))).shape
    (2, 4)
    """
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"expected input with {weight.shape[1]} features in its last axis, got shape {x.shape}")
    out = x @ weight.T
    return out if bias is None else out + bias


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C*H*W)."""
    shape = x.shape
    end = end_dim % len(shape)
    merged = int(np.prod(shape[start_dim:end + 1]))
    return x.reshape(shape[:start_dim] + (merged,) + shape[end + 1:])


def pad(x: Tensor, pad: tuple[int, ...], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Constant padding as ``torch.nn.functional.pad``: ``pad`` lists (before, after) pairs
    starting from the LAST axis, e.g. ``(left, right, top, bottom)`` for images."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected pairs for at most {x.ndim} axes, got {pad!r}")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    if any(b < 0 or a < 0 for b, a in widths):
        raise ValueError(f"pad: negative padding is not supported, got {pad!r}")
    out = np.pad(x.data, widths, constant_values=value)
    crop = tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape))
    return Tensor.from_op(out, (x,), lambda g: (g[crop],), "pad")


def cat(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along ``dim``; the gradient is split back into the pieces."""
    tensors = tuple(tensors)
    out = np.concatenate([t.data for t in tensors], axis=dim)
    bounds = np.cumsum([t.shape[dim] for t in tensors])[:-1]
    return Tensor.from_op(out, tensors, lambda g: tuple(np.split(g, bounds, axis=dim)), "cat")


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    Identity when ``training`` is False or ``p == 0``. ``rng`` (numpy Generator) draws the mask.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    if rng is None:
        raise ValueError("dropout: training mode needs a numpy.random.Generator as rng")
    keep = (_uniform_like(x.data, rng) >= p).astype(x.dtype) * (1.0 / (1 - p))
    return x * keep


def _uniform_like(a, rng):
    """U[0, 1) float32 numbers stored in memory like ``a`` (feature maps are stored batch-last,
    and elementwise products of arrays with different layouts run about 13x slower)."""
    outer_first = np.argsort([-s for s in a.strides], kind="stable")
    draw = rng.random(tuple(a.shape[i] for i in outer_first), dtype=np.float32)
    return draw.transpose(np.argsort(outer_first))
