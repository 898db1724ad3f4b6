"""What the metadata of a model file or checkpoint may hold: every field's type and range.

:func:`check_model_header` and :func:`check_checkpoint_header` run on the JSON header of a
file before anything is built from it, and raise :class:`ModelFileError` naming the file,
the field, what it holds and what is expected. The limits are named here:

    MAX_MODEL_FILE_BYTES  2 GiB   a model file or checkpoint (it is read whole)
    MAX_HEADER_BYTES      16 MiB  its JSON header
    MAX_JSON_DEPTH        32      nesting of the JSON (a Sequential in a Sequential ... counts)
    MAX_LAYERS            1,000   layer entries in an architecture
    MAX_CONFIG_INT        2**20   any integer argument of a layer or zoo model
    MAX_CHANNELS          64      input channels; MAX_INPUT_SIDE 2,048 pixels a side
    MAX_CLASSES           10,000  class names (as for datasets)

The size of the model itself is bounded by the weights the file holds
(:func:`convscope.nn.size_limit`, applied by :func:`convscope.io.load_model`). Then what the
file describes must fit: :func:`probe` (the model gives scores of the task's shape) and
:func:`check_resumable` (a checkpoint's optimizer and random states can be restored).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import models, nn
from .data.bounded import MAX_CLASSES
from .nn import Module

MAX_MODEL_FILE_BYTES = 2 * 2**30
MAX_HEADER_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 32
MAX_LAYERS = 1000
MAX_CONFIG_INT = 2**20
MAX_CHANNELS = 64
MAX_INPUT_SIDE = 2048
MAX_TEXT = 1000  # characters of a class name or dataset name
PREPROCESS = ("digit", "resize")


class ModelFileError(ValueError):
    """A model or checkpoint file is missing, corrupt, truncated or does not fit."""


def shown(value: Any) -> str:
    """A short description of a received value: its type and the start of its repr."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def parse_json(text: str | bytes, where: object) -> Any:
    """A JSON document, refused when malformed, larger than MAX_HEADER_BYTES or nested deeper
    than MAX_JSON_DEPTH (instead of a RecursionError).

    Example:
        >>> parse_json("[" * 100 + "]" * 100, "m.safetensors")
        Traceback (most recent call last):
        ...
        convscope.schema.ModelFileError: m.safetensors: JSON nested more than 32 levels deep; corrupt header
    """
    if len(text) > MAX_HEADER_BYTES:
        raise ModelFileError(f"{where}: a JSON header of {len(text):,} bytes; at most {MAX_HEADER_BYTES:,} are read")
    too_deep = f"{where}: JSON nested more than {MAX_JSON_DEPTH} levels deep; corrupt header"
    try:
        value = json.loads(text)
    except RecursionError:
        raise ModelFileError(too_deep) from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelFileError(f"{where}: corrupt header: not valid JSON ({error})") from None
    if depth(value) > MAX_JSON_DEPTH:
        raise ModelFileError(too_deep)
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack += [(child, level + 1) for child in children]
    return deepest


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, where: object, field: str, expected: str, value: Any) -> None:
    if not ok:
        raise ModelFileError(f"{where}: field {field!r} must be {expected}, got {shown(value)}")


def _object(header: Any, where: object, what: str) -> Mapping[str, Any]:
    if not isinstance(header, dict):
        raise ModelFileError(f"{where}: corrupt header: {what} must be a JSON object, got {shown(header)}")
    return header


