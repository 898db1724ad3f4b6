"""The training loop: fit a model epoch by epoch, evaluate it, checkpoint, resume exactly.

The loop reports through callbacks (``on_epoch_start``, ``on_batch_end``, ``on_epoch_end``);
it never prints. With a ``run_dir`` it writes, at the end of every epoch and atomically,
``checkpoint.safetensors`` (weights, optimizer, schedule position, random states, history)
and ``metrics.jsonl`` (one JSON object per epoch). ``resume=True`` continues from the
checkpoint so that the run ends with the same weights as an uninterrupted one.
"""

import json
import math
import os
import time

import numpy as np

from . import functional as F
from .data.download import write_atomic
from .io import load_checkpoint, save_checkpoint
from .tensor import Tensor, no_grad

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


class Callback:
    """Hooks the loop calls; subclass and override what you need (all optional)."""

    def on_epoch_start(self, epoch, epochs, batches):
        pass

    def on_batch_end(self, epoch, batch, stats):
        pass

    def on_epoch_end(self, epoch, record):
        pass


def _batch_stats(logits, labels, loss):
    correct = int(np.count_nonzero(logits.argmax(axis=1) == labels))
    return float(loss) * len(labels), correct


def train_epoch(model, loader, optimizer, loss_fn=F.cross_entropy, scheduler=None,
                on_batch=None, epoch=0):
    """One pass over ``loader`` updating ``model``; returns mean loss, accuracy and speed."""
    model.train()
    total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    for batch, (x, y) in enumerate(loader):
        logits = model(Tensor(x))
        loss = loss_fn(logits, y)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(f"the loss became {value} at epoch {epoch + 1}, batch {batch + 1}; "
                                   "try a lower learning rate")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        batch_loss, batch_correct = _batch_stats(logits.data, y, value)
        total_loss, correct, seen = total_loss + batch_loss, correct + batch_correct, seen + len(y)
        if on_batch is not None:
            on_batch(batch, {"loss": total_loss / seen, "accuracy": correct / seen, "images": seen,
                             "seconds": time.perf_counter() - start, "lr": optimizer.lr})
    seconds = time.perf_counter() - start
    return {"train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1),
            "seconds": seconds, "images_per_s": seen / max(seconds, 1e-9)}


def confusion_matrix(labels, predicted, num_classes):
    """(K, K) counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix


def evaluate(model, loader, loss_fn=F.cross_entropy, num_classes=None):
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted) on ``loader``.

    Returns a dict with ``loss``, ``accuracy``, ``count``, ``confusion`` (ndarray) and
    ``predictions`` / ``probabilities`` (per image, in loader order).
    """
    was_training = model.training
    model.eval()
    total_loss, labels_all, probs_all = 0.0, [], []
    with no_grad():
        for x, y in loader:
            logits = model(Tensor(x))
            total_loss += loss_fn(logits, y).item() * len(y)
            probs_all.append(F.softmax(logits, dim=1).data)
            labels_all.append(np.asarray(y))
    model.train(was_training)
    probs, labels = np.concatenate(probs_all), np.concatenate(labels_all)
    predictions = probs.argmax(axis=1)
    confusion = confusion_matrix(labels, predictions, num_classes or probs.shape[1])
    return {"loss": total_loss / len(labels), "accuracy": float(np.mean(predictions == labels)),
            "count": len(labels), "confusion": confusion, "predictions": predictions,
            "probabilities": probs, "labels": labels}


def _write_metrics(run_dir, history):
    write_atomic(os.path.join(run_dir, METRICS), "".join(json.dumps(r) + "\n" for r in history).encode())


def fit(model, train_loader, optimizer, epochs, val_loader=None, loss_fn=F.cross_entropy,
        scheduler=None, callbacks=(), run_dir=None, rngs=None, resume=False, patience=None):
    """Train for ``epochs`` epochs; returns the history (one dict per epoch).

    Args:
        model, optimizer: what to train and how; ``scheduler`` (optional) steps every batch.
        train_loader, val_loader: iterables of ``(x, y)`` ndarray batches.
        loss_fn: ``loss_fn(logits, labels) -> scalar Tensor``. Default cross-entropy.
        callbacks: :class:`Callback` objects (progress bars, saving the model...).
        run_dir: folder for the checkpoint and metrics log (None: keep nothing on disk).
        rngs (dict name -> numpy Generator): every random stream the run draws from
            (shuffling, augmentation, dropout); saved in checkpoints for exact resumption.
        resume: continue from ``run_dir``'s checkpoint if there is one.
        patience: stop early after this many epochs without a lower validation loss.

    Raises:
        TrainingDiverged: the loss became NaN or infinite (the last checkpoint stays).
    """
    progress = {"epoch": 0, "history": [], "best_val_loss": None, "bad_epochs": 0}
    checkpoint = os.path.join(run_dir, CHECKPOINT) if run_dir else None
    if resume and checkpoint and os.path.exists(checkpoint):
        progress = load_checkpoint(checkpoint, model, optimizer, scheduler, rngs)
        if progress.get("stopped_early"):
            return progress["history"]
    for epoch in range(progress["epoch"], epochs):
        for cb in callbacks:
            cb.on_epoch_start(epoch, epochs, len(train_loader))
        on_batch = (lambda b, s: [cb.on_batch_end(epoch, b, s) for cb in callbacks]) if callbacks else None
        record = {"epoch": epoch + 1, **train_epoch(model, train_loader, optimizer, loss_fn, scheduler, on_batch, epoch),
                  "lr": optimizer.lr}
        if val_loader is not None:
            result = evaluate(model, val_loader, loss_fn)
            record.update(val_loss=result["loss"], val_acc=result["accuracy"])
        progress["history"].append(record)
        progress["epoch"] = epoch + 1
        stop = _early_stop(progress, record, patience)
        progress["stopped_early"] = stop
        if checkpoint:
            save_checkpoint(checkpoint, model, optimizer, scheduler, rngs, progress)
            _write_metrics(run_dir, progress["history"])
        for cb in callbacks:
            cb.on_epoch_end(epoch, record)
        if stop:
            break
    return progress["history"]


def _early_stop(progress, record, patience):
    """Track the best validation loss; True once ``patience`` epochs pass without a new best."""
    if "val_loss" not in record:
        return False
    best = progress["best_val_loss"]
    if best is None or record["val_loss"] < best:
        progress["best_val_loss"], progress["bad_epochs"] = record["val_loss"], 0
        return False
    progress["bad_epochs"] += 1
    return patience is not None and progress["bad_epochs"] >= patience
