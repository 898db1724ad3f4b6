"""Model files and checkpoints in the safetensors format: arrays plus a JSON header, no code.

A model file holds every parameter and buffer, and in its metadata a JSON document
(key ``"convscope"``) with everything needed to rebuild the model::

    {"format": "convscope-model", "format_version": 1,
     "architecture": {"type": "zoo", "name": "lenet5", "config": {...}}   # or a layer list
     "class_names": [...], "input_shape": [C, H, W], "mean": [...], "std": [...],
     "dataset": "digits", "training": {...}, "preprocess": "digit",   # or "resize"
     "task": {"kind": "classification"}}   # or {"kind": "positions", "scale": 64.0, ...},
                                           # {"kind": "segmentation", "num_classes": 11}

A file without ``task`` (written before it was recorded) holds a classifier; one whose ``task``
is a bare kind ("segmentation", as the first segmentation files wrote) is read as that kind.

Loading never executes code from the file: the architecture names classes from a fixed
allow-list (the zoo, and the :class:`~convscope.nn.Module` classes defined by the code
running, ``nn.LAYERS``: convscope's layers by name, others by dotted path), each built by
calling its constructor with the JSON arguments it recorded (``Module.config``).

Known trap: safetensors 0.8.0 writes a non-C-contiguous array (a transposed view, a
strided slice) in memory order and reads it back as different values without any error
(safetensors issue #825). Every array is made contiguous before saving.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import models, nn
from .data.bounded import MissingFileError, open_regular
from .files import write_atomic
from .nn import Module
from .optim import LRScheduler, Optimizer
from .schema import (
    MAX_MODEL_FILE_BYTES,
    ModelFileError,
    check_checkpoint_header,
    check_model_header,
    check_resumable,
    check_version,
    parse_json,
    probe,
    shown,
)

FORMAT_VERSION = 1
RUN_MODEL = "model.safetensors"  # the model file inside a training run folder
MODEL_FORMAT = "convscope-model"
CHECKPOINT_FORMAT = "convscope-checkpoint"


# ----- architecture specs --------------------------------------------------------------
def architecture_of(model: Module) -> dict[str, Any]:
    """JSON-friendly description of ``model`` from which :func:`build_architecture` rebuilds it."""
    for name, cls in models.ZOO.items():
        if type(model) is cls:
            return {"type": "zoo", "name": name, "config": model.config()}
    kind = type(model).file_name()
    if isinstance(model, nn.Sequential) and type(model).__init__ is nn.Sequential.__init__:
        # a Sequential, or a subclass of it built the same way: its layers rebuild it
        return {"type": "Sequential" if type(model) is nn.Sequential else kind,
                "layers": [architecture_of(layer) for layer in model]}
    if nn.LAYERS.get(kind) is not type(model):
        raise ModelFileError(f"cannot describe {type(model).__name__}: its class is not the one registered "
                             f"as {kind!r} (defined twice?)")
    try:
        config = model.config()
        json.dumps(config)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"cannot save {type(model).__name__}: its constructor arguments are not plain "
                             f"JSON values ({error})") from None
    return {"type": kind, "config": config}


def build_architecture(spec: dict[str, Any]) -> Module:
    """Rebuild a model from :func:`architecture_of`'s description (weights left at init)."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ModelFileError(f"architecture entry must be an object with a 'type', got {spec!r:.80}")
    kind, config = spec["type"], spec.get("config", {})
    if not isinstance(config, dict):
        raise ModelFileError(f"architecture config of {kind!r} must be an object")
    try:
        if kind == "zoo":
            return models.build(spec["name"], rng=np.random.default_rng(0), **config)
        if kind == "Sequential":
            return nn.Sequential(*[build_architecture(s) for s in spec["layers"]])
        if isinstance(kind, str) and kind in nn.LAYERS:
            cls = nn.LAYERS[kind]
            if "layers" in spec and issubclass(cls, nn.Sequential) and cls.__init__ is nn.Sequential.__init__:
                return cls(*[build_architecture(s) for s in spec["layers"]])
            takes_rng = "rng" in inspect.signature(cls).parameters
            return cls(**config, **({"rng": np.random.default_rng(0)} if takes_rng else {}))
    except ModelFileError:
        raise
    except Exception as error:  # whatever a layer's constructor raises on these arguments
        raise ModelFileError(f"cannot rebuild {kind!r} from {config}: {type(error).__name__}: {error}") from None
    known = sorted(k for k in nn.LAYERS if "." not in k)
    raise ModelFileError(f"unknown layer type {kind!r} in architecture; known: zoo, {', '.join(known)} "
                         "(or a layer class of your own, defined before loading)")


