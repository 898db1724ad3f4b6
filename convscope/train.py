"""The training loop: fit a model epoch by epoch, evaluate it, checkpoint, resume exactly.

The loop reports through callbacks (``on_epoch_start``, ``on_batch_end``, ``on_epoch_end``);
it never prints. With a ``run_dir`` it writes, at the end of every epoch and atomically,
``checkpoint.safetensors`` (weights, optimizer, schedule position, random states, history)
and ``metrics.jsonl`` (one JSON object per epoch). ``resume=True`` continues from the
checkpoint so that the run ends with the same weights as an uninterrupted one. A callback
stops training cleanly by raising :class:`StopTraining`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from . import functional as F
from . import optim
from .files import write_atomic
from .io import load_best, load_checkpoint, save_checkpoint
from .metrics import confusion_matrix  # noqa: F401  (its home is convscope.metrics)
from .nn import Module, eval_mode
from .optim import LRScheduler, Optimizer
from .tasks import Classification, Task
from .tensor import Tensor, no_grad

CHECKPOINT = "checkpoint.safetensors"
Reduce = Callable[[float, dict[str, Any], int], tuple[float, dict[str, Any], int]]
METRICS = "metrics.jsonl"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


class StopTraining(Exception):
    """Raised by a callback to end training now (a pause or a stop button).

    ``fit`` returns the history of the finished epochs. The run folder keeps what the last
    finished epoch wrote, so resuming continues exactly as if nothing had happened; the
    model in memory holds whatever the interrupted epoch had done. Raised from
    ``on_epoch_end``, the other callbacks still hear of the finished epoch.
    """


class Callback:
    """Hooks the loop calls; subclass and override what you need (all optional).

    ``on_backward_end`` runs after each batch's backward pass and before the optimizer's
    step: the place to clip gradients (:class:`GradientClipping`) or to sum them across the
    processes of a data-parallel run (:class:`convscope.parallel.DataParallel`).
    """

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        pass

    def on_backward_end(self, epoch: int, batch: int, model: Module) -> None:
        pass

    def on_batch_end(self, epoch: int, batch: int, stats: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        pass


class GradientClipping(Callback):
    """Rescale the gradients to an overall L2 norm of at most ``max_norm`` before each step."""

    def __init__(self, max_norm: float) -> None:
        if not max_norm > 0:
            raise ValueError(f"GradientClipping: max_norm must be > 0, got {max_norm!r}")
        self.max_norm = float(max_norm)

    def on_backward_end(self, epoch: int, batch: int, model: Module) -> None:
        optim.clip_grad_norm_(model.parameters(), self.max_norm)


def train_epoch(model: Module, loader: Iterable[tuple[np.ndarray, np.ndarray]], optimizer: Optimizer,
                loss_fn: Callable[[Tensor, np.ndarray], Tensor] = F.cross_entropy, scheduler: LRScheduler | None = None,
                on_batch: Callable[[int, dict[str, float]], object] | None = None, epoch: int = 0,
                task: Task | None = None, after_backward: Callable[[int], object] | None = None,
                reduce: Reduce | None = None) -> dict[str, float]:
    """One pass over ``loader`` updating ``model``; returns mean loss, the task's figures
    (``train_acc`` for classification) and speed.

    ``after_backward(batch)`` (optional) runs between each backward pass and optimizer step.
    ``reduce(loss sum, task sums, images)`` (optional) turns the epoch's sums into those of
    every process of a data-parallel run before the figures are computed.
    """
    task = Classification(loss_fn) if task is None else task
    model.train()
    total_loss, sums, seen, start = 0.0, {}, 0, time.perf_counter()
    for batch, (x, y) in enumerate(loader):
        output = model(Tensor(x))
        loss = task.loss(output, y)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(f"the loss became {value} at epoch {epoch + 1}, batch {batch + 1}; "
                                   "try a lower learning rate")
        optimizer.zero_grad()
        loss.backward()
        if after_backward is not None:
            after_backward(batch)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss, seen = total_loss + value * len(y), seen + len(y)
        sums = _add(sums, task.batch_sums(output.data, y))
        if on_batch is not None:
            figures = task.metrics(sums, seen)
            on_batch(batch, {"loss": total_loss / seen, **_long_names(figures), "images": seen,
                             "seconds": time.perf_counter() - start, "lr": optimizer.lr})
    seconds = time.perf_counter() - start
    if reduce is not None:
        total_loss, sums, seen = reduce(total_loss, sums, seen)
    figures = {f"train_{k}": v for k, v in task.metrics(sums, max(seen, 1)).items()} if seen else {}
    return {"train_loss": total_loss / max(seen, 1), **figures,
            "seconds": seconds, "images_per_s": seen / max(seconds, 1e-9)}


def _add(sums, more):
    """Add a batch's sums to the epoch's: numbers and arrays add, lists (of arrays) join."""
    return {k: sums[k] + v if k in sums else v for k, v in more.items()}


def _long_names(figures):
    """``{"acc": ...}`` as the progress bar's ``{"accuracy": ...}``; other names unchanged."""
    return {("accuracy" if k == "acc" else k): v for k, v in figures.items()}


