"""Mutations of model files and checkpoints that reach past the safetensors framing.

:func:`edit_header` rewrites the convscope JSON inside a valid file (a field replaced by a
value of another type or range, deleted, the architecture swapped for an allow-listed class
that cannot run as a model, deep nesting) and frames the file again; :func:`edit_framing`
breaks the safetensors table itself (a header that is JSON but not an object, tensor
entries of the wrong types, huge shapes).
"""

from __future__ import annotations

import json
import struct

import numpy as np

RAW = "__raw_json__"  # replaced by raw JSON text that json.dumps could not write (deep nesting)
VALUES = [None, True, False, -1, 0, 1, 3, 10**9, 2**64, -(2**70), 1e308, -0.0, 0.5, "", "x", "classification",
          [], [1], [1, 28, 28], [-1, 0, 5], ["a"], {}, {"kind": 3}, {"a": [1, {"b": None}]}, "0" * 10_000, RAW]
ARCHITECTURES = [
    {"type": "Parameter"}, {"type": "Module"}, {"type": "ReLU"}, {"type": "Flatten"},
    {"type": "AdaptiveAvgPool2d", "config": {"output_size": 0}}, {"type": "CrossEntropyLoss"},
    {"type": "Sequential", "layers": []}, {"type": "Sequential", "layers": [{"type": "Softmax"}]},
    {"type": "zoo", "name": "lenet5", "config": {"num_classes": 10**9}},
    {"type": "zoo", "name": "lenet5", "config": {"num_classes": 10**5}},
    {"type": "zoo", "name": "vgg", "config": {"width": 10**5}},
    {"type": "zoo", "name": "unet", "config": {"width": 1024, "depth": 12}},
    {"type": "zoo", "name": "resnet", "config": {"blocks_per_stage": 10**6}},
    {"type": "zoo", "name": "lenet5", "config": {"in_channels": -1}},
    {"type": "zoo", "name": "nope"}, {"type": "Linear", "config": {"in_features": 10**6, "out_features": 10**6}},
    {"type": "Conv2d", "config": {"in_channels": 1, "out_channels": 2, "kernel_size": 10**6}},
    {"type": "Sequential", "layers": [{"type": "ReLU"}] * 5000},
]


def split(data: bytes) -> tuple[dict, bytes]:
    """(header JSON, tensor bytes) of a valid safetensors file."""
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length]), data[8 + length:]


def frame(header_text: str, body: bytes) -> bytes:
    raw = header_text.encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def _paths(value, prefix=()):
    """Every (path) to a node of a JSON value."""
    yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, prefix + (key,))


def _random_value(rng: np.random.Generator):
    """A fresh copy of one of VALUES (never shared: an edit inside it must not make a cycle)."""
    return json.loads(json.dumps(VALUES[int(rng.integers(0, len(VALUES)))]))


def _set(document, path, value):
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


def edit_header(data: bytes, rng: np.random.Generator) -> bytes:
    """A model file or checkpoint with its convscope JSON edited 1 to 3 times, framed again."""
    header, body = split(data)
    meta = json.loads(header["__metadata__"]["convscope"])
    for _ in range(int(rng.integers(1, 4))):
        paths = [p for p in _paths(meta) if p]
        path = paths[int(rng.integers(0, len(paths)))]
        choice = rng.random()
        if choice < 0.15:
            chosen = ARCHITECTURES[int(rng.integers(0, len(ARCHITECTURES)))]
            _set(meta, ("architecture",), json.loads(json.dumps(chosen)))  # a copy: later edits stay inside it
        elif choice < 0.3:
            _set(meta, path, _DELETE)
        else:
            _set(meta, path, _random_value(rng))
    text = json.dumps(meta)
    depth = int(rng.choice([10, 1000, 100_000]))
    text = text.replace(json.dumps(RAW), "[" * depth + "]" * depth)
    header["__metadata__"]["convscope"] = text if rng.random() < 0.9 else "[" * 50_000 + "]" * 50_000
    return frame(json.dumps(header), body)


def edit_framing(data: bytes, rng: np.random.Generator) -> bytes:
    """A file whose safetensors table is broken: not an object, bad tensor entries, bad metadata."""
    header, body = split(data)
    kind = int(rng.integers(0, 6))
    names = [k for k in header if k != "__metadata__"]
    name = names[int(rng.integers(0, len(names)))] if names else None
    if kind == 0:
        return frame(json.dumps(_random_value(rng) if rng.random() < 0.7 else [header]), body)
    if kind == 1 and name:
        header[name]["dtype"] = str(rng.choice(["F64", "BF16", "F8_E4M3", "XYZ", "BOOL", "U64", ""]))
    elif kind == 2 and name:
        header[name]["shape"] = _random_value(rng) if rng.random() < 0.5 else [10**12, 10**12]
    elif kind == 3 and name:
        header[name]["data_offsets"] = _random_value(rng)
    elif kind == 4:
        header["__metadata__"] = _random_value(rng) if rng.random() < 0.5 else {"convscope": _random_value(rng)}
    else:
        return frame("[" * 100_000 + "]" * 100_000, body)
    return frame(json.dumps(header), body)
