"""``convscope train``, ``evaluate`` and ``predict``."""

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from .. import models
from ..data import DATASETS, DataLoader, load_splits, load_user_splits, readers
from ..data.preprocess import DIGIT_DATASETS, preprocess_image
from ..files import write_atomic
from ..inference import predict, top_k
from ..io import RUN_MODEL, checkpoint_progress, load_model, save_model
from ..metrics import precision_recall_f1
from ..nn import Parameter
from ..recipes import Recipe, make_augment, make_optimizer, make_scheduler, recipe_for
from ..tensor import ShapeError, Tensor, no_grad
from ..train import CHECKPOINT, Callback, evaluate, fit
from .progress import ProgressBar

DATASET_NAMES = tuple(sorted(DATASETS))


def add_parsers(subparsers):
    p = subparsers.add_parser("train", help="train a model on a dataset",
                              description="Train a zoo model; writes a checkpoint, the model file, "
                                          "metrics and an HTML report into --out.")
    p.add_argument("--model", choices=sorted(models.ZOO), help="zoo model (default lenet5; with --resume, the run's)")
    p.add_argument("--data", metavar="NAME|PATH",
                   help=f"dataset: {', '.join(DATASET_NAMES)} (default digits), or a folder with one "
                        "subfolder of images per class, or an .npz file (every 10th image per class validates)")
    p.add_argument("--data-dir",
                   help="folder holding the dataset files, searched before the cache (default: the cache only)")
    p.add_argument("--download", action="store_true",
                   help="download missing datasets, checking their SHA-256 (needs internet; default: never)")
    p.add_argument("--epochs", type=int, help="epochs (default: the model's recipe, 20 for lenet5)")
    p.add_argument("--batch-size", type=int, help="images per step (default: recipe)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), help="default: recipe")
    p.add_argument("--lr", type=float, help="peak learning rate (default: recipe)")
    p.add_argument("--weight-decay", type=float, help="default: recipe")
    p.add_argument("--schedule", choices=("onecycle", "cosine", "step", "constant"), help="default onecycle")
    p.add_argument("--no-augment", action="store_true",
                   help="train without data augmentation (default: the recipe's, e.g. 1-pixel shifts for digits)")
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without a lower validation loss, keeping the best epoch's "
                        "weights (default: never stop early)")
    p.add_argument("--seed", type=int, help="makes the run reproducible (default 0)")
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with the run's own settings "
                        "(default: refuse to touch an existing run)")
    p.add_argument("--extend", action="store_true",
                   help="with --resume and a larger --epochs: train the run on to that many epochs "
                        "(its learning-rate schedule is stretched to the new length; default: off)")
    p.add_argument("--no-report", action="store_true",
                   help="skip the HTML report at the end (default: write RUN/report.html)")
    p.set_defaults(run=run_train)

    p = subparsers.add_parser("evaluate", help="accuracy, per-class precision/recall, confusion matrix",
                              description="Evaluate a saved model on a dataset split.")
    p.add_argument("model", help="model file (.safetensors) written by convscope train")
    p.add_argument("--data", metavar="NAME|PATH", help="dataset name or path (default: the one it was trained on)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="default val")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: the cache)")
    p.add_argument("--batch-size", type=int, default=500, help="images per batch (default 500)")
    p.set_defaults(run=run_evaluate)

    p = subparsers.add_parser("predict", help="classify image files (top-k with probabilities)",
                              description="Classify images of any size: files, or folders of them. Digit "
                                          "models find the digit in a photo or scan and prepare it like "
                                          "MNIST; other models resize. Each step taken is said.")
    p.add_argument("model", help="model file (.safetensors) or run folder")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...) or folders of them")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per image (default 3)")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text",
                   help="text for people (default), or one JSON document / CSV table for scripts")
    p.add_argument("--warn-below", type=float, default=0.5, metavar="P",
                   help="warn when the top probability is below P (default 0.5)")
    p.set_defaults(run=run_predict)