# ----- raw safetensors with validation ------------------------------------------------
def _contiguous(arrays):
    return {k: np.asarray(v, order="C") for k, v in arrays.items()}  # C order, 0-d kept


def write_safetensors(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], header: dict[str, Any]) -> None:
    """Write ``arrays`` and a JSON ``header`` atomically (temporary file, fsync, then rename)."""
    from safetensors.numpy import save

    write_atomic(path, save(_contiguous(arrays), metadata={"convscope": json.dumps(header)}))


def _read_file(path) -> bytes:
    """The whole file, if it is a regular file of at most MAX_MODEL_FILE_BYTES (checked first)."""
    try:
        f = open_regular(path, "a .safetensors model file")  # a FIFO is refused, not waited on
    except MissingFileError:
        raise ModelFileError(f"{path}: no such file") from None
    except ValueError as error:
        raise ModelFileError(str(error)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_MODEL_FILE_BYTES:
            raise ModelFileError(f"{path}: {size:,} bytes; at most {MAX_MODEL_FILE_BYTES:,} are read "
                                 "from a model file")
        try:
            return f.read(size + 1)
        except OSError as error:  # e.g. EIO from a damaged disk
            raise ModelFileError(f"{path}: cannot be read ({error.strerror or error})") from None


def _tensor_entry(entry) -> bool:
    """A safetensors tensor entry: dtype, shape of non-negative ints, two increasing offsets."""
    return (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list) and len(entry["shape"]) <= 8
            and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**40 for n in entry["shape"])
            and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry["data_offsets"])
            and entry["data_offsets"][0] <= entry["data_offsets"][1])


def _check_header(path, data):
    """Validate the safetensors framing before handing bytes to the library; returns the
    metadata and ``(values, arrays)``: how many values the tensors hold, in how many arrays."""
    if len(data) < 8:
        raise ModelFileError(f"{path}: {len(data)} bytes is too short for a safetensors file "
                             "(needs an 8-byte header length)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ModelFileError(f"{path}: its first 8 bytes give a header of {length:,} bytes, but only "
                             f"{len(data) - 8:,} follow: truncated or not a safetensors file; expected a "
                             ".safetensors model file written by convscope")
    header = parse_json(data[8:8 + length], path)
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: corrupt header: expected a JSON object of tensors, got {shown(header)}")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    bad = next((k for k, v in tensors.items() if not _tensor_entry(v)), None)
    if bad is not None:
        raise ModelFileError(f"{path}: corrupt header: tensor {bad!r} is {shown(tensors[bad])}, expected "
                             "{\"dtype\": ..., \"shape\": [...], \"data_offsets\": [start, end]}")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"{path}: corrupt header: metadata must be an object of strings, got {shown(metadata)}")
    ends = [v["data_offsets"][1] for v in tensors.values()]
    if ends and max(ends) != len(data) - 8 - length:
        raise ModelFileError(f"{path}: tensor data needs {max(ends)} bytes, the file holds {len(data) - 8 - length}; "
                             "truncated or corrupted")
    return metadata, (sum(math.prod(v["shape"]) for v in tensors.values()), len(tensors))


