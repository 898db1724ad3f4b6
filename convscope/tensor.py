"""Tensor: an ndarray that remembers how it was made, so gradients can flow back.

Every differentiable operation creates its result with :meth:`Tensor.from_op`, passing
the input tensors, a ``backward`` function written right under the forward math, and the
op's name (kept as ``.op``, for drawing and exporting graphs). ``backward(grad_out)``
returns one gradient per input (``None`` where an input needs none). The engine in
:meth:`Tensor.backward` alone visits the graph in reverse topological order, undoes
broadcasting and accumulates gradients: into ``.grad`` of leaf tensors, and of any other
tensor that asked with :meth:`Tensor.retain_grad`.

>>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
array([[2., 4.],
       [6., 8.]], dtype=float32)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .habits import Size, TorchHabits


class _GradMode(threading.local):
    """Whether operations record the graph, per thread (as in PyTorch): a web request
    tracing under ``no_grad`` must not switch it off for a training thread."""

    enabled = True


_GRAD_MODE = _GradMode()
_FLOAT_TYPES = (np.float32, np.float64)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this context, operations record no graph (inference, optimizer updates)."""
    previous = _GRAD_MODE.enabled
    _GRAD_MODE.enabled = False
    try:
        yield
    finally:
        _GRAD_MODE.enabled = previous


def is_grad_enabled() -> bool:
    return _GRAD_MODE.enabled


def _as_array(data, dtype):
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None:  # as torch.tensor: float ndarrays keep their dtype, the rest is float32
        keep = isinstance(data, np.ndarray) and data.dtype in _FLOAT_TYPES
        dtype = data.dtype if keep else np.float32
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_TYPES:
        raise TypeError(f"Tensor dtype must be float32 or float64, got {dtype}")
    return np.asarray(data).astype(dtype, copy=False)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the gradient of NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _axis_order(a):
    """Axes of ``a`` from outermost to innermost in memory (length-1 axes left out)."""
    return sorted((i for i, n in enumerate(a.shape) if n > 1), key=lambda i: -a.strides[i])