# ----- architectures --------------------------------------------------------------------
def _config_value(value: Any) -> bool:
    """A layer argument: a bounded int, finite number, bool, short string, None, or a list of those."""
    if isinstance(value, list):
        return len(value) <= 16 and all(_config_value(v) for v in value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -MAX_CONFIG_INT <= value <= MAX_CONFIG_INT
    return _is_number(value) or (isinstance(value, str) and len(value) <= MAX_TEXT)


def _check_config(config: Any, cls: type, where: object, kind: str) -> None:
    _require(isinstance(config, dict), where, f"architecture config of {kind}", "an object", config)
    parameters = inspect.signature(cls).parameters
    takes = {name for name in parameters if name != "rng"}
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [] if open_ended else sorted(set(config) - takes)
    if unknown:
        raise ModelFileError(f"{where}: {kind} takes no argument {unknown[0]!r}; expected some of "
                             f"{', '.join(sorted(takes)) or 'none'}")
    for name, value in config.items():
        _require(_config_value(value), where, f"{kind} argument {name}",
                 f"a number (integers within +-{MAX_CONFIG_INT:,}), bool, string or a short list of them", value)


def check_architecture(spec: Any, where: object) -> int:
    """Check an architecture entry (see :mod:`convscope.io`) and every layer in it; returns
    how many layer entries it has (at most MAX_LAYERS)."""
    count, stack = 0, [spec]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_LAYERS:
            raise ModelFileError(f"{where}: the architecture has more than {MAX_LAYERS} layer entries")
        _require(isinstance(item, dict) and isinstance(item.get("type"), str), where, "architecture entry",
                 "an object with a string 'type'", item)
        kind = item["type"]
        if kind == "zoo":
            name = item.get("name")
            _require(isinstance(name, str) and name in models.ZOO, where, "architecture name",
                     f"a zoo model ({', '.join(models.ZOO)})", name)
            _check_config(item.get("config", {}), models.ZOO[name], where, name)
            continue
        if "layers" in item or kind == "Sequential":
            layers = item.get("layers")
            _require(isinstance(layers, list), where, f"layers of {kind}", "a list of layer entries", layers)
            stack += layers
            continue
        if kind in nn.LAYERS:  # an unknown type is reported by build_architecture, with the known ones
            _check_config(item.get("config", {}), nn.LAYERS[kind], where, kind)
    return count


# ----- model files and checkpoints ----------------------------------------------------------
def check_version(header: Mapping[str, Any], where: object, expected_format: str, newest: int) -> None:
    """The ``format`` and ``format_version`` fields: the kind of file, and one this code reads."""
    if header.get("format") != expected_format:
        raise ModelFileError(f"{where}: is a {header.get('format')!r} file, expected {expected_format!r}")
    version = header.get("format_version", 0)
    _require(_is_int(version, 0, 2**31), where, "format_version", "a whole number", version)
    if version > newest:
        raise ModelFileError(f"{where}: format version {version} is newer than this convscope reads "
                             f"({newest}); upgrade convscope")


def _strings(value: Any, most: int) -> bool:
    return isinstance(value, list) and len(value) <= most and all(
        isinstance(v, str) and len(v) <= MAX_TEXT for v in value)


def _numbers(value: Any, positive: bool = False) -> bool:
    return isinstance(value, list) and 1 <= len(value) <= MAX_CHANNELS and all(
        _is_number(v) and (v > 0 or not positive) for v in value)


def _input_shape(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 3 and _is_int(value[0], 1, MAX_CHANNELS)
            and all(_is_int(v, 1, MAX_INPUT_SIDE) for v in value[1:]))


def _task(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, dict) and isinstance(value.get("kind"), str) and all(
        _config_value(v) for v in value.values())


# field -> (what it must be, test); None is allowed for every optional field
MODEL_FIELDS = {
    "class_names": (f"a list of at most {MAX_CLASSES:,} strings", lambda v: _strings(v, MAX_CLASSES)),
    "input_shape": (f"[C, H, W] with C in 1..{MAX_CHANNELS} and H, W in 1..{MAX_INPUT_SIDE}", _input_shape),
    "mean": (f"a list of 1..{MAX_CHANNELS} finite numbers", _numbers),
    "std": (f"a list of 1..{MAX_CHANNELS} finite positive numbers", lambda v: _numbers(v, positive=True)),
    "dataset": ("a string", lambda v: isinstance(v, str) and len(v) <= MAX_TEXT),
    "training": ("an object", lambda v: isinstance(v, dict)),
    "preprocess": (" or ".join(repr(p) for p in PREPROCESS), lambda v: v in PREPROCESS),
    "task": ("a task kind or an object with a string 'kind'", _task),
}


def check_model_header(header: Any, where: object) -> Mapping[str, Any]:
    """Check a model file's JSON header field by field (see :mod:`convscope.io`); returns it."""
    header = _object(header, where, "the convscope metadata")
    check_architecture(header.get("architecture"), where)
    for field, (expected, test) in MODEL_FIELDS.items():
        value = header.get(field)
        _require(value is None or test(value), where, field, expected, value)
    _check_task(header, where)
    if header.get("preprocess") == "digit" and header.get("input_shape") not in (None, [1, 28, 28]):
        raise ModelFileError(f"{where}: field 'preprocess' is 'digit' (images made 1x28x28), but 'input_shape' is "
                             f"{header['input_shape']}")
    channels = (header.get("input_shape") or [None])[0]
    for field in ("mean", "std"):
        values = header.get(field)
        if channels is not None and values is not None and len(values) not in (1, channels):
            raise ModelFileError(f"{where}: field {field!r} has {len(values)} values, expected one per input "
                                 f"channel ({channels})")
    return header


def _check_task(header: Mapping[str, Any], where: object) -> None:
    """The task entry must build its Task (its arguments of the right types and ranges)."""
    from .tasks import task_from_config

    names = header.get("class_names")
    try:
        task_from_config(header.get("task"), len(names) if names else None)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{where}: field 'task' is {shown(header.get('task'))}, which does not describe a task: "
                             f"{error}") from None


