"""Weights trained in PyTorch, in a convscope model: a ``state_dict`` saved with safetensors.

convscope's layers keep PyTorch's names and layouts (``features.0.weight`` of shape
(C_out, C_in/groups, kH, kW), Linear weights (out, in), batch norm's ``running_mean`` and
``running_var``), so a PyTorch model built with the same layers in the same places has the
same state-dict keys and shapes. In PyTorch, save its weights without pickle::

    from safetensors.torch import save_file
    save_file(torch_model.state_dict(), "weights.safetensors")

then :func:`load_torch_weights` (or ``convscope import-torch``) copies them in, by name and
shape. Every key that does not fit is reported at once (missing, unexpected, wrong shape);
batch norm's ``num_batches_tracked`` counters, which convscope does not keep, are skipped.
Inside one Python process ``model.load_state_dict({k: v.numpy() for k, v in
torch_model.state_dict().items() if not k.endswith("num_batches_tracked")})`` also works;
the file route needs neither torch nor pickle on the convscope side.

>>> from convscope.models import lenet5
>>> model = lenet5(rng=np.random.default_rng(0))
>>> state = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
>>> import_torch_state(model, state)   # nothing skipped
[]
>>> del state["0.bias"]
>>> try:
...     import_torch_state(model, {**state, "7.weight": np.zeros((120, 256)), "fc.weight": np.zeros(3)})
... except WeightsMismatch as error:
...     print(error.missing, error.unexpected, error.wrong_shape)
['0.bias'] ['fc.weight'] {'7.weight': ((120, 256), (120, 400))}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import models
from ..io import ModelFileError, read_tensors, save_model
from ..nn import Module

SKIPPED_SUFFIXES = (".num_batches_tracked",)  # PyTorch batch norm's step counter: convscope keeps none


class WeightsMismatch(ModelFileError):
    """A state dict that does not fit the model: ``missing``, ``unexpected`` and ``wrong_shape``
    (name -> (given shape, expected shape)) list every key at fault."""

    def __init__(self, message: str, missing: list[str], unexpected: list[str],
                 wrong_shape: dict[str, tuple[tuple, tuple]]) -> None:
        super().__init__(message)
        self.missing, self.unexpected, self.wrong_shape = missing, unexpected, wrong_shape


def _listed(names, limit=None):
    """Every name (a mismatch report lists them all), or the first ``limit``."""
    limit = len(names) if limit is None else limit
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def mismatches(model: Module, state: Mapping[str, ArrayLike]) -> tuple[list[str], list[str], dict]:
    """``(missing, unexpected, wrong_shape)`` between ``model``'s state dict and ``state``
    (keys ending in :data:`SKIPPED_SUFFIXES` are left out of both)."""
    expected = model.state_dict()
    given = {k: v for k, v in state.items() if not k.endswith(SKIPPED_SUFFIXES)}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = {k: (tuple(np.shape(v)), expected[k].shape) for k, v in given.items()
             if k in expected and tuple(np.shape(v)) != expected[k].shape}
    return missing, unexpected, wrong


def import_torch_state(model: Module, state: Mapping[str, ArrayLike], source: str = "the state dict") -> list[str]:
    """Copy a PyTorch-style ``state`` (name -> array) into ``model``; returns the skipped keys.

    Raises :class:`WeightsMismatch` naming every missing, unexpected and wrongly shaped key
    (nothing is copied then), and ModelFileError for values that are not finite numbers.
    ``source`` names the state dict in messages (a file's path).
    """
    missing, unexpected, wrong = mismatches(model, state)
    if missing or unexpected or wrong:
        parts = ([f"missing {_listed(missing)}"] if missing else []) + (
            [f"unexpected {_listed(unexpected)}"] if unexpected else []) + (
            [f"wrong shape {_listed([f'{k}: {g} given, {e} expected' for k, (g, e) in wrong.items()])}"]
            if wrong else [])
        raise WeightsMismatch(f"{source} does not fit {type(model).__name__}: {'; '.join(parts)}",
                              missing, unexpected, wrong)
    kept = {k: np.asarray(v) for k, v in state.items() if not k.endswith(SKIPPED_SUFFIXES)}
    bad = [k for k, v in kept.items() if v.dtype.kind not in "fiub" or not np.all(np.isfinite(v))]
    if bad:
        raise ModelFileError(f"{source}: {_listed(bad, 3)} hold values that are not finite numbers")
    current = model.state_dict()
    model.load_state_dict({k: v.astype(current[k].dtype) for k, v in kept.items()})
    return [k for k in state if k.endswith(SKIPPED_SUFFIXES)]


def load_torch_weights(model: Module, path: str | os.PathLike) -> list[str]:
    """:func:`import_torch_state` of the safetensors file ``path`` (read with convscope's own
    checked reader, :func:`convscope.io.read_tensors`); returns the skipped keys."""
    arrays, _ = read_tensors(path)
    return import_torch_state(model, arrays, source=str(path))


def import_torch_model(weights: str | os.PathLike, out: str | os.PathLike, model_name: str,
                       input_shape: Sequence[int], num_classes: int | None = None,
                       config: Mapping[str, Any] | None = None, mean: Sequence[float] | None = None,
                       std: Sequence[float] | None = None, dataset: str | None = None) -> dict[str, Any]:
    """Build zoo model ``model_name``, load PyTorch ``weights`` into it and save a full model
    file ``out`` that ``convscope evaluate`` / ``predict`` accept.

    Args:
        input_shape: (C, H, W) the model was trained on; C is its ``in_channels``.
        num_classes: the model's class (or output) count; default the zoo's.
        config: other constructor arguments (``{"width": 16}``).
        mean, std: the per-channel input normalisation used in training (default 0 and 1).
        dataset: the dataset name ``evaluate`` uses by default.
    Returns: ``{"path", "model", "parameters", "skipped"}``.
    """
    if model_name not in models.ZOO:
        raise ValueError(f"unknown model {model_name!r}; the zoo has {', '.join(sorted(models.ZOO))}")
    kind = models.ZOO_TASKS.get(model_name, "classification")
    options = dict(config or {}, in_channels=int(input_shape[0]))
    if num_classes is not None:
        options["num_outputs" if kind == "positions" else "num_classes"] = int(num_classes)
    try:
        model = models.build(model_name, rng=np.random.default_rng(0), **options)
    except TypeError as error:
        raise ValueError(f"{model_name} does not take these arguments {options}: {error}") from None
    skipped = load_torch_weights(model, weights)
    channels = int(input_shape[0])
    task, names = {"kind": kind}, None
    if kind in ("classification", "segmentation"):
        names = [str(k) for k in range(model.num_classes)]
        task = {"kind": kind, "num_classes": model.num_classes} if kind == "segmentation" else task
    save_model(out, model.eval(), class_names=names, input_shape=list(input_shape),
               mean=list(mean) if mean is not None else [0.0] * channels,
               std=list(std) if std is not None else [1.0] * channels, dataset=dataset,
               training={"imported_from": Path(weights).name, "framework": "pytorch"}, task=task)
    return {"path": str(out), "model": model_name, "parameters": int(sum(p.data.size for p in model.parameters())),
            "skipped": skipped}
