"""``convscope train``, ``evaluate`` and ``predict``."""

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from .. import models
from ..data import DataLoader, readers
from ..data.preprocess import preprocess_image
from ..inference import predict, top_k
from ..metrics import precision_recall_f1
from ..nn import eval_mode
from ..runs import DATASET_NAMES, RunOptions, load_data, prepare_run
from ..tasks import Detection, Positions, Segmentation, task_from_config
from ..tensor import Tensor, no_grad
from ..train import evaluate
from .inspect import load_usable
from .progress import ProgressBar


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
    p.add_argument("--batch-size", type=int,
                   help="images per step (default: recipe); under mpiexec, the global batch that the processes share")
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

    p = subparsers.add_parser("evaluate", help="accuracy, per-class precision/recall, confusion matrix "
                                               "(a position model: its errors in pixels; segmentation: pixel "
                                               "accuracy, mIoU, IoU per class; a detector: mAP, AP per class)",
                              description="Evaluate a saved model on a dataset split.")
    p.add_argument("model", help="model file (.safetensors) written by convscope train")
    p.add_argument("--data", metavar="NAME|PATH", help="dataset name or path (default: the one it was trained on)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="default val")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: the cache)")
    p.add_argument("--batch-size", type=int, default=500, help="images per batch (default 500)")
    p.set_defaults(run=run_evaluate)

    p = subparsers.add_parser("predict", help="classify image files (top-k with probabilities), or locate "
                                              "the centre with a position model",
                              description="Classify images of any size: files, or folders of them. Digit "
                                          "models find the digit in a photo or scan and prepare it like "
                                          "MNIST; other models resize. Each step taken is said. A position "
                                          "model (locator) prints the centre (x, y) it finds instead. A "
                                          "segmentation model writes each image's mask over it as "
                                          "NAME.mask.png next to it (skipped when reading a folder) and "
                                          "lists the classes found. A detector draws the boxes it finds, "
                                          "with class and score, as NAME.boxes.png and lists them.")
    p.add_argument("model", help="model file (.safetensors) or run folder")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...) or folders of them")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per image (default 3)")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text",
                   help="text for people (default), or one JSON document / CSV table for scripts")
    p.add_argument("--warn-below", type=float, default=0.5, metavar="P",
                   help="warn when the top probability is below P (default 0.5)")
    p.add_argument("--min-score", type=float, default=0.3, metavar="S",
                   help="a detector: show the boxes of score S or more (default 0.3)")
    p.set_defaults(run=run_predict)


def run_options(args):
    """The ``convscope train`` arguments as the library's RunOptions."""
    names = [f.name for f in dataclasses.fields(RunOptions) if f.name != "augment"]
    return RunOptions(**{name: getattr(args, name) for name in names}, augment=not args.no_augment)


def run_train(args):
    from ..parallel import connect
    world = connect()  # started by mpiexec with several processes: data-parallel (else None)
    if world is None:
        return _train(args, None)
    try:
        return _train(args, world)
    except BaseException as error:  # one rank failing would leave the others waiting forever
        why = str(error) if isinstance(error, (ValueError, OSError)) else f"{type(error).__name__}: {error}"
        print(f"convscope train: error in process {world.rank} of {world.size}: {why}; stopping every process "
              "(the run's last checkpoint is kept)", file=sys.stderr, flush=True)
        world.abort(1)


def _train(args, world):
    """Train as ``convscope train`` asks; in a data-parallel run only rank 0 prints and writes."""
    first, notes = world is None or world.rank == 0, []
    try:
        run = prepare_run(run_options(args), notes, world)
    finally:  # what was said before a refusal is printed too, as it arose
        for note in notes if first else ():
            print(note, file=sys.stderr)
    history = run.train([ProgressBar()] if first else [])
    if not first:
        return 0
    report_end(run.out, history, run.done, run.epochs, run.model_path)
    if not args.no_report:
        from ..viz.report import write_report
        print(f"report: {write_report(run.out, dataset=run.val_set)}")
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
              f"(validation loss {kept['val_loss']:.4f}, {val_figure(kept)})", file=sys.stderr)
    seconds = sum(r["seconds"] for r in history)
    print(f"done: validation {val_figure(kept)} after {last['epoch']} epochs "
          f"(weights of epoch {kept['epoch']}; {seconds:.1f} s training); model saved to {model_path}")


