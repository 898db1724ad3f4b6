"""Looking-inside commands: ``summary``, ``explain``, ``viz``, ``report``, ``invariance``.

``add_parsers(subparsers)`` adds them to the ``convscope`` command; each sets
``run=<function(args) -> exit code>``. MODEL is a model file written by training, a run
folder holding one (``model.safetensors``), or a zoo name (``lenet5``, ``vgg``, ``resnet``)
for an untrained model with seed-0 random weights. Commands that write files print every
path they write; ``viz`` and ``invariance`` write into ``--out``, by default a ``viz`` folder
next to the model file (``./viz`` for a zoo name).

    convscope summary runs/lenet/model.safetensors
    convscope explain lenet5 --depth math
    convscope viz runs/lenet digit.png              # writes runs/lenet/viz/*.png
    convscope report runs/lenet
    convscope invariance runs/lenet/model.safetensors digit.png --out shifts/
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import models
from ..nn import Module


class InspectError(Exception):
    """A problem with the user's arguments or files; the CLI prints it in one line."""


# ----- loading ------------------------------------------------------------------------
def default_out(spec: str | os.PathLike) -> Path:
    """Where pictures go without --out: a ``viz`` folder next to the model file, else ./viz."""
    from ..io import model_path
    path = model_path(spec)
    return path.parent / "viz" if path is not None else Path("viz")


def load(spec: str | os.PathLike, input_shape: str | None = None) -> tuple[Module, dict[str, Any]]:
    """(model, meta) from a model file, a run folder or a zoo name (:func:`convscope.io.load_any`);
    ``input_shape`` "C,H,W" overrides the recorded input shape."""
    from ..io import load_any
    model, meta = load_any(spec)
    if input_shape:
        try:
            meta = dict(meta, input_shape=[int(v) for v in input_shape.split(",")])
        except ValueError:
            raise InspectError(f"--input-shape must look like C,H,W (e.g. 1,28,28), got {input_shape!r}") from None
    if not meta.get("input_shape") or len(meta["input_shape"]) != 3:
        raise InspectError(f"{spec} does not record its input shape; pass --input-shape C,H,W")
    return model, meta


def load_usable(path):
    """(model, meta) of a model file that can take images: its input shape recorded, and mean
    and std one per channel (0 and 1 where the file has none)."""
    from ..io import load_model
    model, meta = load_model(path)
    if not meta.get("input_shape"):
        raise ValueError(f"{path}: records no input shape [C, H, W] (saved without one), so images cannot be "
                         "prepared for it; save it with input_shape=...")
    channels, stats = meta["input_shape"][0], {}
    for key, default in (("mean", 0.0), ("std", 1.0)):
        values = list(meta.get(key) or [default])
        stats[key] = values * channels if len(values) == 1 else values
        if len(stats[key]) != channels:
            raise ValueError(f"{path}: records {len(values)} values of {key} for {channels}-channel images")
    return model, dict(meta, **stats)


