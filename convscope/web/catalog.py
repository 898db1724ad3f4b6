"""Which models the explorer offers, and each one loaded once.

A model is named by an id the page got from :meth:`Catalog.listing`: a run folder under the
runs root (``runs/lenet5-digits``), a zoo name (``zoo:lenet5``, untrained), or the model
given on the command line. Nothing else is opened: a request naming any other path is
refused, so a page cannot make the server read files it was not offered.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import models
from ..io import RUN_MODEL, ModelFileError, load_any, model_path
from ..nn import Module
from ..runs import find_runs
from .errors import WebError
from .jobs import restartable

ZOO_PREFIX = "zoo:"
KEEP_LOADED = 8  # models kept in memory at once


@dataclass(eq=False)
class Loaded:
    """One opened model: ``model`` (eval mode), its ``meta``, and a ``lock`` held while it is
    traced (tracing wraps the model's layers for the duration of one pass)."""

    id: str
    model: Module
    meta: dict[str, Any]
    stamp: float
    lock: threading.Lock = field(default_factory=threading.Lock)


def _stamp(spec: str) -> float:
    """When the model file behind ``spec`` last changed (0 for a zoo model): a run being
    trained writes a new model file every epoch, and the explorer then reloads it."""
    try:
        path = model_path(spec)
    except ModelFileError:
        return -1.0
    return path.stat().st_mtime if path is not None and path.exists() else 0.0


class Catalog:
    """The models on offer: run folders under ``root``, the zoo, and ``given`` (a model file,
    run folder or zoo name from the command line, shown first)."""

    def __init__(self, root: str | os.PathLike = "runs", given: str | None = None) -> None:
        self.root = Path(root)
        self.given = ZOO_PREFIX + given if given in models.ZOO else given
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._guard = threading.Lock()

    def runs(self) -> list[dict[str, Any]]:
        """Every run folder under the root, as the page lists them (with its state)."""
        return [_run_entry(info) for info in find_runs(self.root)] if self.root.is_dir() else []

    def listing(self) -> dict[str, Any]:
        """``{"current", "models": [{"id", "label", "kind", ...}], "runs": [...]}``."""
        runs = self.runs()
        offered = [{"id": r["id"], "label": r["label"], "kind": "run"} for r in runs if r["has_model"]]
        offered += [{"id": ZOO_PREFIX + name, "label": f"{name} (zoo, untrained)", "kind": "zoo"}
                    for name in sorted(models.ZOO)]
        if self.given is not None and self.given not in {m["id"] for m in offered}:
            offered.insert(0, {"id": self.given, "label": self.given, "kind": "given"})
        current = self.given if self.given is not None else offered[0]["id"]
        return {"current": current, "models": offered, "runs": runs}

    def _offered(self, model_id: str) -> str:
        """The spec ``load_any`` opens for an offered id; anything else is refused."""
        if model_id.startswith(ZOO_PREFIX) and model_id[len(ZOO_PREFIX):] in models.ZOO:
            return model_id[len(ZOO_PREFIX):]
        if model_id == self.given:
            return model_id
        folder = Path(model_id)  # a run folder directly under the root, holding a model file
        if folder.parent == self.root and folder.name not in ("", ".", "..") and (folder / RUN_MODEL).is_file():
            return model_id
        raise WebError(f"model {model_id!r} is not offered here; ask /api/models for the ones that are", 404)

    def get(self, model_id: Any) -> Loaded:
        """The loaded model named ``model_id``, opened (or reopened, if its file changed) now."""
        if not isinstance(model_id, str) or not model_id:
            raise WebError(f"expected a model id (a string from /api/models), got {model_id!r}")
        spec = self._offered(model_id)
        stamp = _stamp(spec)
        with self._guard:
            loaded = self._loaded.get(model_id)
            if loaded is None or loaded.stamp != stamp:
                loaded = self._open(model_id, spec, stamp)
            self._loaded.move_to_end(model_id)
            while len(self._loaded) > KEEP_LOADED:
                self._loaded.popitem(last=False)
        return loaded

    def _open(self, model_id, spec, stamp):
        try:
            model, meta = load_any(spec)
        except (ModelFileError, ValueError, OSError) as error:
            raise WebError(f"cannot open model {model_id}: {error}", 422) from None
        if not meta.get("input_shape") or len(meta["input_shape"]) != 3:
            raise WebError(f"model {model_id} does not record its input shape (C, H, W)", 422)
        loaded = self._loaded[model_id] = Loaded(model_id, model.eval(), meta, stamp)
        return loaded


def _run_entry(info) -> dict[str, Any]:
    """A run folder as the page lists it."""
    path = Path(info.path)
    state = ("damaged" if info.problem else "training" if info.training else
             "finished" if info.finished else "interrupted")
    label = f"{path.name} ({info.model or '?'} on {info.data or '?'}, {info.done}/{info.epochs or '?'} epochs)"
    return {"id": str(path), "label": label, "name": path.name, "model": info.model, "data": info.data,
            "epochs": info.epochs, "epochs_done": info.done, "state": state, "problem": info.problem,
            "has_model": bool(info.has_model and (path / RUN_MODEL).is_file()),
            "resumable": bool(info.resumable or restartable(info))}
