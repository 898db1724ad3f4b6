"""The names PyTorch users reach for by habit, on convscope's Tensor.

``view``, ``permute``, ``unsqueeze``, ``squeeze``, ``clone``, ``float``, ``numel``, ``argmax``,
comparisons and ``x.size()`` are compositions of the Tensor's own ops (their gradients come
from those ops) or results outside the graph (indices and comparisons carry no gradient,
as in PyTorch). :class:`~convscope.tensor.Tensor` inherits them from :class:`TorchHabits`.

>>> from convscope import Tensor
>>> x = Tensor([[1.0, 5.0, 2.0]])
>>> x.unsqueeze(0).shape, x.argmax(dim=1).data, (x > 1.5).float().sum().item()
((1, 1, 3), array([1]), 2.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # for the annotations only: tensor.py imports this module
    from .tensor import Tensor


class TorchHabits:
    """Methods under PyTorch's names; see the module docstring."""

    def view(self, *shape: int | tuple[int, ...]) -> Tensor:
        """``reshape`` (NumPy reshapes without copying when it can, as ``view`` does)."""
        return self.reshape(*shape)

    def permute(self, *dims: int | tuple[int, ...]) -> Tensor:
        """``transpose`` to the axis order ``dims``."""
        return self.transpose(*dims)

    def unsqueeze(self, dim: int) -> Tensor:
        """A new axis of length 1 at ``dim``: (3, 4).unsqueeze(0) -> (1, 3, 4)."""
        return self.reshape(np.expand_dims(self.data, dim).shape)

    def squeeze(self, dim: int | None = None) -> Tensor:
        """Drop axes of length 1 (only ``dim``, if given and of length 1)."""
        if dim is not None and self.shape[dim] != 1:
            return self
        return self.reshape(np.squeeze(self.data, dim).shape)

    def clone(self) -> Tensor:
        """A copy of the data that gradients still flow through."""
        return type(self).from_op(self.data.copy(), (self,), lambda g: (g,), "clone")

    def float(self) -> Tensor:
        """As float32 (integer or boolean results become numbers again)."""
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def numel(self) -> int:
        return self.data.size

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the largest value (over all values, or along ``dim``): an integer tensor
        that carries no gradient, like the results of comparisons."""
        index = np.argmax(self.data, axis=dim, keepdims=keepdim) if dim is not None else np.argmax(self.data)
        return _constant(type(self), np.asarray(index, dtype=np.int64))

    def _compare(self, other, ufunc):
        """Elementwise comparison; a Python number is taken in this tensor's dtype, as PyTorch
        does (so ``x == 0.2`` finds the float32 0.2s of a float32 tensor)."""
        if isinstance(other, TorchHabits):  # a Tensor
            other = other.data
        elif isinstance(other, (int, float)) and self.data.dtype.kind == "f":
            other = self.data.dtype.type(other)
        return _constant(type(self), ufunc(self.data, other))

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    __hash__ = object.__hash__  # by identity, as PyTorch: == is elementwise

    def __bool__(self) -> bool:
        """The truth of a one-value tensor; more values are ambiguous (as NumPy and PyTorch)."""
        return bool(self.data.item()) if self.data.size == 1 else bool(self.data)  # raises if ambiguous

    def __float__(self) -> float:
        return float(self.data.item())

    def __int__(self) -> int:
        return int(self.data.item())


class Size(int):
    """``x.size``: the number of values, as NumPy's ``a.size``; called, the shape or one axis's
    length, as PyTorch's ``x.size()`` and ``x.size(0)``.

    >>> x = Tensor(np.zeros((2, 3)))
    >>> x.size, x.size(), x.size(1)
    (6, (2, 3), 3)
    """

    def __new__(cls, count: int, shape: tuple[int, ...]) -> Size:
        size = super().__new__(cls, count)
        size.shape = tuple(shape)
        return size

    def __call__(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.shape if dim is None else self.shape[dim]


def _constant(cls, data):
    """A ``cls`` tensor of ``data`` of any dtype (integers, booleans), outside the graph."""
    out = cls.__new__(cls)
    out.data, out.grad, out.requires_grad, out.op = np.asarray(data), None, False, None
    out._parents, out._backward, out._retains_grad = (), None, False
    return out