def norm_stats(meta: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """Per-channel (mean, std) from meta; 0 and 1 where the model file has none."""
    channels = meta["input_shape"][0]
    return meta.get("mean") or [0.0] * channels, meta.get("std") or [1.0] * channels


def load_image(path: str | os.PathLike, meta: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
    """(x (1, C, H, W), notes) from the data package's ``preprocess_image`` (MNIST-style for
    digit models, a plain resize otherwise)."""
    from ..data.preprocess import preprocess_image
    if not Path(path).exists():
        raise InspectError(f"image {path} not found")
    return preprocess_image(path, meta)


def validation_sample(meta: Mapping[str, Any], index: int = 0,
                      data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, list[str]]:
    """Validation image ``index`` of the model's dataset, normalised, (1, C, H, W), and notes."""
    if not meta.get("dataset"):
        raise InspectError("no IMAGE given and the model names no dataset to take a validation image from")
    from ..data import load_dataset
    data = load_dataset(meta["dataset"], split="val", root=data_dir)
    if not 0 <= index < len(data.labels):
        raise InspectError(f"--index {index} is out of range: {meta['dataset']} val has {len(data.labels)} images")
    from ..data import normalise
    x = normalise(data.images[index:index + 1], *norm_stats(meta))
    return x, [f"{meta['dataset']} validation image {index} ({target_text(data.labels[index], data.class_names)})"]


def target_text(target: Any, class_names: list[str] | None) -> str:
    """A validation image's target in words: its label, its boxes' classes, its mask's classes or its centre."""
    target = np.asarray(target)
    if class_names is not None and target.ndim == 0:
        return f"label {class_names[int(target)]}"
    if class_names is not None and target.ndim == 2 and target.shape[1] == 5:
        return "objects " + ", ".join(class_names[int(c)] for c in target[target[:, 4] >= 0, 4])
    if class_names is not None:
        return "mask of " + ", ".join(class_names[int(c)] for c in np.unique(target) if c > 0)
    return "centre (" + ", ".join(f"{v:.1f}" for v in target.ravel()) + ") px"


def input_for(args: argparse.Namespace, meta: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
    """(x, notes) for the image to look at: IMAGE if given, else a validation sample."""
    if args.image:
        return load_image(args.image, meta)
    return validation_sample(meta, args.index, args.data_dir)


# ----- commands -----------------------------------------------------------------------
def os_reason(error: OSError) -> str:
    """An OSError in plain words: "PATH: No such file or directory", without "[Errno 2]"."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


def reports_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected failures into a one-line message on stderr and exit code 1."""
    name = command.__name__.removeprefix("run_")

    @functools.wraps(command)
    def run(args):
        try:
            return command(args)
        except BrokenPipeError:  # the reader went away (`| head`): main() ends quietly
            raise
        except OSError as error:
            print(f"convscope {name}: error: {os_reason(error)}", file=sys.stderr)
        except (InspectError, ValueError, ImportError, KeyError) as error:
            print(f"convscope {name}: error: {error}", file=sys.stderr)
        return 1
    return run


def write_into(where: str | os.PathLike, write: Callable[[], Path]) -> Path:
    """``write()``, an OSError on a path inside ``where`` (file or folder) turned into
    "cannot write to WHERE: reason"; other OSErrors (reading a model) pass on unchanged."""
    try:
        return write()
    except OSError as error:
        failed, target = Path(str(error.filename)).absolute(), Path(where).absolute()
        related = failed == target or {failed, target} & {*failed.parents, *target.parents}
        if error.filename is not None and not related:
            raise
        raise InspectError(f"cannot write to {where}: {error.strerror or error}") from None


def out_dir(args: argparse.Namespace) -> Path:
    """--out, or the default folder next to the model (see :func:`default_out`)."""
    return Path(args.out) if args.out else default_out(args.model)


@reports_errors
def run_summary(args: argparse.Namespace) -> int:
    from ..summary import summary
    model, meta = load(args.model, args.input_shape)
    print(summary(model, meta["input_shape"]), end="")
    return 0


@reports_errors
def run_explain(args: argparse.Namespace) -> int:
    from ..explain import explain
    model, meta = load(args.model, args.input_shape)
    task = (meta.get("task") or {}).get("kind", "classification")
    print(explain(model, meta["input_shape"], args.depth, meta.get("class_names"), task), end="")
    return 0


@reports_errors
def run_viz(args: argparse.Namespace) -> int:
    from ..inference import top_k
    from ..tasks import Classification, task_from_config
    from ..trace import trace
    from ..viz import gallery, render
    model, meta = load(args.model, args.input_shape)
    x, notes = input_for(args, meta)
    names, (mean, std) = meta.get("class_names"), norm_stats(meta)
    print("input: " + "; ".join(notes))
    traced = trace(model, x, gradients=True)  # the one forward pass every picture reads
    task = task_from_config(meta.get("task"), len(names or ()))
    classifier = isinstance(task, Classification)
    pictures = gallery.all_pictures(traced, None, mean, std, names, args.top_k, classifier=classifier)
    folder = out_dir(args)
    for stem, image in pictures:
        print(write_into(folder, functools.partial(render.save_png, folder / f"{stem}.png", image)))
    print(f"wrote {len(pictures)} pictures to {folder}")
    if classifier:
        best = top_k(traced.probabilities()[0], args.top_k)
        print("prediction: " + ", ".join(f"{names[c] if names else c} {p:.3f}" for c, p in best))
    else:
        print("prediction: " + prediction_text(task, traced.output.data[:1], names))
    return 0


def prediction_text(task: Any, output: np.ndarray, names: list[str] | None) -> str:
    """What a model that is not a classifier found in one image, in words."""
    from ..tasks import Detection, Positions
    from ..viz import masks
    if isinstance(task, Positions):
        return "centre (x, y) = (" + ", ".join(f"{v:.2f}" for v in task.predictions(output)[0]) + ") px"
    if isinstance(task, Detection):
        found = task.detections(output)[0]
        strong = found["scores"] >= 0.3
        listed = ", ".join(f"{names[k] if names else k} {s:.2f}"
                           for k, s in zip(found["labels"][strong], found["scores"][strong]))
        return f"{int(strong.sum())} objects of score 0.3 or more" + (f": {listed}" if listed else "")
    areas = masks.class_areas(task.predictions(output)[0], names)
    return "classes " + (", ".join(f"{name} ({n} px)" for name, n in areas) or "none but the background")


@reports_errors
def run_report(args: argparse.Namespace) -> int:
    from ..viz.report import write_report
    if Path(args.run_dir).is_file():
        raise InspectError(f"report takes the run folder, not a file: got {args.run_dir}; "
                           f"try: convscope report {Path(args.run_dir).parent}")
    if not Path(args.run_dir).is_dir():
        raise InspectError(f"run folder {args.run_dir} not found")
    from ..io import model_path
    model_path(args.run_dir)  # says so if the folder holds no model.safetensors
    where = args.out or Path(args.run_dir) / "report.html"
    print(write_into(where, lambda: write_report(args.run_dir, out=args.out, max_images=args.max_images)))
    return 0


@reports_errors
def run_invariance(args: argparse.Namespace) -> int:
    from ..viz import grids, render
    from ..viz.activations import most_active_channel
    from ..viz.invariance import COLUMNS, invariance_study, invariance_summary, invariance_table
    model, meta = load(args.model, args.input_shape)
    size = min(meta["input_shape"][1:])
    if not 1 <= args.pixels < size / 2:
        raise InspectError(f"--pixels must be at least 1 and less than half the image ({size} px), got {args.pixels}")
    x, notes = input_for(args, meta)
    mean, std = norm_stats(meta)
    print("input: " + "; ".join(notes))
    fill = -np.asarray(mean, np.float32) / np.asarray(std, np.float32)  # black, normalised
    results, detail = invariance_study(model, x, args.pixels, fill)
    names = meta.get("class_names")
    print(f"Shifting the image by {args.pixels} pixels in 8 directions\n")
    print(invariance_table(results, names, detail["map_layer"], detail["pooled_layer"]))
    print("\nColumns:\n" + "\n".join(f"  {line}" for line in COLUMNS))
    summary = invariance_summary(results, names)
    print("\n" + summary)
    images = [grids.image_rgb(im, mean, std) for im in detail["images"]]
    channel = most_active_channel(detail["maps"][0])
    plot = render.plot_invariance(results, images, detail["maps"][:, channel])
    picture = render.titled(plot, f"Shift invariance: the image moved {args.pixels} px in 8 directions",
                            f"Top row: each shifted image, with the class predicted and its probability. Bottom "
                            f"row: map {channel} of layer {detail['map_layer']} (grey scale: dark = low, bright = "
                            f"high), with its aligned correlation and the pooled change. {summary}")
    folder = out_dir(args)
    print(write_into(folder, lambda: render.save_png(folder / "invariance.png", picture)))
    return 0


# ----- parsers ------------------------------------------------------------------------
def _model_argument(parser):
    parser.add_argument("model", metavar="MODEL",
                        help="model file (.safetensors), run folder holding model.safetensors, "
                             f"or zoo name ({', '.join(models.ZOO)}: untrained)")
    parser.add_argument("--input-shape", metavar="C,H,W", help="input shape (default: the model's)")


def _image_arguments(parser):
    parser.add_argument("image", metavar="IMAGE", nargs="?",
                        help="image file (default: a validation image of the model's dataset)")
    parser.add_argument("--index", type=int, default=0, help="validation image to use without IMAGE (default 0)")
    parser.add_argument("--data-dir", help="folder with the dataset's files (default: the cache)")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: a viz folder next to the model file; ./viz for a zoo name)")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add summary, explain, viz, report and invariance to the ``convscope`` subparsers."""
    p = subparsers.add_parser("summary", help="layer table: shapes, parameters, cost, receptive field")
    _model_argument(p)
    p.set_defaults(run=run_summary)

    p = subparsers.add_parser("explain", help="walk through the model in Markdown")
    _model_argument(p)
    p.add_argument("--depth", choices=("concepts", "technical", "math"), default="technical",
                   help="plain words, shapes and numbers, or the equations (default technical)")
    p.set_defaults(run=run_explain)

    p = subparsers.add_parser("viz", help="PNGs: filters, feature maps, top-k, saliency, Grad-CAM, pooling")
    _model_argument(p)
    _image_arguments(p)
    p.add_argument("--top-k", type=int, default=5, help="classes in the prediction chart (default 5)")
    p.set_defaults(run=run_viz)

    p = subparsers.add_parser("report", help="one self-contained HTML report of a training run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by convscope train")
    p.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--max-images", type=int, default=2000, help="validation images to evaluate (default 2000)")
    p.set_defaults(run=run_report)

    p = subparsers.add_parser("invariance", help="shift an image: do the feature maps move with it, does the "
                                                 "prediction stay?")
    _model_argument(p)
    _image_arguments(p)
    p.add_argument("--pixels", type=int, default=2, help="shift in pixels, 1 to under half the image (default 2)")
    p.set_defaults(run=run_invariance)
