"""A request's input, prepared for the model exactly as ``convscope predict`` prepares an
image (:func:`convscope.data.preprocess.preprocess_image`), or a validation image as it is.

A request names its input with one of:

* ``"image"``: a ``data:image/...;base64,`` URI (the canvas drawing or an uploaded file);
* ``"sample"``: ``{"label": k, "n": i}``, the i-th validation image of class k of the
  model's dataset;

and may add ``"shift": [dy, dx]``, pixels to move the prepared input by (down, right), the
uncovered pixels filled with black (the translation-invariance slider).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import DatasetNotFoundError, normalise
from ..data.dataset import Dataset
from ..data.preprocess import preprocess_image
from ..runs import load_data
from ..viz.invariance import shift as shift_image
from .errors import WebError

MAX_PIXELS = 4096 * 4096  # an upload may be a phone photo; larger is refused before decoding
# the kinds of file a browser draws or a camera writes; Pillow's others (EPS runs Ghostscript) are refused
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # JPEG includes phones' MPO
_DATA_URI = "data:image/"


def whole(value: Any) -> bool:
    """Whether ``value`` is a whole number from JSON (``true`` and ``false`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Prepared:
    """The model's input ``x`` (1, C, H, W), normalised; ``notes``: how it was made; ``label``:
    the true class of a validation image (else None)."""

    x: np.ndarray
    notes: list[str] = field(default_factory=list)
    label: int | None = None


def image_bytes(uri: Any) -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URI, refused clearly if it is not one."""
    if not isinstance(uri, str) or not uri.startswith(_DATA_URI) or ";base64," not in uri[:64]:
        shown = repr(uri)[:60]
        raise WebError(f"expected \"image\" to be a data:image/...;base64,... URI, got {shown}")
    try:
        return base64.b64decode(uri.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise WebError("the \"image\" data URI is not valid base64") from None


def _check_size(data: bytes) -> None:
    """Refuse an image whose header announces more than MAX_PIXELS, before decoding it."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise WebError(f"the image is far too large to open safely; at most {MAX_PIXELS // 10**6} megapixels "
                       "are accepted", 413) from None
    except (UnidentifiedImageError, OSError):
        raise WebError(f"the image is not a readable image file: expected {', '.join(UPLOAD_FORMATS)}, got "
                       f"{len(data)} bytes starting {data[:8]!r}", 415) from None
    if width * height > MAX_PIXELS:
        raise WebError(f"the image is {width}x{height} pixels; at most {MAX_PIXELS // 10**6} megapixels "
                       "are accepted", 413)


def from_upload(uri: Any, meta: dict[str, Any]) -> Prepared:
    """A drawing or uploaded image, prepared as ``convscope predict`` prepares image files."""
    data = image_bytes(uri)
    _check_size(data)
    try:
        x, notes = preprocess_image(data, meta)
    except ValueError as error:  # blank drawing, unreadable file: the page says why
        raise WebError(str(error), 422) from None
    return Prepared(x.astype(np.float32), notes)


class Samples:
    """Validation images of the models' datasets, read once per dataset."""

    def __init__(self, data_dir: str | os.PathLike | None = None) -> None:
        self.data_dir = data_dir
        self._sets: dict[tuple, Dataset] = {}
        self._guard = threading.Lock()

    def dataset(self, meta: dict[str, Any]) -> Dataset:
        """The validation split of the data the model was trained on (a named dataset, or the
        user's folder or .npz file, read at the model's input size)."""
        name = (meta.get("training") or {}).get("data") or meta.get("dataset")
        if not name:
            raise WebError("this model names no dataset to take validation images from", 404)
        shape = tuple(meta["input_shape"])
        with self._guard:
            if (name, shape) not in self._sets:
                try:
                    self._sets[name, shape] = load_data(name, ("val",), self.data_dir, input_shape=shape,
                                                        channels=shape[0])[0]
                except (DatasetNotFoundError, ValueError, OSError) as error:
                    raise WebError(f"the validation images of {name} are not available here: {error}", 404) from None
            return self._sets[name, shape]

    def counts(self, meta: dict[str, Any]) -> dict[str, Any]:
        """``{"dataset", "classes", "counts"}``: how many validation images each class has."""
        data = self.dataset(meta)
        classes, labels = _classes(data)
        counts = np.bincount(labels, minlength=len(classes))
        return {"dataset": data.name, "classes": classes, "counts": [int(c) for c in counts]}

    def get(self, request: Any, meta: dict[str, Any]) -> Prepared:
        """The validation image ``{"label": k, "n": i}``, normalised as in training."""
        if not isinstance(request, dict) or not all(whole(request.get(k)) for k in ("label", "n")):
            raise WebError(f"expected \"sample\" to be {{\"label\": class index, \"n\": image index}}, got {request!r}")
        data = self.dataset(meta)
        label, n = request["label"], request["n"]
        classes, labels = _classes(data)
        of_class = np.flatnonzero(labels == label)
        if not 0 <= label < len(classes) or not 0 <= n < len(of_class):
            raise WebError(f"no validation image {n} of class {label}: {data.name} has classes 0-"
                           f"{len(classes) - 1} with {len(of_class)} images of class {label}", 404)
        index = int(of_class[n])
        channels = meta["input_shape"][0]
        x = normalise(data.images[index:index + 1], meta.get("mean") or [0.0] * channels,
                      meta.get("std") or [1.0] * channels)
        note = f"{data.name} validation image {index} ({_about(data, index, classes[label])})"
        return Prepared(x.astype(np.float32), [note], label)


def _classes(data: Dataset) -> tuple[list[str], np.ndarray]:
    """The class names and labels the page picks samples by; images whose targets are not
    one class each (positions, masks, boxes) are all in one group, "all"."""
    if data.class_names is None or np.ndim(data.labels) != 1:
        return ["all"], np.zeros(len(data), np.int64)
    return list(data.class_names), data.labels


def _about(data: Dataset, index: int, name: str) -> str:
    """What a sample is: its class, its boxes' classes, the classes of its mask, or its centre in pixels."""
    target, names = np.asarray(data.labels[index]), data.class_names
    if names is not None and target.ndim == 0:
        return f"class {name}"
    if names is not None and target.ndim == 2 and target.shape[1] == 5:  # boxes (x0, y0, x1, y1, class)
        found = [names[int(c)] for c in target[target[:, 4] >= 0, 4]]
        return f"{len(found)} objects: {', '.join(found)}"
    if names is not None:  # a mask
        return "classes " + ", ".join(names[int(c)] for c in np.unique(target) if c > 0)
    return "true centre (" + ", ".join(f"{v:.1f}" for v in np.ravel(target)) + ") px"


def shifted(prepared: Prepared, move: Any, meta: dict[str, Any]) -> Prepared:
    """``prepared`` moved by ``move`` = [dy, dx] pixels (black comes in), or as it is."""
    if move is None or move == [0, 0]:
        return prepared
    size = min(prepared.x.shape[2:])
    if (not isinstance(move, list) or len(move) != 2 or not all(whole(v) for v in move)
            or max(abs(v) for v in move) >= size / 2):
        raise WebError(f"expected \"shift\" to be [dy, dx], whole pixels under half the image ({size} px), "
                       f"got {move!r}")
    channels = meta["input_shape"][0]
    mean = np.asarray(meta.get("mean") or [0.0] * channels, np.float32)
    std = np.asarray(meta.get("std") or [1.0] * channels, np.float32)
    x = shift_image(prepared.x, move[0], move[1], -mean / std).astype(np.float32)
    return Prepared(x, prepared.notes + [f"shifted {move[1]:+d} px right, {move[0]:+d} px down"], prepared.label)


def prepare(body: dict[str, Any], meta: dict[str, Any], samples: Samples) -> Prepared:
    """The input a request asks for: its ``image`` or its ``sample``, then its ``shift``."""
    if body.get("image") is not None:
        prepared = from_upload(body["image"], meta)
    elif body.get("sample") is not None:
        prepared = samples.get(body["sample"], meta)
    else:
        raise WebError("the request names no input: send \"image\" (a data URI) or \"sample\" "
                       "({\"label\": k, \"n\": i})")
    return shifted(prepared, body.get("shift"), meta)