def _progress(value: Any) -> bool:
    """The loop state: known keys of the right types (others kept as they are)."""
    if not isinstance(value, dict):
        return False
    tests = {"epoch": lambda v: _is_int(v, 0, 10**7), "bad_epochs": lambda v: _is_int(v, 0, 10**7),
             "history": lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
             "best_val_loss": lambda v: v is None or _is_number(v),
             "best_epoch": lambda v: v is None or _is_int(v, 0, 10**7),
             "stopped_early": lambda v: isinstance(v, bool)}
    return all(test(value[key]) for key, test in tests.items() if key in value)


def _optimizer(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("type"), str)
            and isinstance(value.get("hyper"), dict) and _is_int(value.get("steps"), 0, 2**62)
            and all(v is None or isinstance(v, bool) or _is_number(v)
                    or (isinstance(v, list) and len(v) <= 8 and all(_is_number(x) for x in v))
                    for v in value["hyper"].values()))


def _rng_state(value: Any) -> bool:
    """A bit generator's state: an object naming it, every integer in it within 0..2**128."""
    if not (isinstance(value, dict) and isinstance(value.get("bit_generator"), str)):
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        for v in item.values() if isinstance(item, dict) else item:
            if isinstance(v, (dict, list)):
                stack.append(v)
            elif not (isinstance(v, str) or _is_int(v, 0, 2**128)):
                return False
    return True


CHECKPOINT_FIELDS = {
    "optimizer": ("an object with 'type' (string), 'hyper' (numbers) and 'steps' (a whole number >= 0)", _optimizer),
    "scheduler": ("null or an object with 'last_step' (>= 0) and 'base_lr' (a finite number)",
                  lambda v: v is None or (isinstance(v, dict) and _is_int(v.get("last_step"), 0, 2**62)
                                          and _is_number(v.get("base_lr")))),
    "rngs": ("an object of random-generator states (non-negative integers)",
             lambda v: isinstance(v, dict) and all(_rng_state(s) for s in v.values())),
    "progress": ("an object (epoch, history, best_val_loss, bad_epochs...)", _progress),
}


def check_checkpoint_header(header: Any, where: object) -> Mapping[str, Any]:
    """Check a checkpoint's JSON header field by field (see :func:`convscope.io.save_checkpoint`)."""
    header = _object(header, where, "the convscope metadata")
    check_architecture(header.get("architecture"), where)
    for field, (expected, test) in CHECKPOINT_FIELDS.items():
        _require(test(header.get(field)), where, field, expected, header.get(field))
    return header


# ----- does what the file describes fit? -------------------------------------------------------
def _expected_output(header: Mapping[str, Any]) -> tuple[int, int | None]:
    """(ndim, classes) the model's output must have for its task; None where any will do."""
    kind, names = _task_kind(header), header.get("class_names")
    if kind == "positions":
        return 2, 2
    if kind == "segmentation":
        return 4, len(names) if names else None
    return (2, len(names)) if names else (None, None)  # a classifier without classes: any scores


def _task_kind(header: Mapping[str, Any]) -> str:
    task = header.get("task") or "classification"
    return task if isinstance(task, str) else task.get("kind")


