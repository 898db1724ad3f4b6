"""Module: a layer or a network; holds parameters, buffers and sub-modules by name."""

from collections import OrderedDict

import numpy as np

from ..tensor import DTypeError, ShapeError, Tensor


class Parameter(Tensor):
    """A tensor that a module learns: ``requires_grad`` is on and optimizers update it."""

    def __init__(self, data, dtype=np.float32):
        super().__init__(data, requires_grad=True, dtype=dtype)


class Module:
    """Base class of every layer and model (PyTorch's ``nn.Module`` habits).

    Assigning a :class:`Parameter` or a :class:`Module` attribute registers it, so
    ``named_parameters()`` yields dotted names such as ``"features.0.weight"``.
    Subclasses implement ``forward`` and, to be saved in model files, ``config()``
    (the constructor arguments as JSON-friendly values).
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def add_module(self, name, module):
        """Register a sub-module under ``name`` (same as assigning an attribute)."""
        if not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} is a {type(module).__name__}, not a Module")
        setattr(self, name, module)

    def register_parameter(self, name, param):
        """Register a :class:`Parameter` under ``name`` (same as assigning an attribute)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} is a {type(param).__name__}, not a Parameter")
        setattr(self, name, param)

    def register_buffer(self, name, array):
        """A saved, non-learned array (e.g. BatchNorm running statistics)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def __call__(self, *args, **kwargs):
        try:
            return self.forward(*args, **kwargs)
        except (ShapeError, DTypeError) as error:
            if not getattr(error, "located", False):
                error.args = (f"{self!r}: {error.args[0]}",)
                error.located = True
            raise

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ----- walking the tree --------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_children(self):
        return list(self._modules.items())

    def children(self):
        return list(self._modules.values())

    def named_parameters(self):
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name in module._buffers:
                yield (f"{prefix}.{name}" if prefix else name), module, name

    # ----- state ---------------------------------------------------------------------
    def state_dict(self):
        """Every parameter and buffer as an ndarray, by dotted name."""
        state = OrderedDict((name, p.data) for name, p in self.named_parameters())
        for full, module, name in self.named_buffers():
            state[full] = module._buffers[name]
        return state

    def load_state_dict(self, state, strict=True):
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

    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def apply(self, fn):
        """Call ``fn(module)`` on every module, children first (e.g. custom initialisation)."""
        for child in self._modules.values():
            child.apply(fn)
        fn(self)
        return self

    def config(self):
        """Constructor arguments needed to rebuild this module (override in subclasses)."""
        return {}

    # ----- printing --------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        return head + "\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Layers applied one after another: ``Sequential(conv, relu, pool)(x)``.

    Children are named ``"0"``, ``"1"``, ... and can be indexed: ``model[0]``.
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: argument {i} is {type(layer).__name__}, not a Module")
            setattr(self, str(i), layer)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, index):
        layers = list(self._modules.values())
        return Sequential(*layers[index]) if isinstance(index, slice) else layers[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