def val_figure(record):
    """The headline validation figure of an epoch record, in words."""
    if "val_acc" in record:  # segmentation: pixel accuracy, and the mIoU
        miou = f", mIoU {record['val_miou']:.4f}" if "val_miou" in record else ""
        return f"accuracy {record['val_acc']:.2%}{miou}"
    if "val_mpe" in record:
        return f"mean position error {record['val_mpe']:.2f} px"
    if "val_map50" in record:
        return f"mAP@0.5 {record['val_map50']:.4f}"
    return f"loss {record['val_loss']:.4f}"


def _dataset_for(meta, args):
    name = args.data or meta.get("dataset")
    if not name:
        raise ValueError("the model file does not say which dataset it was trained on; "
                         f"pass --data ({', '.join(DATASET_NAMES)} or a path)")
    notes = []
    [data] = load_data(name, (args.split,), args.data_dir, input_shape=meta["input_shape"],
                       channels=meta["input_shape"][0], notes=notes)
    for note in notes:
        print(note, file=sys.stderr)
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
    model, meta = load_usable(args.model)
    data = _dataset_for(meta, args)
    # normalise exactly as in training, with the statistics stored in the model file
    data = dataclasses.replace(data, mean=tuple(meta["mean"]), std=tuple(meta["std"]))
    loader = DataLoader(data, batch_size=args.batch_size)
    task = task_from_config(meta.get("task"), len(meta.get("class_names") or ()))
    print(f"{args.model} on {data.name} ({args.split}, {len(data)} images)")
    result = evaluate(model, loader, task=task)
    if isinstance(task, Positions):
        print(format_positions(result))
    elif isinstance(task, Segmentation):
        print(format_segmentation(result, _names(meta, result)))
    elif isinstance(task, Detection):
        from .detect import format_detection
        print(format_detection(result, _names(meta, result)))
    else:
        print(format_evaluation(result, _names(meta, result)))
    return 0


def _names(meta, result):
    """The model's class names, or "0", "1"... for a file that records none."""
    count = len(result["ap50_per_class"]) if "ap50_per_class" in result else len(result["confusion"])
    return meta.get("class_names") or [str(k) for k in range(count)]


def format_positions(result):
    """Mean and median position error and the fraction within the task's tolerance, as text."""
    errors = result["errors"]
    worst = f", worst {errors.max():.2f} px" if len(errors) else ""
    return (f"mean position error {result['mean_error']:.3f} px, median {result['median_error']:.3f} px{worst}\n"
            f"within {result['within']:g} px: {result['within_fraction']:.2%} "
            f"({int(np.count_nonzero(errors <= result['within']))}/{result['count']}), loss {result['loss']:.6f}")


def format_segmentation(result, class_names):
    """Pixel accuracy, mIoU and the IoU of each class, with its share of the true pixels."""
    confusion = result["confusion"]
    lines = [f"pixel accuracy {result['pixel_accuracy']:.2%}, mIoU {result['mean_iou']:.4f} "
             f"(mean over the classes present), loss {result['loss']:.4f}", "",
             f"{'class':>14}     IoU  true pixels"]
    for k, name in enumerate(class_names):
        iou = result["iou_per_class"][k]
        lines.append(f"{name[:14]:>14}  {'     -' if np.isnan(iou) else f'{iou:6.3f}'}  {confusion[k].sum():11d}")
    return "\n".join(lines)


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


def _prepared(path, meta):
    """``(x, notes, None)`` for an image prepared as the model expects, or ``(None, None, record)``
    with the per-file error record (naming the file once) when it cannot be."""
    try:
        x, notes = preprocess_image(path, meta)
    except ValueError as error:
        message = str(error)
        return None, None, {"path": path, "error": message if message.startswith(str(path)) else f"{path}: {message}"}
    return x, notes, None


def _printed_head(result):
    """Print an image's name and its notes (or its error); False when it has no prediction."""
    print(f"{result['path']}:")
    if "error" in result:
        print(f"  - no prediction: {result['error']}")
        return False
    for note in result["notes"]:
        print(f"  - {note}")
    return True


def _failures(results):
    """Say each image that failed on stderr; the exit code (1 if any failed)."""
    failed = [r for r in results if "error" in r]
    for result in failed:
        print(f"convscope predict: error: {result['error']}", file=sys.stderr)
    return 1 if failed else 0