def same_layout(grad: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``grad`` stored with the axis order of ``data``: a copy only where the two differ.

    Convolutions store feature maps batch-last (see :mod:`convscope.windows`) while, say,
    the gradient through a Flatten comes back stored NCHW; a NumPy operation mixing the two
    runs ~10x slower, so each gradient takes the layout of the data it belongs to.
    """
    if grad.ndim < 3 or 0 in grad.strides or _axis_order(grad) == _axis_order(data):
        return grad
    out = np.empty_like(data, dtype=grad.dtype)  # the axis order of data
    out[...] = grad
    return out


class Tensor(TorchHabits):
    """An n-dimensional float array (float32 by default, float64 allowed) with autograd.

    Args:
        data: array-like. A float32 or float64 ndarray keeps its dtype (as ``torch.tensor``);
            lists, numbers and integer or boolean arrays become float32.
        requires_grad (bool, default False): collect ``.grad`` for this tensor.
        dtype: optional ``np.float32`` or ``np.float64`` to convert to.
    """

    __array_priority__ = 1000  # make ndarray <op> Tensor call Tensor's reflected op

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: DTypeLike | None = None) -> None:
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.op = None
        self._parents = ()
        self._backward = None
        self._retains_grad = False

    @classmethod
    def from_op(cls, data: np.ndarray, parents: tuple[Tensor, ...],
                backward: Callable[[np.ndarray], tuple[np.ndarray | None, ...]], op: str | None = None) -> Tensor:
        """Result of the operation named ``op`` (e.g. "conv2d"; every op of convscope names
        itself): tracked when grad mode is on and any parent needs grad."""
        out = cls.__new__(cls)
        out.data, out.grad, out.requires_grad, out.op = np.asarray(data), None, False, op
        out._parents, out._backward, out._retains_grad = (), None, False
        if _GRAD_MODE.enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = parents
            out._backward = backward
        return out

    # ----- plain properties -------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: Size(self.data.size, self.data.shape))  # x.size and x.size()
    T = property(lambda self: self.transpose())

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def item(self) -> float:
        return self.data.item()

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward()`` (as PyTorch)."""
        self._retains_grad = True
        return self

    def detach(self) -> Tensor:
        """Same data, cut from the graph."""
        return Tensor(self.data, dtype=self.dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}{grad})"

    # ----- the engine ----------------------------------------------------------------
    def backward(self, grad: ArrayLike | None = None) -> None:
        """Backpropagate from this tensor; leaf tensors accumulate into ``.grad``."""
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a scalar, got shape {self.shape}")
            grad = np.ones_like(self.data)
        grads = {id(self): np.asarray(grad, dtype=self.dtype)}
        for node in reversed(self._topological_order()):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None or node._retains_grad:
                node.grad = g.copy() if node.grad is None else node.grad + g
                if node._backward is None:  # a leaf
                    continue
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                pg = same_layout(unbroadcast(pg, parent.shape), parent.data)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg

    def _topological_order(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if p.requires_grad)
        return order

    # ----- arithmetic (broadcasting; the engine undoes it) ----------------------------
    def __add__(self, other: Tensor | ArrayLike) -> Tensor:
        other = _lift(other, self.dtype)
        return Tensor.from_op(self.data + other.data, (self, other), lambda g: (g, g), "add")

    def __mul__(self, other: Tensor | ArrayLike) -> Tensor:
        other = _lift(other, self.dtype)
        a, b = self.data, other.data
        return Tensor.from_op(a * b, (self, other), lambda g: (g * b, g * a), "mul")

    def __truediv__(self, other: Tensor | ArrayLike) -> Tensor:
        other = _lift(other, self.dtype)
        a, b = self.data, other.data
        return Tensor.from_op(a / b, (self, other), lambda g: (g / b, -g * a / (b * b)), "div")

    def __neg__(self) -> Tensor:
        return Tensor.from_op(-self.data, (self,), lambda g: (-g,), "neg")

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("only a Python number is supported as an exponent")
        a = self.data
        out = a ** exponent
        return Tensor.from_op(out, (self,), lambda g: (g * exponent * a ** (exponent - 1),), "pow")

    def __sub__(self, other: Tensor | ArrayLike) -> Tensor:
        return self + (-_lift(other, self.dtype))

    def __radd__(self, other: Tensor | ArrayLike) -> Tensor:
        return self + other

    def __rmul__(self, other: Tensor | ArrayLike) -> Tensor:
        return self * other

    def __rsub__(self, other: Tensor | ArrayLike) -> Tensor:
        return _lift(other, self.dtype) - self

    def __rtruediv__(self, other: Tensor | ArrayLike) -> Tensor:
        return _lift(other, self.dtype) / self

    def __matmul__(self, other: Tensor | ArrayLike) -> Tensor:
        other = _lift(other, self.dtype)
        a, b = self.data, other.data

        def backward(g):
            ga = g @ np.swapaxes(b, -1, -2) if b.ndim > 1 else np.multiply.outer(g, b)
            gb = np.swapaxes(a, -1, -2) @ g if a.ndim > 1 else np.multiply.outer(a, g)
            return ga, gb

        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs two arrays of at least 2 dims, got {a.shape} @ {b.shape}")
        return Tensor.from_op(a @ b, (self, other), backward, "matmul")

    # ----- elementwise functions ------------------------------------------------------
    def exp(self) -> Tensor:
        out = np.exp(self.data)
        return Tensor.from_op(out, (self,), lambda g: (g * out,), "exp")

    def log(self) -> Tensor:
        a = self.data
        return Tensor.from_op(np.log(a), (self,), lambda g: (g / a,), "log")

    def abs(self) -> Tensor:
        a = self.data
        return Tensor.from_op(np.abs(a), (self,), lambda g: (g * np.sign(a),), "abs")

    def sqrt(self) -> Tensor:
        return self ** 0.5

    # ----- reductions ----------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False, *,
            dim: int | tuple[int, ...] | None = None, keepdim: bool | None = None) -> Tensor:
        """Sum over ``axis`` (NumPy names) or ``dim`` / ``keepdim`` (PyTorch names)."""
        axis, keepdims = _axes(axis, keepdims, dim, keepdim)
        shape = self.shape

        def backward(g):
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape),)

        return Tensor.from_op(np.sum(self.data, axis=axis, keepdims=keepdims), (self,), backward, "sum")

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False, *,
             dim: int | tuple[int, ...] | None = None, keepdim: bool | None = None) -> Tensor:
        axis, keepdims = _axes(axis, keepdims, dim, keepdim)
        axes = range(self.ndim) if axis is None else np.atleast_1d(axis)
        count = int(np.prod([self.shape[i] for i in axes]))
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False, *,
            dim: int | None = None, keepdim: bool | None = None) -> Tensor | ValuesIndices:
        """Maximum; the gradient goes to the first maximal element, as in PyTorch.

        With PyTorch's ``dim=`` the result is ``(values, indices)``, as ``torch.max(x, dim)``
        (it also behaves as the values tensor, as it did before: ``x.max(dim=1).sum()``);
        with NumPy's ``axis=`` (or no axis) it is the values tensor.
        """
        if isinstance(dim, (int, np.integer)):
            values = self.max(axis=int(dim), keepdims=bool(keepdim))
            values.__class__ = ValuesIndices  # the same tensor, that also unpacks as (values, indices)
            values.indices = self.argmax(int(dim), keepdim=bool(keepdim))
            return values
        axis, keepdims = _axes(axis, keepdims, dim, keepdim)
        a = self.data
        index = np.argmax(a, axis=axis, keepdims=True) if axis is not None else np.argmax(a)
        out = np.max(a, axis=axis, keepdims=keepdims)

        def backward(g):
            full = np.zeros_like(a)
            if axis is None:
                full.flat[index] = np.reshape(g, ())
            else:
                g = g if keepdims else np.expand_dims(g, axis)
                np.put_along_axis(full, index, g, axis=axis)
            return (full,)

        return Tensor.from_op(out, (self,), backward, "max")

    # ----- shape ---------------------------------------------------------------------
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        old = self.shape
        return Tensor.from_op(self.data.reshape(shape), (self,), lambda g: (g.reshape(old),), "reshape")

    def transpose(self, *axes: int | tuple[int, ...]) -> Tensor:
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = axes or tuple(reversed(range(self.ndim)))
        inverse = np.argsort(axes)
        return Tensor.from_op(self.data.transpose(axes), (self,), lambda g: (g.transpose(inverse),), "transpose")

    def __getitem__(self, index: object) -> Tensor:
        if isinstance(index, Tensor):  # a Tensor holds floats: use it as integer positions
            index = index.data.astype(np.intp)
        a = self.data

        def backward(g):
            full = np.zeros_like(a)
            np.add.at(full, index, g)
            return (full,)

        return Tensor.from_op(a[index], (self,), backward, "getitem")

    def astype(self, dtype: DTypeLike) -> Tensor:
        old = self.dtype
        return Tensor.from_op(self.data.astype(dtype), (self,), lambda g: (g.astype(old),), "astype")


