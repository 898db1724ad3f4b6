"""A progress bar for training epochs, printed to stderr (callers own printing)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..train import Callback


def _clock(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar(Callback):
    """One line per epoch that redraws in place on a terminal:

    ``epoch  3/20 [#########-----------]  45%  60/133  loss 0.1234  acc 96.50%  5400 img/s  ETA 0:05``

    followed by a validation line. Off a terminal (CI logs) only the end-of-epoch lines print.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last_draw = 0.0

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        self.epoch, self.epochs, self.batches = epoch, epochs, batches

    def _line(self, batch, stats):
        done = (batch + 1) / max(self.batches, 1)
        filled = int(self.width * done)
        speed = stats["images"] / max(stats["seconds"], 1e-9)
        eta = stats["seconds"] / done - stats["seconds"]
        return (f"epoch {self.epoch + 1:>2}/{self.epochs} [{'#' * filled}{'-' * (self.width - filled)}] "
                f"{done:4.0%} {batch + 1:>4}/{self.batches}  loss {stats['loss']:.4f}  "
                f"{figures(stats)}{speed:6.0f} img/s  ETA {_clock(eta)}")

    def on_batch_end(self, epoch: int, batch: int, stats: dict[str, float]) -> None:
        self.stats = (batch, stats)
        now = time.perf_counter()
        if self.live and (now - self.last_draw > 0.1 or batch + 1 == self.batches):
            self.stream.write("\r" + self._line(batch, stats))
            self.stream.flush()
            self.last_draw = now

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        if getattr(self, "stats", None) is not None:  # an epoch of no batches has no line
            batch, stats = self.stats
            line = self._line(batch, _epoch_figures(stats, record))
            self.stream.write(("\r" + line if self.live else line) + "\n")
            self.stats = None
        if "val_loss" in record:
            val = {k[4:]: v for k, v in record.items() if k.startswith("val_") and k != "val_loss"}
            self.stream.write(f"           validation  loss {record['val_loss']:.4f}  "
                              f"{figures(val)}({record['seconds']:.1f} s train)\n")
        self.stream.flush()


def _epoch_figures(stats, record):
    """The last batch's running figures, with the loss and figures of the epoch's record instead
    (the same in one process; over every process of a data-parallel run, where the batches'
    figures are process 0's)."""
    short = {"accuracy": "acc"}
    return {k: v if k in ("images", "seconds", "lr") else record.get(f"train_{short.get(k, k)}", v)
            for k, v in stats.items()}


def figures(stats: dict[str, float]) -> str:
    """A task's figures for the bar: ``acc 96.50%`` for accuracy, ``mpe 0.84 px`` for the mean
    position error, ``mae 0.0123`` for others."""
    parts = []
    for key, value in stats.items():
        if key in ("accuracy", "acc"):
            parts.append(f"acc {value:6.2%}  ")
        elif key == "mpe":  # mean position error
            parts.append(f"mpe {value:.2f} px  ")
        elif key not in ("loss", "images", "seconds", "lr"):
            parts.append(f"{key} {value:.4g}  ")
    return "".join(parts)