def predict_one(model, meta, path, k):
    """``{"path", "predicted", "probability", "top": [[class, p]...], "notes"}``, or with "error"."""
    names = meta.get("class_names") or []
    x, notes, failure = _prepared(path, meta)
    if failure:
        return failure
    best = [[names[c] if c < len(names) else str(c), p] for c, p in top_k(predict(model, x)[0], k)]
    return {"path": path, "predicted": best[0][0], "probability": best[0][1], "top": best, "notes": notes}


def locate_one(model, meta, task, path):
    """``{"path", "centre": [x, y], "notes"}`` (pixels of the model's input), or with "error"."""
    x, notes, failure = _prepared(path, meta)
    if failure:
        return failure
    with eval_mode(model), no_grad():
        centre = task.predictions(model(Tensor(x)).data)[0]
    return {"path": path, "centre": [float(v) for v in centre], "notes": notes}


def print_centre(result, meta):
    if not _printed_head(result):
        return
    _, height, width = meta["input_shape"]
    x, y = result["centre"]
    print(f"  centre (x, y) = ({x:.2f}, {y:.2f}) px on the {width}x{height} input")


def segment_one(model, meta, task, path):
    """Segment one image: write its coloured mask over the image next to it (``NAME.mask.png``);
    ``{"path", "mask_png", "classes": [[class, pixels]...], "notes"}``, or with "error"."""
    from ..viz import grids, masks, render
    x, notes, failure = _prepared(path, meta)
    if failure:
        return failure
    mask = task.predictions(predict(model, x))[0]
    mean, std = np.asarray(meta["mean"]).reshape(-1, 1, 1), np.asarray(meta["std"]).reshape(-1, 1, 1)
    grey = grids.to_uint8((x[0] * std + mean).mean(axis=0))
    out = Path(path).with_suffix(".mask.png")
    render.save_png(out, grids.enlarge(masks.overlay(grey, mask), 4))
    return {"path": path, "mask_png": str(out), "classes": masks.class_areas(mask, meta.get("class_names")),
            "notes": notes}


def print_segmentation(result):
    if not _printed_head(result):
        return
    total = sum(n for _, n in result["classes"])
    found = ", ".join(f"{name} ({n} px)" for name, n in result["classes"]) or "only background"
    print(f"  classes found: {found}; {total} non-background pixels")
    print(f"  mask over the image: {result['mask_png']}")


def run_segment(args, model, meta, task):
    """``convscope predict`` for a segmentation model: a mask per image."""
    if args.format == "csv":
        raise ValueError("--format csv lists one class per image; a segmentation model gives a mask per "
                         "image: use --format text or json")
    paths = [p for p in image_paths(args.images) if p in args.images or not p.endswith(".mask.png")]
    results = [segment_one(model, meta, task, path) for path in paths]  # a folder's masks written earlier are skipped
    if args.format == "json":
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print_segmentation(result)
    return _failures(results)


def run_predict(args):
    model, meta = load_usable(args.model)
    task = task_from_config(meta.get("task"), len(meta.get("class_names") or ()))
    if isinstance(task, Positions):
        return run_locate(args, model, meta, task)
    if isinstance(task, Segmentation):
        return run_segment(args, model, meta, task)
    if isinstance(task, Detection):
        from .detect import run_detect  # it imports this module's helpers
        return run_detect(args, model, meta, task)
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
    code = _failures(results)
    failed = sum("error" in r for r in results)
    if failed and failed < len(results):
        print(f"convscope predict: {failed} of {len(results)} images could not be read", file=sys.stderr)
    return code


def run_locate(args, model, meta, task):
    """``convscope predict`` for a model that regresses a position: the centre of each image."""
    results = [locate_one(model, meta, task, path) for path in image_paths(args.images)]
    if args.format == "json":
        print(json.dumps(results, indent=2))
    elif args.format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["path", "x", "y", "error"])
        for r in results:
            centre = [f"{v:.4f}" for v in r["centre"]] if "centre" in r else ["", ""]
            writer.writerow([r["path"], *centre, r.get("error", "")])
    else:
        for result in results:
            print_centre(result, meta)
    return _failures(results)


def print_result(result, warn_below):
    if not _printed_head(result):
        return
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