RESUMABLE = ("model", "data", "seed", "optimizer", "lr", "weight_decay", "schedule", "batch_size", "augment",
             "patience")


def _recipe(args):
    """The recipe of a new run: the model's defaults with the options given."""
    recipe = recipe_for(args.model, args.data)
    for name in ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule"):
        if getattr(args, name) is not None:
            setattr(recipe, name, getattr(args, name))
    if args.no_augment:
        recipe.augment = {}
    if recipe.epochs < 1 or recipe.batch_size < 1 or recipe.lr <= 0:
        raise ValueError(f"epochs and batch size must be >= 1 and lr > 0, got {recipe.epochs}, "
                         f"{recipe.batch_size}, {recipe.lr}")
    return recipe


def _resumed(out, args):
    """The settings of the run in ``out`` for --resume, checked against the options given:
    an option that differs from the run's is refused (nothing is written), and so is a
    different --epochs without --extend. Returns (settings dict, epochs the run was set up for)."""
    path = os.path.join(out, "run.json")
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot resume {out}: its run.json (what the run was trained with) cannot be read "
                         f"({error}); start a new run with another --out") from None
    needed = ("model", "data", "seed", "epochs") + tuple(Recipe.__dataclass_fields__)
    missing = [k for k in needed if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise ValueError(f"cannot resume {out}: its run.json does not record {', '.join(missing)}, so the run "
                         "cannot be continued as it was; start a new run with another --out")
    asked = {name: getattr(args, name) for name in RESUMABLE if name != "augment"}
    if args.no_augment:
        asked["augment"] = {}
    differs = [f"--{name.replace('_', '-')} {value} (the run used {saved.get(name)})"
               for name, value in asked.items() if value is not None and value != saved.get(name)
               and not (name == "patience" and "patience" not in saved)]  # older runs did not record it
    if differs:
        raise ValueError(f"cannot resume {out} with other settings than its own: {'; '.join(differs)}. "
                         "Leave these options out to continue the run as it was, or choose another --out")
    planned = int(saved["epochs"])
    if args.epochs is not None and args.epochs != planned and not args.extend:
        raise ValueError(f"{out} was set up for {planned} epochs; to train it on to {args.epochs}, pass --extend "
                         "as well (its learning-rate schedule will be stretched to the new length)")
    if args.epochs is not None and args.extend and args.epochs < planned:
        raise ValueError(f"--extend trains a run for longer: {args.epochs} epochs is fewer than its {planned}")
    return dict(saved, epochs=args.epochs if args.extend and args.epochs else planned), planned


def _settings(args, out, resuming):
    """(model name, data name, seed, recipe, epochs planned before, patience) for this run."""
    if resuming:
        saved, planned = _resumed(out, args)
        fields = {k: saved[k] for k in Recipe.__dataclass_fields__ if k in saved}
        patience = args.patience if args.patience is not None else saved.get("patience")
        return saved["model"], saved["data"], saved["seed"], Recipe(**fields), planned, patience
    args.model, args.data = args.model or "lenet5", args.data or "digits"
    recipe = _recipe(args)
    return args.model, args.data, 0 if args.seed is None else args.seed, recipe, recipe.epochs, args.patience


def _lr_after(recipe, epochs, batches, steps):
    """The learning rate the schedule of ``recipe`` over ``epochs`` gives after ``steps``."""
    optimizer = make_optimizer(recipe, [Parameter(np.zeros(1))])
    scheduler = make_scheduler(recipe, optimizer, epochs * batches)
    if scheduler is not None:
        scheduler.load_state_dict({"last_step": steps, "base_lr": recipe.lr})
    return optimizer.lr


def _check_fits(model, name, dataset):
    """Run one image through the model so a size mismatch fails now, clearly."""
    try:
        with no_grad():
            model.eval()(Tensor(np.zeros((1,) + dataset.images.shape[1:], dtype=np.float32)))
    except ShapeError as error:
        raise ValueError(f"model {name} does not accept {dataset.name} images of shape "
                         f"{dataset.images.shape[1:]}: {error}") from None
    model.train()


class SaveModel(Callback):
    """Write the model file after every epoch, so the latest weights are always usable."""

    def __init__(self, path, model, train_set, run_config):
        self.path, self.model, self.train_set, self.run_config = path, model, train_set, run_config

    def on_epoch_end(self, epoch, record):
        digits = self.run_config["data"] in DIGIT_DATASETS  # how predict prepares images: from the data
        save_model(self.path, self.model, class_names=self.train_set.class_names,
                   input_shape=self.train_set.images.shape[1:], mean=self.train_set.mean,
                   std=self.train_set.std, dataset=self.train_set.name,
                   training=dict(self.run_config, epochs_done=epoch + 1, last_epoch=record),
                   preprocess="digit" if digits else "resize")


def run_train(args):
    if args.extend and not args.resume:
        raise ValueError("--extend continues a finished or interrupted run: pass --resume with it")
    out = args.out or os.path.join("runs", f"{args.model or 'lenet5'}-{args.data or 'digits'}")
    checkpoint = os.path.join(out, CHECKPOINT)
    has_checkpoint = os.path.exists(checkpoint)
    if has_checkpoint and not args.resume:
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    if args.resume and not has_checkpoint:
        print(f"note: {out} has no checkpoint to resume; starting a new run", file=sys.stderr)
    resuming = args.resume and has_checkpoint
    name, data, seed, recipe, planned, patience = _settings(args, out, resuming)
    progress = checkpoint_progress(checkpoint) if resuming else {}
    done = progress.get("epoch", 0)
    if progress.get("stopped_early") and recipe.epochs != planned:
        raise ValueError(f"{out} stopped early at epoch {done} (its validation loss had stopped improving), so "
                         "there is nothing to extend; start a new run with another --out")
    train_set, val_set = load_data(data, ("train", "val"), args, models.ZOO_INPUTS.get(name, (1, 28, 28)))
    init_seed, loader_seed = np.random.SeedSequence(seed).spawn(2)
    init_rng, loader_rng = np.random.default_rng(init_seed), np.random.default_rng(loader_seed)
    model = models.build(name, rng=init_rng, in_channels=train_set.images.shape[1], num_classes=train_set.num_classes)
    _check_fits(model, name, train_set)
    train_loader = DataLoader(train_set, recipe.batch_size, shuffle=True, rng=loader_rng,
                              augment=make_augment(recipe.augment, train_set.images.shape[2:]))
    val_loader = DataLoader(val_set, batch_size=500)
    optimizer = make_optimizer(recipe, model.parameters())
    scheduler = make_scheduler(recipe, optimizer, recipe.epochs * len(train_loader))
    config = {"model": name, "data": data, "seed": seed, **recipe.__dict__, "patience": patience}
    if resuming:
        print(f"resuming {out} from epoch {done} of {recipe.epochs}", file=sys.stderr)
    if resuming and recipe.epochs != planned:
        steps = done * len(train_loader)
        print(f"extending the run from {planned} to {recipe.epochs} epochs: its {recipe.schedule} schedule now spans "
              f"{recipe.epochs} epochs, so training goes on at learning rate "
              f"{_lr_after(recipe, recipe.epochs, len(train_loader), steps):.3g} (the {planned}-epoch schedule "
              f"was at {_lr_after(recipe, planned, len(train_loader), steps):.3g})", file=sys.stderr)
    os.makedirs(out, exist_ok=True)
    write_atomic(os.path.join(out, "run.json"), json.dumps(config, indent=2).encode())
    print(f"training {name} on {data}: {len(train_set)} train / {len(val_set)} val images, "
          f"{recipe.optimizer} lr {recipe.lr:g} {recipe.schedule}, batch {recipe.batch_size}, "
          f"{recipe.epochs} epochs, augment {recipe.augment or 'none'} -> {out}", file=sys.stderr)
    model_path = os.path.join(out, RUN_MODEL)
    history = fit(model, train_loader, optimizer, recipe.epochs, val_loader, scheduler=scheduler,
                  callbacks=[ProgressBar(), SaveModel(model_path, model, train_set, config)], run_dir=out,
                  rngs={"init": init_rng, "loader": loader_rng}, resume=args.resume, patience=patience)
    report_end(out, history, done, recipe.epochs, model_path)
    if not args.no_report:
        from ..viz.report import write_report
        print(f"report: {write_report(out, dataset=val_set)}")
    return 0


def report_end(out, history, done, epochs, model_path):
    """The closing lines of a run: finished or stopped early (and which epoch's weights were kept)."""
    last = history[-1]
    if len(history) == done:
        print(f"the run in {out} had already finished ({done} of {epochs} epochs); nothing was trained",
              file=sys.stderr)
    kept = next((r for r in history if r["epoch"] == last.get("best_epoch")), last)
    if last.get("stopped_early"):
        waited = last["epoch"] - kept["epoch"]
        print(f"stopped early after epoch {last['epoch']}: the validation loss had not improved for "
              f"{waited} epoch{'s' if waited > 1 else ''}; kept the weights of epoch {kept['epoch']} "
              f"(validation loss {kept['val_loss']:.4f}, accuracy {kept['val_acc']:.2%})", file=sys.stderr)
    seconds = sum(r["seconds"] for r in history)
    print(f"done: validation accuracy {kept['val_acc']:.2%} after {last['epoch']} epochs "
          f"(weights of epoch {kept['epoch']}; {seconds:.1f} s training); model saved to {model_path}")


def load_data(name, splits, args, input_shape, channels=None):
    """Splits of a named dataset, or of the user's folder / .npz file at ``name`` (sized for the
    model), read once: a list of Datasets in the order of ``splits``. A folder is read in
    ``channels`` (default: colour if its images are), what was chosen printed."""
    if name in DATASETS:
        return load_splits(name, splits, root=args.data_dir, download=getattr(args, "download", False))
    if not os.path.exists(name):
        raise ValueError(f"--data {name!r} is neither a dataset ({', '.join(DATASET_NAMES)}) "
                         "nor an existing folder or .npz file")
    notes = []
    datasets = load_user_splits(name, splits, size=tuple(input_shape[1:]), channels=channels, notes=notes)
    for note in notes:
        print(note, file=sys.stderr)
    return datasets


def _dataset_for(meta, args):
    name = args.data or meta.get("dataset")
    if not name:
        raise ValueError("the model file does not say which dataset it was trained on; "
                         f"pass --data ({', '.join(DATASET_NAMES)} or a path)")
    [data] = load_data(name, (args.split,), args, meta["input_shape"], channels=meta["input_shape"][0])
    if meta.get("dataset") and meta["dataset"] != name:
        print(f"note: the model was trained on {meta['dataset']}, evaluating on {name}", file=sys.stderr)
    if list(data.images.shape[1:]) != list(meta["input_shape"]):
        raise ValueError(f"the model expects images of shape {tuple(meta['input_shape'])}, "
                         f"{name} has {data.images.shape[1:]}")
    return data


def format_evaluation(result, class_names):
    """Accuracy, per-class precision / recall / F1 and the confusion matrix as text."""
    confusion = result["confusion"]
    lines = [f"accuracy {result['accuracy']:.2%} ({int(np.trace(confusion))}/{result['count']}), "
             f"loss {result['loss']:.4f}", "", f"{'class':>14}  precision  recall      F1  support"]
    precision, recall, f1 = precision_recall_f1(confusion)
    for k, name in enumerate(class_names):
        lines.append(f"{name[:14]:>14}  {precision[k]:9.2%}  {recall[k]:6.2%}  {f1[k]:6.2%}  "
                     f"{confusion[k].sum():7d}")
    width = max(4, len(str(confusion.max())) + 1)
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * 6 + "".join(f"{k:>{width}}" for k in range(len(class_names)))]
    lines += [f"{k:>4}  " + "".join(f"{v:>{width}}" for v in row) for k, row in enumerate(confusion)]
    return "\n".join(lines)