class ValuesIndices(Tensor):
    """``x.max(dim=d)``: the maxima along ``d``, a Tensor, which also unpacks as
    ``values, indices = x.max(dim=d)`` like ``torch.return_types.max`` (``.values`` and
    ``.indices`` too), so ``x.max(dim=1).sum()`` keeps working as it did before."""

    @property
    def values(self) -> Tensor:
        return self

    def __iter__(self):
        return iter((self, self.indices))


def _axes(axis, keepdims, dim, keepdim):
    """Accept PyTorch's ``dim``/``keepdim`` as well as NumPy's ``axis``/``keepdims``."""
    axis = dim if dim is not None else axis
    axis = tuple(axis) if isinstance(axis, list) else axis
    return axis, keepdims if keepdim is None else keepdim


def _lift(value, dtype):
    """Turn a number or array into a constant Tensor of ``dtype`` (Tensors pass through)."""
    if isinstance(value, Tensor):
        return value
    return Tensor(value, dtype=dtype)


def tensor(data: ArrayLike, requires_grad: bool = False, dtype: DTypeLike | None = None) -> Tensor:
    """Shorthand for ``Tensor(data, requires_grad, dtype)``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


class ShapeError(ValueError):
    """A tensor of the wrong shape reached an op; modules prefix the layer that got it."""


class DTypeError(TypeError):
    """A tensor of the wrong dtype reached an op; modules prefix the layer that got it."""
