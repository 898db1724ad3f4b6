"""Training runs: set one up, train it, find the runs in a folder.

A run folder is what ``convscope train`` writes: ``run.json`` (the settings), the loop's
``checkpoint.safetensors`` and ``metrics.jsonl``, and ``model.safetensors`` after every
epoch (after the checkpoint; resuming rewrites a model file a stop left behind it, see
:mod:`convscope.run_model`, and removes what killed writes left). The command line and the
web explorer both go through this module, so a run started by one can be resumed by the
other::

    run = prepare_run(RunOptions(model="lenet5", data="digits", epochs=5, out="runs/a"))
    history = run.train()                       # or run.train([ProgressBar()])
    prepare_run(RunOptions(out="runs/a", resume=True)).train()   # after a stop

Nothing here prints: what a person should read (resuming, extending, how the data was read)
is collected in ``Run.notes``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import models
from .data import DATASETS, SCENE_DATASETS, DataLoader, Dataset, load_splits, load_user_splits
from .files import remove_temporaries, write_atomic
from .io import RUN_MODEL, checkpoint_progress
from .locks import FolderLock, is_locked
from .nn import Module, Parameter
from .optim import LRScheduler, Optimizer
from .parallel import DataParallel, ShardedLoader, World
from .recipes import Recipe, make_augment, make_optimizer, make_scheduler, recipe_for
from .run_model import SaveModel, repair_run_files
from .tasks import Classification, Detection, Segmentation, Task, task_for
from .tensor import ShapeError, Tensor, no_grad
from .train import CHECKPOINT, Callback, fit

RUN_CONFIG = "run.json"
DATASET_NAMES = tuple(sorted(DATASETS)) + tuple(sorted(SCENE_DATASETS))  # scenes: made from the digits
# the settings --resume takes from run.json; giving another value for one of them is refused
RESUMABLE = ("model", "data", "seed", "optimizer", "lr", "weight_decay", "schedule", "batch_size", "augment",
             "patience")


@dataclass
class RunOptions:
    """The options of ``convscope train``; None means "the recipe's" (or, resuming, "the run's")."""

    model: str | None = None          # zoo name (default lenet5)
    data: str | None = None           # dataset name, image folder or .npz file (default digits)
    data_dir: str | None = None       # folder searched for dataset files before the cache
    download: bool = False
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    augment: bool = True              # False: no augmentation (default: the recipe's)
    patience: int | None = None       # early stopping (default: never)
    seed: int | None = None           # default 0
    out: str | None = None            # run folder (default runs/MODEL-DATA)
    resume: bool = False              # continue the run in ``out`` with its own settings
    extend: bool = False              # with resume and more epochs: train it on to that many


@dataclass(eq=False)
class Run:
    """A run set up by :func:`prepare_run`, ready to :meth:`train`."""

    out: str
    name: str                         # the model's zoo name
    data: str
    config: dict[str, Any]            # what run.json holds
    recipe: Recipe
    model: Module
    task: Task                        # chosen from the data's targets (tasks.task_for)
    train_set: Dataset
    val_set: Dataset
    train_loader: DataLoader | ShardedLoader  # sharded: one rank of a data-parallel run
    val_loader: DataLoader
    optimizer: Optimizer
    scheduler: LRScheduler | None
    rngs: dict[str, np.random.Generator]
    done: int                         # epochs finished before this session
    resume: bool
    notes: list[str] = field(default_factory=list)
    lock: FolderLock | None = None    # held from run.json's writing until training ends
    world: World | None = None        # the ranks of a data-parallel run (None: one process)

    @property
    def epochs(self) -> int:
        return self.recipe.epochs

    @property
    def model_path(self) -> str:
        return os.path.join(self.out, RUN_MODEL)

    def train(self, callbacks: Sequence[Callback] = ()) -> list[dict[str, float]]:
        """Train to the end (or until a callback raises :class:`~convscope.train.StopTraining`);
        returns the history of the finished epochs. ``callbacks`` run before the one that
        writes the model file after every epoch. In a data-parallel run every rank calls it
        (the first with its callbacks, the others usually without); only rank 0 writes files."""
        first, world = self.world is None or self.world.rank == 0, self.world
        callbacks = [*callbacks, SaveModel(self.model_path, self.model, self.train_set, self.config, self.task)
                     ] if first else list(callbacks)
        if world is not None:  # first, so the others see the averaged gradients
            callbacks.insert(0, DataParallel(world, self.model, self.train_loader))
        try:
            return fit(self.model, self.train_loader, self.optimizer, self.epochs, self.val_loader,
                       scheduler=self.scheduler, callbacks=callbacks, run_dir=self.out, rngs=self.rngs,
                       resume=self.resume, patience=self.config["patience"], task=self.task,
                       reduce=None if world is None else world.reduce_sums, save=first)
        finally:
            self.close()

    def close(self) -> None:
        """Let others train the folder again (done by :meth:`train` when it ends)."""
        if self.lock is not None:
            self.lock.release()


def prepare_run(options: RunOptions, notes: list[str] | None = None, world: World | None = None) -> Run:
    """Check the options, load the data, build the model and write ``run.json``: a :class:`Run`.

    Refusals (an existing run without ``resume``, other settings than the run's, ...) raise
    ValueError before anything is written. The lines to tell the user are appended to
    ``notes`` as they arise (so a caller also has those said before a refusal); ``Run.notes``
    is that list.

    ``world`` (from :func:`convscope.parallel.connect`) sets up one rank of a data-parallel
    run: every rank calls this, each with the same options; only rank 0 writes.
    """
    notes = [] if notes is None else notes
    out, resuming = _folder(options, notes)
    name, data, seed, recipe, planned, patience = _settings(options, out, resuming)
    ranks = 1 if world is None else world.size
    _check_ranks(out, resuming, ranks)
    done = _epochs_done(out, resuming, recipe, planned)
    train_set, val_set = load_data(data, ("train", "val"), options.data_dir, options.download,
                                   models.ZOO_INPUTS.get(name, (1, 28, 28)), notes=notes)
    init_seed, loader_seed = np.random.SeedSequence(seed).spawn(2)
    init_rng, loader_rng = np.random.default_rng(init_seed), np.random.default_rng(loader_seed)
    task = _task(name, train_set)
    model = models.build(name, rng=init_rng, in_channels=train_set.images.shape[1], **_outputs(task, train_set))
    _check_fits(model, name, train_set, task)
    train_loader = DataLoader(train_set, recipe.batch_size, shuffle=True, rng=loader_rng,
                              augment=make_augment(recipe.augment, train_set.images.shape[2:]))
    if world is not None:  # each rank trains on its slice of every global batch
        train_loader = ShardedLoader(train_loader, world, seed)
    optimizer = make_optimizer(recipe, model.parameters())
    scheduler = make_scheduler(recipe, optimizer, recipe.epochs * len(train_loader))
    config = {"model": name, "data": data, "seed": seed, **recipe.__dict__, "patience": patience,
              **({"ranks": ranks} if ranks > 1 else {})}
    if resuming:
        notes.append(f"resuming {out} from epoch {done} of {recipe.epochs}")
    if resuming and recipe.epochs != planned:
        notes.append(_extending(recipe, planned, len(train_loader), done))
    lock = None
    if world is None or world.rank == 0:
        os.makedirs(out, exist_ok=True)
        lock = FolderLock(out)  # refused (FolderBusy) while another process trains this folder
        try:
            _settle(out, resuming, SaveModel(os.path.join(out, RUN_MODEL), model, train_set, config, task), notes)
        except BaseException:
            lock.release()
            raise
    shared = f" shared by {ranks} processes" if ranks > 1 else ""
    notes.append(f"training {name} on {data}: {len(train_set)} train / {len(val_set)} val images, "
                 f"{recipe.optimizer} lr {recipe.lr:g} {recipe.schedule}, batch {recipe.batch_size}{shared}, "
                 f"{recipe.epochs} epochs, augment {recipe.augment or 'none'} -> {out}")
    return Run(out=out, name=name, data=data, config=config, recipe=recipe, model=model, task=task,
               train_set=train_set,
               val_set=val_set, train_loader=train_loader, val_loader=DataLoader(val_set, batch_size=500),
               optimizer=optimizer, scheduler=scheduler, rngs={"init": init_rng, "loader": loader_rng}, done=done,
               resume=options.resume, notes=notes, lock=lock, world=world)


def _check_ranks(out, resuming, ranks):
    """Refuse to resume a run with another number of processes than it was trained with."""
    saved = (read_run_config(out)[0] or {}).get("ranks", 1) if resuming else ranks
    if saved != ranks:
        how = "without mpiexec" if saved == 1 else f"with mpiexec -n {saved}"
        raise ValueError(f"{out} was trained by {saved} process{'es' if saved > 1 else ''}, not {ranks}: resume it "
                         f"{how}. Its global batches would be the same, but each process's augmentation stream "
                         "and BatchNorm batch statistics depend on the number, so the run would not continue "
                         "exactly as it was")


def _settle(out, resuming, saver, notes):
    """With the folder locked: clear what killed writes left, write run.json and, resuming, make
    the model file and metrics log match the checkpoint again if a stop fell between their writes."""
    for path in remove_temporaries(out):
        notes.append(f"removed {path}, left by an interrupted write")
    write_atomic(os.path.join(out, RUN_CONFIG), json.dumps(saver.run_config, indent=2).encode())
    if resuming:
        notes += repair_run_files(out, saver)


def _folder(options, notes):
    """The run folder, and whether there is a run in it to resume."""
    if options.extend and not options.resume:
        raise ValueError("--extend continues a finished or interrupted run: pass --resume with it")
    out = options.out or os.path.join("runs", f"{options.model or 'lenet5'}-{options.data or 'digits'}")
    has_checkpoint = os.path.exists(os.path.join(out, CHECKPOINT))
    if has_checkpoint and not options.resume:
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    if options.resume and not has_checkpoint:
        notes.append(f"note: {out} has no checkpoint to resume; starting a new run")
    return out, options.resume and has_checkpoint


def _epochs_done(out, resuming, recipe, planned):
    """Epochs the checkpoint in ``out`` holds (0 for a new run); a run that stopped early is not extended."""
    progress = checkpoint_progress(os.path.join(out, CHECKPOINT)) if resuming else {}
    done = progress.get("epoch", 0)
    if progress.get("stopped_early") and recipe.epochs != planned:
        raise ValueError(f"{out} stopped early at epoch {done} (its validation loss had stopped improving), so "
                         "there is nothing to extend; start a new run with another --out")
    return done


def _recipe(options, model, data):
    """The recipe of a new run: the model's defaults with the options given."""
    recipe = recipe_for(model, data)
    for name in ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule"):
        if getattr(options, name) is not None:
            setattr(recipe, name, getattr(options, name))
    if not options.augment:
        recipe.augment = {}
    if recipe.epochs < 1 or recipe.batch_size < 1 or recipe.lr <= 0:
        raise ValueError(f"epochs and batch size must be >= 1 and lr > 0, got {recipe.epochs}, "
                         f"{recipe.batch_size}, {recipe.lr}")
    return recipe


def read_run_config(out: str | os.PathLike) -> tuple[dict[str, Any] | None, str | None]:
    """``(settings, None)`` from ``out/run.json``, or ``(None, why it cannot be used)`` when it
    cannot be read or lacks a setting needed to continue the run."""
    try:
        with open(os.path.join(out, RUN_CONFIG)) as f:
            saved = json.load(f)
    except (OSError, ValueError) as error:
        return None, f"its run.json (what the run was trained with) cannot be read ({error})"
    needed = ("model", "data", "seed", "epochs") + tuple(Recipe.__dataclass_fields__)
    missing = [k for k in needed if not isinstance(saved, dict) or k not in saved]
    if missing:
        return None, f"its run.json does not record {', '.join(missing)}, so the run cannot be continued as it was"
    return saved, None


def _resumed(out, options):
    """The settings of the run in ``out`` for resume, checked against the options given:
    an option that differs from the run's is refused (nothing is written), and so is a
    different epochs without extend. Returns (settings dict, epochs the run was set up for)."""
    saved, problem = read_run_config(out)
    if problem:
        raise ValueError(f"cannot resume {out}: {problem}; start a new run with another --out")
    asked = {name: getattr(options, name) for name in RESUMABLE if name != "augment"}
    if not options.augment:
        asked["augment"] = {}
    differs = [f"--{name.replace('_', '-')} {value} (the run used {saved.get(name)})"
               for name, value in asked.items() if value is not None and value != saved.get(name)
               and not (name == "patience" and "patience" not in saved)]  # older runs did not record it
    if differs:
        raise ValueError(f"cannot resume {out} with other settings than its own: {'; '.join(differs)}. "
                         "Leave these options out to continue the run as it was, or choose another --out")
    planned, epochs, extend = int(saved["epochs"]), options.epochs, options.extend
    if epochs is not None and epochs != planned and not extend:
        raise ValueError(f"{out} was set up for {planned} epochs; to train it on to {epochs}, pass --extend "
                         "as well (its learning-rate schedule will be stretched to the new length)")
    if epochs is not None and extend and epochs < planned:
        raise ValueError(f"--extend trains a run for longer: {epochs} epochs is fewer than its {planned}")
    return dict(saved, epochs=epochs if extend and epochs else planned), planned


def _settings(options, out, resuming):
    """(model name, data name, seed, recipe, epochs planned before, patience) for this run."""
    if resuming:
        saved, planned = _resumed(out, options)
        fields = {k: saved[k] for k in Recipe.__dataclass_fields__ if k in saved}
        patience = options.patience if options.patience is not None else saved.get("patience")
        return saved["model"], saved["data"], saved["seed"], Recipe(**fields), planned, patience
    model, data = options.model or "lenet5", options.data or "digits"
    recipe = _recipe(options, model, data)
    return model, data, 0 if options.seed is None else options.seed, recipe, recipe.epochs, options.patience


def _extending(recipe, planned, batches, done):
    """What extending a run from ``planned`` epochs does to its learning rate, in words."""
    steps = done * batches
    return (f"extending the run from {planned} to {recipe.epochs} epochs: its {recipe.schedule} schedule now spans "
            f"{recipe.epochs} epochs, so training goes on at learning rate "
            f"{_lr_after(recipe, recipe.epochs, batches, steps):.3g} (the {planned}-epoch schedule "
            f"was at {_lr_after(recipe, planned, batches, steps):.3g})")


def _lr_after(recipe, epochs, batches, steps):
    """The learning rate the schedule of ``recipe`` over ``epochs`` gives after ``steps``."""
    optimizer = make_optimizer(recipe, [Parameter(np.zeros(1))])
    scheduler = make_scheduler(recipe, optimizer, epochs * batches)
    if scheduler is not None:
        scheduler.load_state_dict({"last_step": steps, "base_lr": recipe.lr})
    return optimizer.lr


def _task(name, dataset):
    """The task of ``dataset``'s targets, refused if the model is built for another kind."""
    task = task_for(dataset.targets, dataset.images.shape[2:], dataset.num_classes)
    if task.kind != models.ZOO_TASKS.get(name, "classification"):
        raise ValueError(f"model {name} is made for {models.ZOO_TASKS.get(name, 'classification')}, but "
                         f"{dataset.name} asks for {task.kind}; choose a model for it")
    return task


def _outputs(task, dataset):
    """How the model is told its output size: classes (per image or per pixel), or the size of each target."""
    if isinstance(task, (Classification, Segmentation, Detection)):
        return {"num_classes": dataset.num_classes}
    return {"num_outputs": int(np.prod(dataset.targets.shape[1:]))}


def _check_fits(model, name, dataset, task=None):
    """Run one image through the model so a size mismatch fails now, clearly: the image, and
    for class targets (labels, masks) a class score per target value; a detector's grid."""
    try:
        with no_grad():
            output = model.eval()(Tensor(np.zeros((1,) + dataset.images.shape[1:], dtype=np.float32)))
    except ShapeError as error:
        raise ValueError(f"model {name} does not accept {dataset.name} images of shape "
                         f"{dataset.images.shape[1:]}: {error}") from None
    model.train()
    targets = dataset.labels
    if isinstance(task, Detection):
        task.stride(output.shape)  # a grid detector's output, with one stride both ways
    elif targets.dtype.kind in "iu" and output.shape[2:] != targets.shape[1:]:
        raise ValueError(f"model {name} gives class scores of shape {output.shape[1:]} per image, but the "
                         f"{dataset.name} targets are {'class labels' if targets.ndim == 1 else 'class masks'} "
                         f"of shape {targets.shape[1:]} per image: choose a model made for them")


def load_data(name: str, splits: Sequence[str], data_dir: str | os.PathLike | None = None, download: bool = False,
              input_shape: Sequence[int] = (1, 28, 28), channels: int | None = None,
              notes: list[str] | None = None) -> list[Dataset]:
    """Splits of a named dataset, or of the user's folder / .npz file at ``name`` (sized to
    ``input_shape``, (C, H, W)), read once: a list of Datasets in the order of ``splits``.

    A folder is read in ``channels`` (default: colour if its images are); what was chosen,
    and warnings about the classes, are appended to ``notes`` once the data is loaded.
    """
    if name in DATASET_NAMES:
        return load_splits(name, splits, root=data_dir, download=download)
    if not os.path.exists(name):
        raise ValueError(f"--data {name!r} is neither a dataset ({', '.join(DATASET_NAMES)}) "
                         "nor an existing folder or .npz file")
    said = []
    datasets = load_user_splits(name, splits, size=tuple(input_shape[1:]), channels=channels, notes=said)
    if notes is not None:
        notes += said
    return datasets


# ----- finding runs ----------------------------------------------------------------------
@dataclass
class RunInfo:
    """What a run folder holds, as :func:`find_runs` reads it without loading the model."""

    path: Path
    model: str | None = None
    data: str | None = None
    epochs: int | None = None         # planned (from run.json)
    done: int = 0                     # epochs finished (from the checkpoint)
    finished: bool = False            # all planned epochs done, or stopped early
    stopped_early: bool = False
    has_model: bool = False           # model.safetensors is there
    resumable: bool = False           # a checkpoint to continue from, and epochs left
    training: bool = False            # a process is training it right now
    problem: str | None = None        # why run.json or the checkpoint cannot be used


def find_runs(root: str | os.PathLike) -> list[RunInfo]:
    """Every run folder directly under ``root`` (one with run.json or a checkpoint), sorted
    by path. Other folders are skipped; a damaged run is listed with its ``problem`` instead
    of raising. A ``root`` that does not exist holds no runs."""
    root = Path(root)
    try:
        children = sorted(root.iterdir()) if root.is_dir() else []
    except OSError:  # the folder went away or cannot be listed
        return []
    return [run_info(path) for path in children
            if os.path.isfile(path / RUN_CONFIG) or os.path.isfile(path / CHECKPOINT)]


def run_info(path: str | os.PathLike) -> RunInfo:
    """The :class:`RunInfo` of the run folder ``path``; never raises for a damaged run."""
    path = Path(path)
    info = RunInfo(path, has_model=os.path.isfile(path / RUN_MODEL))
    saved = {}  # a run trained with fit() alone has a checkpoint and no run.json
    if os.path.isfile(path / RUN_CONFIG):
        saved, info.problem = read_run_config(path)
        saved = saved or {}
    info.model, info.data = saved.get("model"), saved.get("data")
    info.epochs = saved.get("epochs") if isinstance(saved.get("epochs"), int) else None
    has_checkpoint = os.path.isfile(path / CHECKPOINT)
    if has_checkpoint:
        try:
            progress = checkpoint_progress(path / CHECKPOINT)
            info.done, info.stopped_early = int(progress.get("epoch", 0)), bool(progress.get("stopped_early"))
        except (OSError, ValueError, TypeError, AttributeError) as error:  # ModelFileError is a ValueError
            has_checkpoint, info.problem = False, info.problem or f"its checkpoint cannot be read ({error})"
    info.finished = info.stopped_early or (info.epochs is not None and info.done >= info.epochs)
    # resuming takes the settings from run.json, so a run without one is not resumable here
    info.training = is_locked(path)
    info.resumable = (has_checkpoint and not info.finished and info.problem is None and bool(saved)
                      and not info.training)
    return info