def run_evaluate(args):
    model, meta = load_model(args.model)
    data = _dataset_for(meta, args)
    # normalise exactly as in training, with the statistics stored in the model file
    data = dataclasses.replace(data, mean=tuple(meta["mean"]), std=tuple(meta["std"]))
    loader = DataLoader(data, batch_size=args.batch_size)
    result = evaluate(model, loader, num_classes=len(meta["class_names"]))
    print(f"{args.model} on {data.name} ({args.split}, {len(data)} images)")
    print(format_evaluation(result, meta["class_names"]))
    return 0


# what predict takes from a folder: the training reader's suffixes, and the other formats Pillow reads
IMAGE_SUFFIXES = readers.IMAGE_SUFFIXES + (".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def image_paths(items):
    """The files named, with each folder replaced by its image files (sorted)."""
    paths = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"folder {item} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            paths += found
        else:
            if str(item).endswith(".safetensors"):
                raise ValueError(f"{item} is a model file; the order is: convscope predict MODEL IMAGE [IMAGE ...]")
            paths.append(str(item))
    return paths


def predict_one(model, meta, path, k):
    """``{"path", "predicted", "probability", "top": [[class, p]...], "notes"}``, or with "error"."""
    names = meta.get("class_names") or []
    try:
        x, notes = preprocess_image(path, meta)
    except ValueError as error:  # say which file, once
        message = str(error)
        return {"path": path, "error": message if message.startswith(str(path)) else f"{path}: {message}"}
    best = [[names[c] if c < len(names) else str(c), p] for c, p in top_k(predict(model, x)[0], k)]
    return {"path": path, "predicted": best[0][0], "probability": best[0][1], "top": best, "notes": notes}


def run_predict(args):
    model, meta = load_model(args.model)
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    if not 0 <= args.warn_below <= 1:
        raise ValueError(f"--warn-below must be a probability in [0, 1], got {args.warn_below}")
    results = [predict_one(model, meta, path, args.top_k) for path in image_paths(args.images)]
    if args.format == "json":
        print(json.dumps(results, indent=2))
    elif args.format == "csv":
        write_csv(results, args.top_k)
    else:
        for result in results:
            print_result(result, args.warn_below)
    failed = [r for r in results if "error" in r]
    for result in failed:
        print(f"convscope predict: error: {result['error']}", file=sys.stderr)
    if failed and len(failed) < len(results):
        print(f"convscope predict: {len(failed)} of {len(results)} images could not be read", file=sys.stderr)
    return 1 if failed else 0


def print_result(result, warn_below):
    print(f"{result['path']}:")
    if "error" in result:
        print(f"  - no prediction: {result['error']}")
        return
    for note in result["notes"]:
        print(f"  - {note}")
    for name, p in result["top"]:
        print(f"  {name:>12}  {p:7.2%}  {'#' * int(round(30 * p))}")
    if result["probability"] < warn_below:
        print(f"  ! low confidence: the best class has only {result['probability']:.0%}; the image may not "
              "look like what the model was trained on")


def write_csv(results, k):
    import csv

    writer = csv.writer(sys.stdout)
    writer.writerow(["path", "predicted", "probability"] + [f"top{i}_{f}" for i in range(2, k + 1)
                                                          for f in ("class", "probability")] + ["error"])
    for r in results:
        if "error" in r:
            writer.writerow([r["path"], "", ""] + [""] * (2 * (k - 1)) + [r["error"]])
            continue
        rest = [v for name, p in r["top"][1:] for v in (name, f"{p:.6f}")]
        writer.writerow([r["path"], r["predicted"], f"{r['probability']:.6f}"] + rest
                        + [""] * (2 * (k - 1) - len(rest)) + [""])
