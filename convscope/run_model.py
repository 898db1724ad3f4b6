"""A run folder's model file and metrics log, kept matching its checkpoint.

After every epoch the loop writes ``checkpoint.safetensors`` first (the run's own record, what
``--resume`` continues from), then ``metrics.jsonl`` and, in :class:`SaveModel`,
``model.safetensors`` (the file people load). Each write is atomic, but a process killed
between them leaves the later files one epoch behind the checkpoint (or missing, after the
first epoch). Resuming checks them with :func:`model_mismatch` and :func:`metrics_mismatch`
and rewrites what differs from the checkpoint's weights and history (:func:`repair_model`,
``train.write_metrics``) before training goes on, so a resumed run never ends, or reports
success, with a stale model file or log.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .data import Dataset
from .data.preprocess import DIGIT_DATASETS
from .io import CHECKPOINT_FORMAT, MODEL_FORMAT, ModelFileError, read_safetensors, save_model
from .nn import Module
from .tasks import Classification, Task
from .train import CHECKPOINT, METRICS, Callback, write_metrics


class SaveModel(Callback):
    """Write the model file after every epoch, so the latest weights are always usable."""

    def __init__(self, path: str | os.PathLike, model: Module, train_set: Dataset, run_config: dict[str, Any],
                 task: Task | None = None) -> None:
        self.path, self.model, self.train_set, self.run_config = path, model, train_set, run_config
        self.task = task or Classification()

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        digits = self.run_config["data"] in DIGIT_DATASETS  # how predict prepares images: from the data
        save_model(self.path, self.model, class_names=self.train_set.class_names,
                   input_shape=self.train_set.images.shape[1:], mean=self.train_set.mean,
                   std=self.train_set.std, dataset=self.train_set.name,
                   training=dict(self.run_config, epochs_done=epoch + 1, last_epoch=record),
                   preprocess="digit" if digits else "resize", task=self.task.config())


def checkpoint_weights(checkpoint: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The model weights a checkpoint holds (by dotted name) and its loop progress."""
    arrays, header = read_safetensors(checkpoint, CHECKPOINT_FORMAT)
    return {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}, header.get("progress", {})


def model_mismatch(model_file: str | os.PathLike, checkpoint: str | os.PathLike) -> str | None:
    """Why ``model_file`` does not hold the weights of ``checkpoint``'s epoch, in words (None
    when it does: the same epoch recorded, bit-identical weights)."""
    weights, progress = checkpoint_weights(checkpoint)
    epoch = progress.get("epoch", 0)
    if not os.path.exists(model_file):
        return f"it is missing, while the checkpoint holds epoch {epoch}"
    try:
        saved, header = read_safetensors(model_file, MODEL_FORMAT)
    except ModelFileError as error:
        return f"it cannot be read ({error})"
    training = header.get("training")
    held = training.get("epochs_done") if isinstance(training, dict) else None
    if held != epoch:
        return f"it holds epoch {held} but the checkpoint epoch {epoch} (the run was stopped between the two writes)"
    if saved.keys() != weights.keys() or not all(np.array_equal(saved[k], weights[k]) for k in weights):
        return f"its weights differ from those of the checkpoint (epoch {epoch})"
    return None


def repair_model(saver: SaveModel, checkpoint: str | os.PathLike) -> int:
    """Load ``checkpoint``'s weights into ``saver.model`` and write the model file from them,
    recording the checkpoint's last epoch; returns that epoch."""
    weights, progress = checkpoint_weights(checkpoint)
    history = progress.get("history") or [{}]
    saver.model.load_state_dict(weights)
    saver.on_epoch_end(progress.get("epoch", 1) - 1, history[-1])
    return progress.get("epoch", 1)


def metrics_mismatch(metrics: str | os.PathLike, history: list[dict[str, Any]]) -> str | None:
    """Why the metrics log ``metrics`` does not list the epoch records ``history`` (a
    checkpoint's), in words; None when it does, record for record."""
    try:
        with open(metrics) as f:
            logged = [json.loads(line) for line in f]
    except FileNotFoundError:
        return f"it is missing, while the checkpoint holds {len(history)} epochs"
    except (OSError, ValueError) as error:
        return f"it cannot be read ({error})"
    if logged != history:
        return (f"it holds {len(logged)} epoch records, the checkpoint {len(history)} (the run was stopped "
                "between the writes)")
    return None


def repair_run_files(out: str | os.PathLike, saver: SaveModel) -> list[str]:
    """Make the model file (``saver``'s) and the metrics log in the run folder ``out`` match
    its checkpoint again; returns what was repaired, one line each (none when all matched)."""
    checkpoint, metrics, said = os.path.join(out, CHECKPOINT), os.path.join(out, METRICS), []
    problem = model_mismatch(saver.path, checkpoint)
    if problem:
        epoch = repair_model(saver, checkpoint)
        said.append(f"repaired {saver.path}: {problem}; rewrote it from the checkpoint (epoch {epoch})")
    history = checkpoint_weights(checkpoint)[1].get("history", [])
    problem = metrics_mismatch(metrics, history)
    if problem:
        write_metrics(out, history)
        said.append(f"repaired {metrics}: {problem}; rewrote it from the checkpoint")
    return said
