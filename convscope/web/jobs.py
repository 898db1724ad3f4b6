"""One training run at a time, in a thread, watched from the page (ConvNetJS's view).

The run is set up by :func:`convscope.runs.prepare_run` and trained by ``Run.train``, as
``convscope train`` does it, so its folder is exactly what the command writes and the
command can resume it. A :class:`Watcher` callback records the loss after every batch,
draws the first conv layer's filters and a fixed validation image's feature maps about
once a second, holds the loop while paused, and ends it (``StopTraining``) when stopped.
Every finished epoch is checkpointed by the loop itself: killing the server loses at most
the epoch in progress, and the run is then listed as resumable.

A run's state: running -> pausing -> paused -> running ..., then stopping -> stopped, or
writing the report -> finished, or failed. The buttons change it only from the states they
apply to (:meth:`Job.command`), so a run that has just ended keeps the state it ended in.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import models
from ..data import DATASETS, DatasetNotFoundError, normalise
from ..locks import FolderBusy
from ..runs import RunOptions, find_runs, prepare_run, read_run_config
from ..tensor import Tensor
from ..trace import trace
from ..train import Callback, StopTraining, TrainingDiverged
from ..viz import gallery
from ..viz.activations import conv_layers
from ..viz.render import data_uri
from .errors import WebError
from .rasters import raster

SNAPSHOT_SECONDS = 1.0  # how often filters and maps are redrawn while training
CURVE_POINTS = 4000     # batch losses kept for the curve (older ones thinned out)
OPTIMIZERS = ("sgd", "adam", "adamw")
log = logging.getLogger("convscope.web")


def _finite(value) -> float | None:
    """A figure for JSON: rounded, or None where there is none (or it is not finite)."""
    return round(float(value), 6) if value is not None and np.isfinite(value) else None


def _number(body, key, kind, lo, hi):
    value = body.get(key)
    if value is None:
        return None
    allowed = (int, float) if kind is float else int
    if isinstance(value, bool) or not isinstance(value, allowed) or not lo <= value <= hi:
        raise WebError(f"expected {key!r} to be a {'number' if kind is float else 'whole number'} from {lo} to "
                       f"{hi}, got {value!r}")
    return kind(value)


def _choice(body, key, choices):
    value = body.get(key)
    if value is not None and value not in choices:
        raise WebError(f"expected {key!r} to be one of {', '.join(choices)}, got {value!r}")
    return value


def inside(path: str, root: Path) -> bool:
    """Whether ``path`` (relative to the working folder, links followed) lies in ``root``."""
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):  # a name the file system cannot hold (a NUL byte, a link loop)
        return False


def restartable(info) -> bool:
    """A run stopped in its first epoch: its run.json is there, no epoch was checkpointed."""
    return not info.resumable and not info.finished and info.done == 0 and info.problem is None \
        and info.epochs is not None and not info.training


class Watcher(Callback):
    """What the page sees of a run: progress, the loss curve, pictures; pause and stop."""

    def __init__(self, job: Job) -> None:
        self.job, self.last_picture = job, 0.0

    def on_epoch_start(self, epoch, epochs, batches):
        self.job.set(epoch=epoch, epochs=epochs, batches=batches, batch=0)

    def on_batch_end(self, epoch, batch, stats):
        job = self.job
        job.add_point(epoch * job.state["batches"] + batch + 1, stats)
        if time.monotonic() - self.last_picture >= SNAPSHOT_SECONDS:
            self.last_picture = time.monotonic()
            job.draw()
        job.wait_while_paused()

    def on_epoch_end(self, epoch, record):
        self.job.add_epoch(record)
        self.job.draw()


class Job:
    """One run in its thread; ``state`` is what :meth:`status` reports."""

    def __init__(self, run) -> None:
        self.run, self.guard = run, threading.Lock()
        self.paused, self.stopping = threading.Event(), threading.Event()
        self.interrupted = False  # the loop was ended by a stop (not by reaching its last epoch)
        self.sample = normalise(run.val_set.images[:1], run.train_set.mean, run.train_set.std).astype(np.float32)
        self.state = {"state": "running", "run": str(run.out), "model": run.name, "data": run.data,
                      "settings": dict(run.config), "notes": list(run.notes), "epoch": run.done,
                      "epochs": run.epochs, "batch": 0, "batches": len(run.train_loader), "curve": [],
                      "history": [], "error": None, "pictures": 0, "filters": None, "maps": None,
                      "started": time.time()}
        self.thread = threading.Thread(target=self._work, name=f"training {run.out}", daemon=True)

    def set(self, **changes) -> None:
        with self.guard:
            self.state.update(changes)

    def add_point(self, step, stats) -> None:
        with self.guard:
            curve = self.state["curve"]
            curve.append([step, _finite(stats.get("loss")), _finite(stats.get("acc"))])
            if len(curve) > CURVE_POINTS:
                del curve[1::2]  # keep the shape of the curve, half as dense
            self.state["batch"] = step - self.state["epoch"] * self.state["batches"]

    def add_epoch(self, record) -> None:
        with self.guard:
            self.state["history"].append({k: (_finite(v) if isinstance(v, float) else v) for k, v in record.items()})
            self.state["epoch"] = int(record["epoch"])

    def draw(self) -> None:
        """The first conv layer's filters and the sample's feature maps, as they are now."""
        model = self.run.model
        convs = conv_layers(model)
        filters = (data_uri(gallery.filter_picture(convs[0][0], convs[0][1].weight.data, True))
                   if convs else None)
        t = trace(model, Tensor(self.sample))
        maps = [dict(raster(layer.values[0]), name=layer.name) for layer in t.layers
                if layer.values is not None and layer.values.ndim == 4][:6]
        with self.guard:
            self.state.update(filters=filters, maps=maps, pictures=self.state["pictures"] + 1)

    def command(self, verb: str, state: str, allowed: tuple[str, ...], signal) -> None:
        """A button: move to ``state`` and ``signal()`` the loop, if the run is in one of the
        ``allowed`` states (checked and changed under the guard the loop's changes take too);
        else a 409 saying what the run is doing."""
        with self.guard:
            now = self.state["state"]
            if now not in allowed:
                raise WebError(f"cannot {verb} the run: it is {now} ({verb} applies to a run that is "
                               f"{' or '.join(allowed)})", 409)
            self.state["state"] = state
            signal()

    def wait_while_paused(self) -> None:
        while self.paused.is_set() and not self.stopping.is_set():
            with self.guard:  # paused (again, if a resume and a pause came quickly), unless stopped
                if self.state["state"] == "pausing":
                    self.state["state"] = "paused"
            self.stopping.wait(0.05)
        if self.stopping.is_set():
            self.interrupted = True
            raise StopTraining

    def _work(self) -> None:
        try:
            self.draw()
            self.run.train([Watcher(self)])
            if self.interrupted:
                self.set(state="stopped")
                return
            from ..viz.report import write_report
            self.set(state="writing the report")
            write_report(self.run.out, dataset=self.run.val_set)
            self.set(state="finished")
        except TrainingDiverged as error:
            self.set(state="failed", error=str(error))
        except Exception as error:  # noqa: BLE001  (the page must hear of it; the log has the details)
            log.exception("training %s failed", self.run.out)
            self.set(state="failed", error=f"{type(error).__name__}: {error}")
        finally:
            self.run.close()  # the folder may be trained again (by the page or the command line)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def status(self, since: int | None = None) -> dict[str, Any]:
        with self.guard:
            state = dict(self.state, curve=list(self.state["curve"]), history=list(self.state["history"]))
        if since is not None and since == state["pictures"]:
            state.pop("filters"), state.pop("maps")  # the page has these already
        return state


class Trainer:
    """Starts runs under ``root`` (one at a time) and answers for the current one."""

    def __init__(self, root: str | Path = "runs", data_dir: str | None = None) -> None:
        self.root, self.data_dir = Path(root), data_dir
        self.folders = Path.cwd().resolve()  # image folders the page may train on lie in here
        self.job: Job | None = None
        self._starting = threading.Lock()

    def _folder(self, body, model, data) -> str:
        name = body.get("out")
        if name is not None and (not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,80}", name)):
            raise WebError(f"expected \"out\" to be a folder name (letters, digits, . _ -), got {name!r}")
        if name is None:
            stem = f"{model}-{Path(data).name or 'data'}"
            name, k = stem, 2
            while (self.root / name).exists():
                name, k = f"{stem}-{k}", k + 1
        elif (self.root / name).exists():
            raise WebError(f"{self.root / name} already exists; choose another name, or resume it", 409)
        return str(self.root / name)

    def _resume_options(self, run_id) -> RunOptions:
        runs = {str(info.path): info for info in find_runs(self.root)}
        info = runs.get(run_id) if isinstance(run_id, str) else None
        if info is not None and info.resumable:
            return RunOptions(out=run_id, resume=True, data_dir=self.data_dir)
        if info is not None and restartable(info):  # stopped in its first epoch: start it again, as it was set up
            saved, _ = read_run_config(run_id)
            recipe = {k: saved[k] for k in ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule")}
            return RunOptions(model=saved["model"], data=saved["data"], seed=saved["seed"], out=run_id,
                              augment=bool(saved["augment"]), patience=saved.get("patience"),
                              data_dir=self.data_dir, **recipe)
        offered = ", ".join(p for p, i in runs.items() if i.resumable or restartable(i)) or "none"
        raise WebError(f"cannot resume {run_id!r}: not a resumable run under {self.root} (resumable: {offered})", 404)

    def options(self, body: dict[str, Any]) -> RunOptions:
        """The :class:`~convscope.runs.RunOptions` a start request asks for, checked."""
        if body.get("resume") is not None:
            return self._resume_options(body["resume"])
        model = _choice(body, "model", tuple(sorted(models.ZOO))) or "lenet5"
        data = self._data(body)
        augment = body.get("augment", True)
        if not isinstance(augment, bool):
            raise WebError(f"expected \"augment\" to be true or false, got {augment!r}")
        return RunOptions(model=model, data=data, data_dir=self.data_dir, augment=augment,
                          epochs=_number(body, "epochs", int, 1, 1000),
                          batch_size=_number(body, "batch_size", int, 1, 4096),
                          lr=_number(body, "lr", float, 1e-6, 10.0), optimizer=_choice(body, "optimizer", OPTIMIZERS),
                          seed=_number(body, "seed", int, 0, 2**31 - 1), out=self._folder(body, model, data))

    def _data(self, body) -> str:
        """A dataset name, or an image folder (or .npz file) inside the folder the server was
        started in: a page, maybe another computer's, must not read the server's other files."""
        data = body.get("data") or "digits"
        if not isinstance(data, str):
            raise WebError(f"expected \"data\" to be a dataset name or an image folder, got {data!r}")
        if data not in DATASETS and not inside(data, self.folders):
            raise WebError(f"expected \"data\" to be a dataset ({', '.join(sorted(DATASETS))}) or a folder inside "
                           f"the folder the server was started in, got {data!r}", 403)
        return data

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set the run up now (errors answered at once), then train it in a thread."""
        if not self._starting.acquire(blocking=False):
            raise WebError("a training run is being set up already", 409)
        try:
            if self.job is not None and self.job.alive:
                raise WebError(f"a training run is going already ({self.job.state['run']}); stop it first", 409)
            try:
                run = prepare_run(self.options(body))
            except DatasetNotFoundError as error:
                raise WebError(str(error), 404) from None
            except FolderBusy as error:  # e.g. `convscope train --resume` on it in a terminal
                raise WebError(str(error), 409) from None
            except (ValueError, OSError) as error:
                raise WebError(str(error), 422) from None
            self.job = Job(run)
            self.job.thread.start()
        finally:
            self._starting.release()
        return self.job.status()

    def status(self, since: Any = None) -> dict[str, Any]:
        try:
            since = int(since) if since is not None else None
        except ValueError:
            raise WebError(f"expected \"since\" to be a whole number, got {since!r}") from None
        return {"state": "idle"} if self.job is None else self.job.status(since)

    def _running(self) -> Job:
        if self.job is None or not self.job.alive:
            raise WebError("no training run is going", 409)
        return self.job

    def pause(self) -> dict[str, Any]:
        job = self._running()
        job.command("pause", "pausing", ("running",), job.paused.set)
        return job.status()

    def resume(self) -> dict[str, Any]:
        job = self._running()
        job.command("resume", "running", ("pausing", "paused"), job.paused.clear)
        return job.status()

    def stop(self) -> dict[str, Any]:
        job = self._running()
        job.command("stop", "stopping", ("running", "pausing", "paused"), job.stopping.set)
        return job.status()
