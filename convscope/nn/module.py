"""Module: a layer or a network; holds parameters, buffers and sub-modules by name."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..tensor import DTypeError, ShapeError, Tensor
from ..windows import Window, conv_window

LAYERS = {}  # every Module subclass by its file name (see Module.file_name): what model files may name
ROLES = ("conv", "pool", "adaptive_pool", "activation", "normalization", "flatten", "linear", "dropout", "loss",
         "conv_transpose", "upsample")


_SIZE_LIMIT = contextvars.ContextVar("size_limit", default=None)  # [values, arrays] still allowed


@contextlib.contextmanager
def size_limit(values: int, arrays: int) -> Iterator[None]:
    """Layers built inside may create at most ``values`` parameter and buffer values in
    ``arrays`` arrays in all; one that would go past is refused before it allocates.

    How a model file's architecture is bounded by the weights the file holds, so that a
    header saying ``num_classes=10**9`` is refused instead of building a 10^9-class layer.

    Example:
        >>> from convscope import nn
        >>> with size_limit(100, 2):
        ...     nn.Linear(1000, 10)
        Traceback (most recent call last):
        ...
        ValueError: a layer asks for 10,000 values; at most 100 are left of the size limit
    """
    token = _SIZE_LIMIT.set([values, arrays])
    try:
        yield
    finally:
        _SIZE_LIMIT.reset(token)


def new_array(shape: tuple[int, ...], fill: float = 0.0, dtype: DTypeLike = np.float32) -> np.ndarray:
    """``np.full(shape, fill, dtype)`` for a layer's parameter or buffer, counted against
    :func:`size_limit` (when one is active) before it is allocated."""
    left = _SIZE_LIMIT.get()
    if left is not None:
        count = math.prod(int(n) for n in shape)
        if count > left[0] or left[1] < 1:
            raise ValueError(f"a layer asks for {count:,} values; at most {left[0]:,} are left of the size limit"
                             if count > left[0] else "more arrays than the size limit allows")
        left[0], left[1] = left[0] - count, left[1] - 1
    return np.full(shape, fill, dtype)


class Parameter(Tensor):
    """A tensor that a module learns: ``requires_grad`` is on and optimizers update it."""

    def __init__(self, data: ArrayLike, dtype: DTypeLike = np.float32) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype)


class Module:
    """Base class of every layer and model (PyTorch's ``nn.Module`` habits).

    Assigning a :class:`Parameter` or a :class:`Module` attribute registers it, so
    ``named_parameters()`` yields dotted names such as ``"features.0.weight"``.
    Subclasses implement ``forward``. A layer describes itself with no further code:

    * the arguments it was built with are recorded when it is created, so :meth:`config`
      (what a model file stores to rebuild it) and ``repr`` come from its constructor's
      signature and cannot disagree with it;
    * a spatial layer returns its :class:`~convscope.windows.Window` from :meth:`geometry`
      (receptive fields, output-size arithmetic), and a layer that multiplies weights says
      how much from :meth:`mult_adds`;
    * ``role`` names what kind of step it is, for the texts and pictures that explain it:
      "conv" (a layer with ``weight``, ``bias``, ``in_channels``, ``out_channels``,
      ``groups`` and the window attributes of Conv2d), "conv_transpose" (the same attributes,
      weight (C_in, C_out/groups, kH, kW), plus ``output_padding``), "pool", "adaptive_pool",
      "upsample" (``size``, ``scale_factor``, ``mode``, ``align_corners``), "activation",
      "normalization", "flatten", "linear", "dropout", "loss", or None (explained from the
      first sentence of its docstring, its shapes and its window).

    Class attributes shape the repr: ``repr_positional`` (how many leading arguments are
    shown without their name) and ``repr_always`` (arguments shown even at their default).
    """

    role = None
    container = False  # True: only groups layers (Sequential); traces show what is inside
    repr_positional = 0
    repr_always = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.role is not None and cls.role not in ROLES:
            raise TypeError(f"{cls.__name__}.role is {cls.role!r}; expected None or one of {', '.join(ROLES)}")
        if not cls.__name__.startswith("_"):  # private helpers (e.g. _Pool2d) are not layers to name
            LAYERS[cls.file_name()] = cls

    @classmethod
    def file_name(cls) -> str:
        """How model files name this class: ``Conv2d`` for convscope's own classes, the dotted
        path (``my_project.layers.Swish``) for others."""
        if cls.__module__.split(".")[0] == "convscope":
            return cls.__name__
        return f"{cls.__module__}.{cls.__qualname__}"

    def __new__(cls, *args: Any, **kwargs: Any) -> Module:
        """Record the constructor's arguments, defaults filled in (see :meth:`config`)."""
        module = super().__new__(cls)
        try:
            bound = _signature(cls).bind(None, *args, **kwargs)  # None stands for self
            bound.apply_defaults()
            arguments = dict(list(bound.arguments.items())[1:])
        except TypeError:  # wrong arguments: __init__ itself will say what is wrong
            arguments = {}
        object.__setattr__(module, "_arguments", arguments)
        return module

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def add_module(self, name: str, module: Module) -> None:
        """Register a sub-module under ``name`` (same as assigning an attribute)."""
        if not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} is a {type(module).__name__}, not a Module")
        setattr(self, name, module)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register a :class:`Parameter` under ``name`` (same as assigning an attribute)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} is a {type(param).__name__}, not a Parameter")
        setattr(self, name, param)

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """A saved, non-learned array (e.g. BatchNorm running statistics)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        try:
            return self.forward(*args, **kwargs)
        except (ShapeError, DTypeError) as error:
            if not getattr(error, "located", False):
                error.args = (f"{self!r}: {error.args[0]}",)
                error.located = True
            raise

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ----- walking the tree --------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> list[Module]:
        return [m for _, m in self.named_modules()]

    def named_children(self) -> list[tuple[str, Module]]:
        return list(self._modules.items())

    def children(self) -> list[Module]:
        return list(self._modules.values())

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Module, str]]:
        for prefix, module in self.named_modules():
            for name in module._buffers:
                yield (f"{prefix}.{name}" if prefix else name), module, name

    # ----- state ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer as an ndarray, by dotted name."""
        state = OrderedDict((name, p.data) for name, p in self.named_parameters())
        for full, module, name in self.named_buffers():
            state[full] = module._buffers[name]
        return state

    def load_state_dict(self, state: Mapping[str, ArrayLike], strict: bool = True) -> None:
        """Copy arrays into parameters and buffers; shapes must match exactly."""
        targets = {name: (p, None) for name, p in self.named_parameters()}
        targets.update({full: (m, name) for full, m, name in self.named_buffers()})
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
        for key, (owner, buffer_name) in targets.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            current = owner.data if buffer_name is None else owner._buffers[buffer_name]
            if value.shape != current.shape:
                raise ValueError(f"state_dict[{key!r}] has shape {value.shape}, the model expects {current.shape}")
            current[...] = value

    def train(self, mode: bool = True) -> Module:
        """Training mode (``mode=True``) or eval mode for this module and all inside it."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Eval mode: dropout off, batch norm uses its running statistics."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def apply(self, fn: Callable[[Module], object]) -> Module:
        """Call ``fn(module)`` on every module, children first (e.g. custom initialisation)."""
        for child in self._modules.values():
            child.apply(fn)
        fn(self)
        return self

    # ----- describing itself ------------------------------------------------------------
    def arguments(self) -> dict[str, Any]:
        """The constructor's arguments by name, as they stand now: the attribute of the same
        name where the layer keeps a plain one (numbers, strings, tuples of them: so a change
        after construction, e.g. ``bn.momentum = 0.2``, counts), else the argument it was
        built with (``bias=True``, whose attribute is a Parameter). ``rng`` is left out."""
        current = {}
        for name, recorded in self._arguments.items():
            stored = self.__dict__.get(name)
            if name != "rng":
                current[name] = stored if _is_plain(stored) else recorded
        return current

    def config(self) -> dict[str, Any]:
        """:meth:`arguments` as JSON-friendly values (tuples become lists), what a model file
        stores: ``type(self)(**config(), rng=rng)`` rebuilds the layer."""
        parameters = _signature(type(self)).parameters.values()
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            raise TypeError(f"{type(self).__name__}'s constructor takes *args or **kwargs, so its "
                            "arguments cannot be recorded; save its children instead")
        return {name: _plain(value) for name, value in self.arguments().items()}

    def geometry(self, in_hw: tuple[int, int]) -> Window | None:
        """The :class:`~convscope.windows.Window` a spatial layer slides over an (H, W) input;
        None for layers that do not slide a window.

        A leaf layer that keeps PyTorch's window attributes (``kernel_size``, and ``stride``,
        ``padding``, ``dilation``, ``ceil_mode`` where it has them; a missing or None stride
        means the kernel size, as in pooling) gets its window from them, as they stand now:
        Conv2d and the pooling layers need no more, nor does a new layer written in PyTorch's
        habits. Attributes that make no window (``padding="reflect"``) give None."""
        if self._modules or getattr(self, "kernel_size", None) is None:
            return None
        stride = getattr(self, "stride", None)
        try:
            window = conv_window(self.kernel_size, self.kernel_size if stride is None else stride,
                                 getattr(self, "padding", 0), getattr(self, "dilation", 1))
        except (TypeError, ValueError):
            return None
        return window._replace(ceil_mode=bool(getattr(self, "ceil_mode", False)))

    def mult_adds(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        """Multiply-adds per image of this module's own work (0 unless it has weights to apply)."""
        return 0

    # ----- printing --------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The arguments inside ``Conv2d(...)``: non-default ones, plus ``repr_always``, each
        shown as the layer stores it (``kernel_size=(5, 5)`` for ``kernel_size=5``)."""
        parameters = list(_signature(type(self)).parameters.values())[1:]
        defaults = {p.name: p.default for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        parts = []
        for i, (name, value) in enumerate(self.arguments().items()):
            if name not in defaults or (name not in self.repr_always and _is_default(value, defaults[name])):
                continue
            text = _repr_value(value)
            parts.append(text if i < self.repr_positional else f"{name}={text}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        return head + "\n" + "\n".join(lines) + "\n)"


@functools.lru_cache(maxsize=None)
def _signature(cls):
    return inspect.signature(cls.__init__)


def _same(value, default):
    if isinstance(value, (tuple, list)) and isinstance(default, (tuple, list)):
        value, default = tuple(value), tuple(default)
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # e.g. an array argument
        return False


def _is_default(value, default):
    """``value`` is the parameter's default, also in the pair form layers store (0 -> (0, 0))."""
    if default is inspect.Parameter.empty:
        return False
    pair_form = isinstance(default, int) and not isinstance(default, bool)
    return _same(value, default) or (pair_form and _same(value, (default, default)))


def _is_plain(value):
    """Numbers, strings and tuples or lists of them: attribute values that stand for an argument."""
    if isinstance(value, (tuple, list)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, (bool, int, float, str, np.generic))


def _plain(value):
    """A constructor argument as JSON-friendly data: tuples -> lists, NumPy scalars -> numbers."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _repr_value(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@contextlib.contextmanager
def eval_mode(model: Module) -> Iterator[Module]:
    """Put every module in eval mode for the block, then restore each one's own flag.

    >>> layer = Module().train()
    >>> with eval_mode(layer):
    ...     layer.training
    False
    >>> layer.training
    True
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            object.__setattr__(module, "training", flag)


class Sequential(Module):
    """Layers applied one after another: ``Sequential(conv, relu, pool)(x)``.

    Children are named ``"0"``, ``"1"``, ... and can be indexed: ``model[0]``. A plain
    container: summaries and pictures show its layers, not it (``container = True``).
    """

    container = True

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: argument {i} is {type(layer).__name__}, not a Module")
            setattr(self, str(i), layer)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        layers = list(self._modules.values())
        return Sequential(*layers[index]) if isinstance(index, slice) else layers[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