def read_tensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays and raw ``__metadata__`` of any safetensors file (e.g. a PyTorch ``state_dict``
    saved with ``safetensors.torch.save_file``), with the same checks of its size and framing as
    a model file (no convscope header is needed)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    data = _read_file(path)
    metadata, _ = _check_header(path, data)
    try:
        return load(data), metadata
    except KeyError as error:  # a dtype NumPy lacks
        raise ModelFileError(f"{path}: holds {error.args[0]} tensors, which NumPy cannot read; save them as "
                             "float32 (in PyTorch: {k: v.float() for k, v in state_dict.items()})") from None
    except (SafetensorError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: cannot read its tensors ({error})") from None


def read_safetensors(path: str | os.PathLike, expected_format: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read arrays and the convscope header, checking the file at every step: its size, the
    framing, then the header against the schema (:mod:`convscope.schema`), then the arrays."""
    return _read_checked(path, expected_format)[:2]


def _read_checked(path, expected_format):
    """``(arrays, header, (values, arrays_count))`` of a file that passed every check."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    data = _read_file(path)
    metadata, sizes = _check_header(path, data)
    if "convscope" not in metadata:
        raise ModelFileError(f"{path}: a safetensors file without convscope metadata; "
                             "expected a file saved by convscope")
    header = parse_json(metadata["convscope"], path)
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: corrupt header: the convscope metadata must be a JSON object, "
                             f"got {shown(header)}")
    check_version(header, path, expected_format, FORMAT_VERSION)
    (check_model_header if expected_format == MODEL_FORMAT else check_checkpoint_header)(header, path)
    try:
        arrays = load(data)
    except (SafetensorError, ValueError, TypeError) as error:  # e.g. a dtype numpy has no name for
        raise ModelFileError(f"{path}: corrupted file ({error})") from None
    return arrays, header, sizes


# ----- model files ------------------------------------------------------------------
def save_model(path: str | os.PathLike, model: Module, class_names: Sequence[str] | None = None,
               input_shape: Sequence[int] | None = None, mean: ArrayLike | None = None, std: ArrayLike | None = None,
               dataset: str | None = None, training: dict[str, Any] | None = None,
               preprocess: str | None = None, task: dict[str, Any] | None = None) -> None:
    """Save ``model`` with what is needed to rebuild and use it (see module docstring);
    ``preprocess`` ("digit" or "resize") says how ``convscope predict`` prepares an image for it;
    ``task`` (:meth:`convscope.tasks.Task.config`, default classification) what its outputs mean."""
    header = {
        "format": MODEL_FORMAT, "format_version": FORMAT_VERSION,
        "architecture": architecture_of(model),
        "class_names": list(class_names) if class_names is not None else None,
        "input_shape": list(input_shape) if input_shape is not None else None,
        "mean": None if mean is None else [float(m) for m in np.atleast_1d(mean)],
        "std": None if std is None else [float(s) for s in np.atleast_1d(std)],
        "dataset": dataset, "training": training or {}, "preprocess": preprocess,
        "task": dict(task) if task is not None else {"kind": "classification"},
    }
    write_safetensors(path, model.state_dict(), header)


def load_model(path: str | os.PathLike) -> tuple[Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns ``(model, meta)`` in eval mode.

    ``path`` is a model file, or a training run folder holding ``model.safetensors``.
    ``meta`` is the JSON header plus convenience keys ``"model"`` (zoo name or None) and
    ``"config"``.
    """
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, RUN_MODEL)):
        path = os.path.join(path, RUN_MODEL)
    arrays, header, (values, count) = _read_checked(path, MODEL_FORMAT)
    bad = [name for name, array in arrays.items() if not np.all(np.isfinite(array))]
    if bad:
        raise ModelFileError(f"{path}: {', '.join(bad[:3])} hold NaN or infinite values; the file is corrupted "
                             "(or was saved from a diverged run)")
    try:
        with nn.size_limit(values, count):  # a layer larger than the file's weights is refused before it allocates
            model = build_architecture(header.get("architecture"))
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from None
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError, TypeError) as error:
        raise ModelFileError(f"{path}: weights do not fit the architecture: {error}") from None
    model.eval()
    probe(model, header, path)
    arch = header["architecture"]
    meta = dict(header, model=arch.get("name") if arch.get("type") == "zoo" else None,
                config=arch.get("config", {}))
    return model, meta


# ----- training checkpoints -----------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, model: Module, optimizer: Optimizer, scheduler: LRScheduler | None = None,
                    rngs: Mapping[str, np.random.Generator] | None = None,
                    progress: dict[str, Any] | None = None, best: Mapping[str, np.ndarray] | None = None) -> None:
    """Everything needed to resume training exactly, written atomically.

    Args:
        model, optimizer, scheduler: their states are saved (arrays as tensors, the rest as JSON).
        rngs (dict name -> numpy Generator): bit-generator states, so shuffling, augmentation
            and dropout continue the same random streams.
        progress (dict): JSON-friendly loop state (epoch, history, best score...).
        best (dict): the state dict of the best epoch so far (early stopping), if any.
    """
    optim_state = optimizer.state_dict()
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim.{k}": v for k, v in optim_state["state"].items()})
    arrays.update({f"best.{k}": v for k, v in (best or {}).items()})
    header = {
        "format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION,
        "architecture": architecture_of(model),
        "optimizer": {"type": type(optimizer).__name__, "hyper": optim_state["hyper"], "steps": optim_state["steps"]},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rngs": {name: g.bit_generator.state for name, g in (rngs or {}).items()},
        "progress": progress or {},
    }
    write_safetensors(path, arrays, header)


def load_best(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The best epoch's state dict a checkpoint keeps for early stopping (None if it has none)."""
    arrays = read_safetensors(path, CHECKPOINT_FORMAT)[0]
    best = {k[5:]: v for k, v in arrays.items() if k.startswith("best.")}
    return best or None


def checkpoint_progress(path: str | os.PathLike) -> dict[str, Any]:
    """The loop state a checkpoint holds (``epoch``, ``history``...), without restoring it."""
    return read_safetensors(path, CHECKPOINT_FORMAT)[1].get("progress", {})


def load_checkpoint(path: str | os.PathLike, model: Module, optimizer: Optimizer, scheduler: LRScheduler | None = None,
                    rngs: Mapping[str, np.random.Generator] | None = None) -> dict[str, Any]:
    """Restore a :func:`save_checkpoint` file into live objects; returns its ``progress``.

    Everything is checked before anything is restored: the header against the schema, the
    optimizer's type and hyper-parameters against the live one's, every random state by
    setting it on a scratch generator, and every array for NaN or infinite values."""
    arrays, header = read_safetensors(path, CHECKPOINT_FORMAT)
    saved_type = header["optimizer"]["type"]
    if saved_type != type(optimizer).__name__:
        raise ModelFileError(f"{path}: checkpoint has a {saved_type} optimizer, "
                             f"this run uses {type(optimizer).__name__}")
    check_resumable(path, arrays, header, optimizer, rngs)
    try:
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        optimizer.load_state_dict({**header["optimizer"],
                                   "state": {k[6:]: v for k, v in arrays.items() if k.startswith("optim.")}})
    except (KeyError, ValueError) as error:
        raise ModelFileError(f"{path}: checkpoint does not fit this model/optimizer: {error}") from None
    if scheduler is not None and header.get("scheduler"):
        scheduler.load_state_dict(header["scheduler"])
    for name, generator in (rngs or {}).items():
        generator.bit_generator.state = header["rngs"][name]
    return header["progress"]


# ----- one loader for every way of naming a model ---------------------------------------
def model_path(spec: str | os.PathLike) -> Path | None:
    """The model file ``spec`` names: itself, or ``model.safetensors`` in a run folder; None
    when no such path exists (``spec`` may then be a zoo name)."""
    path = Path(spec)
    if path.is_dir():
        if not (path / RUN_MODEL).is_file():
            raise ModelFileError(f"folder {spec} holds no {RUN_MODEL} (is it a training run folder?)")
        return path / RUN_MODEL
    return path if path.exists() else None


def zoo_model(name: str) -> tuple[Module, dict[str, Any]]:
    """An untrained zoo model (seed 0) and a meta dict like a model file's (inputs not
    normalised: mean 0, std 1)."""
    if name not in models.ZOO:
        raise ModelFileError(f"{name!r} is not a model file, a run folder or a zoo name "
                             f"({', '.join(sorted(models.ZOO))})")
    model = models.build(name, rng=np.random.default_rng(0))
    channels, size = model.in_channels, models.ZOO_INPUTS[name][1]
    kind = models.ZOO_TASKS.get(name, "classification")
    names = [str(k) for k in range(model.num_classes)] if kind in ("classification", "segmentation",
                                                                    "detection") else None
    task = {"kind": kind, "num_classes": model.num_classes} if kind in ("segmentation", "detection") else {"kind": kind}
    if kind == "detection":
        task["image_size"] = [size, size]
    meta = {"model": name, "config": model.config(), "class_names": names,
            "input_shape": [channels, size, size], "mean": [0.0] * channels, "std": [1.0] * channels,
            "dataset": None, "task": task}
    return model.eval(), meta


def load_any(spec: str | os.PathLike) -> tuple[Module, dict[str, Any]]:
    """``(model, meta)`` from a model file, a training run folder or a zoo name (untrained).

    The one way the command line and the web explorer open a model. Raises ModelFileError
    saying what was given and what is expected.
    """
    path = model_path(spec)
    if path is None and (str(spec).endswith(".safetensors") or os.sep in str(spec)):
        raise ModelFileError(f"{spec}: no such file or folder (expected a model file, a run folder or a zoo name: "
                             f"{', '.join(sorted(models.ZOO))})")
    return load_model(path) if path is not None else zoo_model(str(spec))