def evaluate(model: Module, loader: Iterable[tuple[np.ndarray, np.ndarray]],
             loss_fn: Callable[[Tensor, np.ndarray], Tensor] = F.cross_entropy, num_classes: int | None = None,
             task: Task | None = None, details: bool = True) -> dict[str, Any]:
    """The loss and the task's figures on ``loader``, in eval mode, without gradients.

    For classification (the default) the dict has ``loss``, ``accuracy``, ``count``,
    ``confusion`` (rows: true class, columns: predicted) and, per image in loader order,
    ``predictions``, ``probabilities`` and ``labels``. Other tasks give ``loss``, ``count``,
    ``outputs``, ``targets`` and their own figures. Every task's result also has ``figures``:
    its epoch figures (``task.metrics``) over the whole loader, e.g. ``{"acc": 0.98}``.
    ``details=False`` gives only ``loss``, ``count`` and ``figures`` (what each epoch's validation
    needs; a detector's full account, mAP at ten IoU thresholds, costs far more than its epoch figure).
    """
    task = Classification(loss_fn, num_classes) if task is None else task
    total_loss, targets_all, outputs_all = 0.0, [], []
    with eval_mode(model), no_grad():
        for x, y in loader:
            output = model(Tensor(x))
            total_loss += task.loss(output, y).item() * len(y)
            outputs_all.append(output.data)
            targets_all.append(np.asarray(y))
    outputs, targets = np.concatenate(outputs_all), np.concatenate(targets_all)
    result = {"loss": total_loss / len(targets), "count": len(targets),
              "figures": task.metrics(task.batch_sums(outputs, targets), len(targets))}
    if not details:
        return result
    result.update(task.evaluate(outputs, targets))
    if isinstance(task, Classification):
        result["labels"] = targets
    else:
        result.update(outputs=outputs, targets=targets)
    return result


def write_metrics(run_dir: str | os.PathLike, history: Sequence[dict[str, Any]]) -> None:
    """Write ``run_dir/metrics.jsonl``: one JSON object per epoch record of ``history``."""
    write_atomic(os.path.join(run_dir, METRICS), "".join(json.dumps(r) + "\n" for r in history).encode())


def fit(model: Module, train_loader: Iterable[tuple[np.ndarray, np.ndarray]], optimizer: Optimizer, epochs: int,
        val_loader: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
        loss_fn: Callable[[Tensor, np.ndarray], Tensor] = F.cross_entropy, scheduler: LRScheduler | None = None,
        callbacks: Sequence[Callback] = (), run_dir: str | os.PathLike | None = None,
        rngs: dict[str, np.random.Generator] | None = None, resume: bool = False, patience: int | None = None,
        task: Task | None = None, reduce: Reduce | None = None, save: bool = True) -> list[dict[str, float]]:
    """Train for ``epochs`` epochs; returns the history (one dict per epoch).

    Args:
        model, optimizer: what to train and how; ``scheduler`` (optional) steps every batch.
        train_loader, val_loader: iterables of ``(x, y)`` ndarray batches.
        loss_fn: ``loss_fn(logits, labels) -> scalar Tensor`` of the default classification
            task. Default cross-entropy.
        task (:class:`~convscope.tasks.Task`): the loss and the figures for other targets
            (default ``Classification(loss_fn)``).
        callbacks: :class:`Callback` objects (progress bars, saving the model, gradient
            clipping...).
        run_dir: folder for the checkpoint and metrics log (None: keep nothing on disk).
        rngs (dict name -> numpy Generator): every random stream the run draws from
            (shuffling, augmentation, dropout); saved in checkpoints for exact resumption.
        resume: continue from ``run_dir``'s checkpoint if there is one.
        patience: stop early after this many epochs without a lower validation loss; the
            model then holds the weights of the best epoch (the last record says which:
            ``stopped_early``, ``best_epoch``).
        reduce, save: for the ranks of a data-parallel run (:mod:`convscope.parallel`): the
            epoch's sums over every rank (see :func:`train_epoch`), and False on every rank
            but the first, which reads ``run_dir``'s checkpoint to resume but writes nothing.

    Raises:
        TrainingDiverged: the training or validation loss, a weight or the optimizer's state
            became NaN or infinite; the checkpoint of the last good epoch stays as it was.

    A callback that raises :class:`StopTraining` ends the run at once: the history of the
    finished epochs is returned and the checkpoint stays that of the last finished epoch.
    """
    task = Classification(loss_fn) if task is None else task
    progress = {"epoch": 0, "history": [], "best_val_loss": None, "bad_epochs": 0}
    checkpoint = os.path.join(run_dir, CHECKPOINT) if run_dir else None
    best = None  # the weights of the epoch with the lowest validation loss so far
    if resume and checkpoint and os.path.exists(checkpoint):
        progress = load_checkpoint(checkpoint, model, optimizer, scheduler, rngs)
        best = load_best(checkpoint)
        if progress.get("stopped_early"):
            return progress["history"]
    for epoch in range(progress["epoch"], epochs):
        try:
            for cb in callbacks:
                cb.on_epoch_start(epoch, epochs, len(train_loader))
            hooks = _batch_hooks(callbacks, epoch, model)
            record = {"epoch": epoch + 1, **train_epoch(model, train_loader, optimizer, scheduler=scheduler,
                                                        epoch=epoch, task=task, reduce=reduce, **hooks),
                      "lr": optimizer.lr}
        except StopTraining:  # mid-epoch: nothing of this epoch is kept
            break
        if val_loader is not None:
            result = evaluate(model, val_loader, task=task, details=False)
            record["val_loss"] = result["loss"]
            record.update({f"val_{k}": v for k, v in result["figures"].items()})
        check_finite(model, optimizer, record, kept=progress["epoch"] if checkpoint else None)
        progress["history"].append(record)
        progress["epoch"] = epoch + 1
        stop = _early_stop(progress, record, patience)
        if patience is not None and progress.get("best_epoch") == epoch + 1:  # what early stopping keeps
            best = {name: np.array(value, copy=True) for name, value in model.state_dict().items()}
        progress["stopped_early"] = stop
        if stop and best is not None:  # keep the best epoch's weights, and say so in the record
            model.load_state_dict(best)
            record.update(stopped_early=True, best_epoch=progress["best_epoch"])
        if checkpoint and save:
            save_checkpoint(checkpoint, model, optimizer, scheduler, rngs, progress, best=best)
            write_metrics(run_dir, progress["history"])
        if _epoch_end(callbacks, epoch, record) or stop:
            break
    return progress["history"]


