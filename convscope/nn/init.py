"""Weight initialisation: draw starting weights so signals neither explode nor vanish.

Each function fills a tensor in place from the given ``numpy.random.Generator`` and
returns it. Fans of a conv weight (C_out, C_in, kH, kW): ``fan_in = C_in*kH*kW``,
``fan_out = C_out*kH*kW``.

Layers take ``rng=``; one built without it draws from convscope's own generator
(:func:`generator`), seeded with 0 when convscope is imported, so a script that builds the
same layers in the same order gets the same weights every run. ``manual_seed(s)`` reseeds
it. Nothing in convscope draws from NumPy's global ``np.random`` state.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor

_DEFAULT = [np.random.default_rng(0)]


def generator(rng: np.random.Generator | None = None) -> np.random.Generator:
    """``rng`` itself, or convscope's default generator when ``rng`` is None."""
    if rng is None:
        return _DEFAULT[0]
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def manual_seed(seed: int) -> None:
    """Restart convscope's default generator (used by layers built without ``rng=``) at ``seed``."""
    _DEFAULT[0] = np.random.default_rng(seed)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape: (out, in) or (out, in, kH, kW)."""
    if len(shape) < 2:
        raise ValueError(f"fans need a weight of at least 2 dims, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _gain(nonlinearity, a=0.0):
    gains = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0),
             "leaky_relu": math.sqrt(2.0 / (1 + a * a))}
    if nonlinearity not in gains:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected one of {sorted(gains)}")
    return gains[nonlinearity]


def _fill(tensor, values):
    tensor.data[...] = values
    return tensor


def kaiming_uniform_(tensor: Tensor, rng: np.random.Generator, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "relu") -> Tensor:
    """He et al. 2015: U(-b, b) with ``b = gain * sqrt(3 / fan)``, gain sqrt(2) for ReLU."""
    fan = fans(tensor.shape)[0 if mode == "fan_in" else 1]
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return _fill(tensor, rng.uniform(-bound, bound, tensor.shape))


def kaiming_normal_(tensor: Tensor, rng: np.random.Generator, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "relu") -> Tensor:
    """He et al. 2015: N(0, std^2) with ``std = gain / sqrt(fan)``."""
    fan = fans(tensor.shape)[0 if mode == "fan_in" else 1]
    return _fill(tensor, rng.normal(0.0, _gain(nonlinearity, a) / math.sqrt(fan), tensor.shape))


def xavier_uniform_(tensor: Tensor, rng: np.random.Generator, gain: float = 1.0) -> Tensor:
    """Glorot & Bengio 2010: U(-b, b) with ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, rng.uniform(-bound, bound, tensor.shape))


def xavier_normal_(tensor: Tensor, rng: np.random.Generator, gain: float = 1.0) -> Tensor:
    """Glorot & Bengio 2010: N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(tensor.shape)
    return _fill(tensor, rng.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), tensor.shape))


def uniform_(tensor: Tensor, rng: np.random.Generator, low: float = 0.0, high: float = 1.0) -> Tensor:
    return _fill(tensor, rng.uniform(low, high, tensor.shape))


def normal_(tensor: Tensor, rng: np.random.Generator, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(tensor, rng.normal(mean, std, tensor.shape))


def default_uniform_(weight: Tensor, bias: Tensor | None, rng: np.random.Generator) -> Tensor:
    """PyTorch's default for Conv2d and Linear: weight and bias from U(-b, b), b = 1/sqrt(fan_in).

    (``kaiming_uniform_`` with ``a = sqrt(5)`` for the weight.) Smaller than He init; with
    Adam it trains LeNet-5 to higher accuracy on small data (measured: see README).
    """
    kaiming_uniform_(weight, rng, a=math.sqrt(5), nonlinearity="leaky_relu")
    if bias is not None:
        bound = 1.0 / math.sqrt(fans(weight.shape)[0])
        _fill(bias, rng.uniform(-bound, bound, bias.shape))
    return weight


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1.0)