def _check_zoo_fit(model: Module, header: Mapping[str, Any], path: object) -> None:
    """A zoo model's input channels, class count and task kind against the file's."""
    channels, names, name = header["input_shape"][0], header.get("class_names"), header["architecture"]["name"]
    kind, expected = _task_kind(header), models.ZOO_TASKS.get(name, "classification")
    if kind != expected:
        raise ModelFileError(f"{path}: the file says task {kind!r}, but {name} is a {expected} model")
    if getattr(model, "in_channels", channels) != channels:
        raise ModelFileError(f"{path}: the model takes {model.in_channels}-channel images, the file's input_shape "
                             f"says {header['input_shape']}")
    if names and getattr(model, "num_classes", len(names)) != len(names):
        raise ModelFileError(f"{path}: the model has {model.num_classes} classes, the file names {len(names)}")


def probe(model: Module, header: Mapping[str, Any], path: object) -> None:
    """Run ``model`` once on a zero image of the recorded input shape (if any) and check that
    it gives what its task needs: finite float scores, (1, K) for a classifier with K class
    names, (1, K, H, W) for segmentation. A file naming a class that cannot run as a model
    (a bare ``ReLU``, a loss, ``AdaptiveAvgPool2d(0)``) is refused here, at load time.

    A zoo model is whole network code: it is checked without running it (its input channels
    and class count against the file's), so loading costs no forward pass."""
    from .tensor import Tensor, no_grad

    if not header.get("input_shape"):
        return
    if header["architecture"].get("type") == "zoo":
        _check_zoo_fit(model, header, path)
        return
    try:
        with no_grad():
            output = model(Tensor(np.zeros((1, *header["input_shape"]), np.float32)))
        data = np.asarray(output.data)
    except Exception as error:  # noqa: BLE001 - whatever a layer raises on the shape the file gave
        raise ModelFileError(f"{path}: the model it describes cannot run on its input shape "
                             f"{header['input_shape']}: {type(error).__name__}: {error}") from None
    ndim, classes = _expected_output(header)
    if (data.dtype.kind != "f" or data.ndim < 2 or data.shape[0] != 1 or data.size == 0
            or not np.all(np.isfinite(data)) or ndim not in (None, data.ndim)
            or (classes is not None and data.shape[1] != classes)):
        wanted = f"(1, {classes or 'K'}{', H, W' if ndim == 4 else ''})"
        raise ModelFileError(f"{path}: the model it describes gives {data.dtype} scores of shape {data.shape} "
                             f"for one image; its task needs finite float scores of shape {wanted}")


def _like(saved: Any, live: Any) -> bool:
    """Whether a hyper-parameter read from JSON has the kind of the live optimizer's value."""
    if isinstance(live, tuple):
        return isinstance(saved, list) and len(saved) == len(live)
    if isinstance(live, bool) or live is None:
        return type(saved) is type(live)
    return isinstance(saved, (int, float)) and not isinstance(saved, bool)


def check_resumable(path, arrays, header, optimizer, rngs) -> None:
    """Refuse a checkpoint whose hyper-parameters, random states or arrays cannot be restored."""
    bad = [name for name, array in arrays.items() if array.dtype.kind == "f" and not np.all(np.isfinite(array))]
    if bad:
        raise ModelFileError(f"{path}: {', '.join(bad[:3])} hold NaN or infinite values; not a state to resume")
    hyper = header["optimizer"]["hyper"]
    for name in optimizer.hyper_names:
        live, saved = getattr(optimizer, name), hyper.get(name)
        if name not in hyper or not _like(saved, live):
            raise ModelFileError(f"{path}: optimizer hyper-parameter {name!r} is {shown(saved)}, expected a value "
                                 f"like this run's {live!r}")
    for name, generator in (rngs or {}).items():
        if name not in header["rngs"]:
            raise ModelFileError(f"{path}: checkpoint lacks the random state {name!r}")
        try:
            type(generator.bit_generator)().state = header["rngs"][name]
        except (ValueError, TypeError, KeyError, OverflowError) as error:
            raise ModelFileError(f"{path}: random state {name!r} cannot be restored "
                                 f"({type(error).__name__}: {error})") from None