def check_finite(model: Module, optimizer: Optimizer, record: dict[str, float], kept: int | None = None) -> None:
    """Raise :class:`TrainingDiverged` if the epoch that ``record`` closes left a NaN or
    infinite validation loss, weight, buffer or optimizer state; called before its checkpoint
    is written, so the last checkpoint is always a good one. ``kept``: the epoch that
    checkpoint holds (for the message; None: nothing is saved).

    >>> from convscope import nn, optim
    >>> layer = nn.Linear(2, 1, rng=np.random.default_rng(0))
    >>> check_finite(layer, optim.SGD(layer.parameters(), lr=0.1), {"epoch": 1, "val_loss": 0.5})
    >>> try:
    ...     check_finite(layer, optim.SGD(layer.parameters(), lr=0.1), {"epoch": 1, "val_loss": float("nan")})
    ... except TrainingDiverged as error:
    ...     print(error)
    the validation loss became nan at epoch 1; nothing was saved; try a lower learning rate
    """
    bad = None
    if "val_loss" in record and not math.isfinite(record["val_loss"]):
        bad = f"the validation loss became {record['val_loss']}"
    arrays = [(f"the weight {name}", value) for name, value in model.state_dict().items()]
    arrays += [(f"the optimizer's state {name}", value) for name, value in optimizer.state_dict()["state"].items()]
    if bad is None:
        bad = next((f"{what} holds NaN or infinite values" for what, value in arrays
                    if not np.all(np.isfinite(value))), None)
    if bad is not None:
        saved = "nothing was saved" if kept is None else (
            f"the checkpoint of epoch {kept} is kept" if kept else "no checkpoint was written")
        raise TrainingDiverged(f"{bad} at epoch {record['epoch']}; {saved}; try a lower learning rate")


def _epoch_end(callbacks, epoch, record):
    """Tell every callback the epoch ended; True if one raised StopTraining (the rest still hear)."""
    asked = False
    for cb in callbacks:
        try:
            cb.on_epoch_end(epoch, record)
        except StopTraining:
            asked = True
    return asked


def _batch_hooks(callbacks, epoch, model):
    """The per-batch hooks of ``train_epoch`` that call every callback (None without any)."""
    if not callbacks:
        return {"on_batch": None, "after_backward": None}

    def on_batch(batch, stats):
        for cb in callbacks:
            cb.on_batch_end(epoch, batch, stats)

    def after_backward(batch):
        for cb in callbacks:
            cb.on_backward_end(epoch, batch, model)

    return {"on_batch": on_batch, "after_backward": after_backward}


def _early_stop(progress, record, patience):
    """Track the best validation loss; True once ``patience`` epochs pass without a new best."""
    if "val_loss" not in record:
        return False
    best = progress["best_val_loss"]
    if best is None or record["val_loss"] < best:
        progress["best_val_loss"], progress["bad_epochs"] = record["val_loss"], 0
        progress["best_epoch"] = record.get("epoch")
        return False
    progress["bad_epochs"] += 1
    return patience is not None and progress["bad_epochs"] >= patience
