"""A training run as one self-contained HTML page (every image inlined as a PNG data URI).

``write_report(run_dir)`` reads the run folder that training writes::

    RUN_DIR/model.safetensors   the trained model       RUN_DIR/run.json   the run's config
    RUN_DIR/metrics.jsonl       one JSON object per epoch (epoch, train_loss, train_acc,
                                val_loss, val_acc, lr, seconds, images_per_s)

and writes ``RUN_DIR/report.html`` with the run's settings, the training curves, the model
summary, the confusion matrix on the validation set, the most confidently misclassified
validation images, the filters, the feature maps, saliency maps and Grad-CAM of a few
validation images, and max / average / L2 pooling of one feature map. Every section opens
with a short paragraph in plain words (``EXPLANATIONS``). The page builders here are pure;
files are written by :mod:`convscope.viz.render`.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..data import Dataset, normalise
from ..inference import predict
from ..metrics import confusion_matrix
from ..nn import Module
from ..summary import summary
from ..tasks import task_from_config
from ..trace import Trace, trace
from . import gallery, render
from .activations import conv_layers
from .pages import EXPLANATIONS, STYLE, TASK_EXPLANATIONS, explained, figure, img, page, table  # noqa: F401
from .task_sections import TASK_SECTIONS

IRRELEVANT = {"adam": {"momentum"}, "adamw": {"momentum"}}  # settings the optimizer does not use
METRIC_NAMES = {"train_loss": "final train loss", "train_acc": "final train accuracy",
                "val_loss": "final validation loss", "val_acc": "final validation accuracy",
                "train_mpe": "final train mean position error (px)",
                "val_mpe": "final validation mean position error (px)",
                "lr": "learning rate in the last epoch", "seconds": "seconds for the last epoch",
                "images_per_s": "images per second (last epoch)"}


# ----- reading the run ----------------------------------------------------------------
def load_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of ``metrics.jsonl`` (one dict per epoch); [] if the file is absent."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run.json`` as a dict; {} if the file is absent."""
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


# ----- numbers ------------------------------------------------------------------------
def confident_mistakes(probs: np.ndarray, labels: np.ndarray, k: int = 12) -> np.ndarray:
    """Indices of the k misclassified images with the highest predicted probability."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    return wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:k]


# ----- sections -----------------------------------------------------------------------
def metric_text(key: str, value: object) -> object:
    """A metric for people: accuracies in percent, rates like 8.41e-04, others 4 digits."""
    if not isinstance(value, float):
        return value
    if key.endswith("_acc"):
        return f"{value:.2%}"
    if key == "lr":
        return f"{value:.3g}" if value >= 0.01 else f"{value:.2e}"
    return f"{value:,.1f}" if key in ("seconds", "images_per_s") else f"{value:.4g}"


def run_settings(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """run.json's settings without those the chosen optimizer ignores (momentum for Adam);
    a dict value such as ``{"shift": 1}`` reads "shift=1"."""
    unused = IRRELEVANT.get(str(config.get("optimizer", "")).lower(), set())
    return [(k, ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict) else v)
            for k, v in config.items() if k not in unused]


def final_numbers(config: Mapping[str, Any], last: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The last epoch's metrics in words; the learning rate with the schedule that set it."""
    pairs = []
    for key, value in last.items():
        text = metric_text(key, value)
        if key == "lr" and config.get("schedule") and config.get("lr") is not None:
            text = f"{text} (set by the {config['schedule']} schedule; starting / peak lr {config['lr']})"
        if key != "epoch":
            pairs.append((METRIC_NAMES.get(key, f"final {key}"), text))
    return pairs


def run_section(config: Mapping[str, Any], metrics: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    last = metrics[-1] if metrics else {}
    pairs = run_settings(config) + final_numbers(config, last)
    if last.get("epoch") is not None:
        pairs.append(("epochs recorded", last["epoch"]))
    return "Run", explained("Run", table(pairs) if pairs else "<p class='note'>no run.json or metrics.jsonl</p>")


def curves_section(metrics: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    if not metrics:
        return "Training curves", "<p class='note'>no metrics.jsonl in the run folder</p>"
    return "Training curves", explained("Training curves", img(render.plot_curves(metrics), "training curves"))


def validation_sections(model: Module, dataset: Dataset, meta: Mapping[str, Any], max_images: int,
                        mistakes: int = 12) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Confusion matrix and most confident mistakes on the first ``max_images`` images."""
    images, labels = dataset.images[:max_images], np.asarray(dataset.labels[:max_images])
    x = normalise(images, meta["mean"], meta["std"])
    probs = predict(model, x, batch_size=500)
    predicted = probs.argmax(axis=1)
    names = list(meta.get("class_names") or dataset.class_names)
    accuracy = float((predicted == labels).mean())
    intro = (f"<p>Accuracy {accuracy:.2%} on {len(labels)} of {len(dataset.labels)} "
             f"validation images.</p>")
    matrix = img(render.plot_confusion(confusion_matrix(labels, predicted, len(names)), names), "confusion matrix")
    figures = []
    for i in confident_mistakes(probs, labels, mistakes):
        picture = gallery.input_picture(x[i:i + 1], meta["mean"], meta["std"], scale=3)
        figures.append(figure(picture, f"true {names[labels[i]]}, predicted {names[predicted[i]]} "
                                       f"({probs[i, predicted[i]]:.2f})"))
    mistakes_html = "".join(figures) or "<p>No misclassified images.</p>"
    return [("Confusion matrix (validation)", explained("Confusion matrix", intro + matrix)),
            ("Most confidently misclassified", explained("Most confidently misclassified", mistakes_html))], x, labels


def filters_section(model: Module) -> tuple[str, str]:
    pictures = "".join(f"<div>{img(image, name)}</div>" for name, image in gallery.filter_pictures(model))
    return "Filters", explained("Filters", pictures)


def model_section(model: Module, meta: Mapping[str, Any]) -> tuple[str, str]:
    if not meta.get("input_shape"):
        return "Model", "<p class='note'>the model file does not record its input shape</p>"
    return "Model", explained("Model", f"<pre>{html.escape(summary(model, meta['input_shape']))}</pre>")


def sample_indices(labels: ArrayLike, samples: int) -> list[int]:
    """The first image of each of the first ``samples`` classes present (varied examples)."""
    _, first = np.unique(np.asarray(labels), return_index=True)
    return sorted(first)[:samples]


def _label(labels, i, names):
    return html.escape(names[labels[i]] if names else str(labels[i]))


def sample_traces(model: Module, x: np.ndarray, labels: np.ndarray, samples: int) -> dict[int, Trace]:
    """``{index: Trace}``: one pass with gradients per sample image, read by the feature-map,
    saliency, Grad-CAM and pooling sections alike."""
    return {i: trace(model, x[i:i + 1], gradients=True) for i in sample_indices(labels, samples)}


def features_section(model: Module, x: np.ndarray, labels: np.ndarray, meta: Mapping[str, Any], samples: int,
                     traces: dict[int, Trace] | None = None) -> tuple[str, str]:
    """Input and conv-layer feature maps of a few images of x, of different classes."""
    traces = traces or sample_traces(model, x, labels, samples)
    convs = [name for name, _ in conv_layers(model)]
    names = meta.get("class_names")
    parts = []
    for i, t in traces.items():
        one = x[i:i + 1]
        pictures = [img(gallery.input_picture(one, meta["mean"], meta["std"]), f"image {i}")]
        pictures += [f"<div>{img(image, name)}</div>" for name, image in gallery.feature_pictures(t, layers=convs)]
        parts.append(f"<div><h3>Validation image {i} (class {_label(labels, i, names)})</h3>{''.join(pictures)}</div>")
    return "Feature maps", explained("Feature maps", "".join(parts))


def attention_section(model: Module, x: np.ndarray, labels: np.ndarray, meta: Mapping[str, Any], samples: int,
                      traces: dict[int, Trace] | None = None) -> tuple[str, str]:
    """Saliency map and Grad-CAM of the same sample images as the feature maps."""
    traces = traces or sample_traces(model, x, labels, samples)
    names = meta.get("class_names")
    parts = []
    for i, t in traces.items():
        pictures = gallery.saliency_pictures(t, None, meta["mean"], meta["std"], names)
        parts.append(f"<div><h3>Validation image {i} (class {_label(labels, i, names)})</h3>"
                     + "".join(img(image, f"{stem} of image {i}") for stem, image in pictures) + "</div>")
    heading = "Where the network looks: saliency and Grad-CAM"
    return heading, explained("Where the network looks", "".join(parts))


def pooling_section(model: Module, x: np.ndarray, labels: np.ndarray, samples: int,
                    traces: dict[int, Trace] | None = None) -> tuple[str, str]:
    """Max, average and L2 pooling of one map of the first sample image."""
    traces = traces or sample_traces(model, x, labels, samples)
    (stem, image), = gallery.pooling_picture(next(iter(traces.values())))
    return "Pooling compared: max, average and L2", explained("Pooling compared", img(image, stem))


# ----- the report ---------------------------------------------------------------------
def _load_model(run_dir):
    from ..io import load_model  # written alongside; imported when a run is reported
    return load_model(run_dir)  # a run folder: its model.safetensors


def _load_validation(name):
    """The validation split of dataset ``name``, or (None, the reason it is unavailable)."""
    if not name:
        return None, "neither the model file nor run.json names the dataset"
    try:
        from ..data import load_dataset
        return load_dataset(name, split="val"), None
    except (ImportError, OSError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"


def with_defaults(meta: Mapping[str, Any], dataset: Dataset | None) -> dict[str, Any]:
    """meta with mean/std (from the dataset, else 0 and 1) where the model file has none."""
    meta = dict(meta)
    channels = dataset.images.shape[1] if dataset is not None else (meta.get("input_shape") or [1])[0]
    for key, default in (("mean", 0.0), ("std", 1.0)):
        if not meta.get(key):
            stats = getattr(dataset, key, None)
            meta[key] = list(stats) if stats is not None else [default] * channels
    return meta


def write_report(run_dir: str | os.PathLike, model: Module | None = None, meta: Mapping[str, Any] | None = None,
                 dataset: Dataset | None = None, out: str | os.PathLike | None = None, max_images: int = 2000,
                 samples: int = 3) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``out``) and return its Path.

    Args:
        model, meta: as returned by ``convscope.io.load_model``; loaded from
            ``RUN_DIR/model.safetensors`` when not given.
        dataset: validation Dataset (images uint8 (N, C, H, W), labels, class_names);
            loaded with ``load_dataset(meta["dataset"], "val")`` when not given. If that
            fails the report says why and shows what does not need it.
        max_images (int): evaluate at most this many validation images. Default 2000.
        samples (int): images whose feature maps are shown, each of another class. Default 3.
    """
    run_dir = Path(run_dir)
    if meta is None:
        loaded, meta = _load_model(run_dir)
        model = loaded if model is None else model
    elif model is None:
        raise ValueError("write_report: pass model together with meta, or neither")
    config, metrics = load_config(run_dir), load_metrics(run_dir)
    meta = dict(meta, dataset=meta.get("dataset") or config.get("data"))
    reason = None
    if dataset is None:
        dataset, reason = _load_validation(meta["dataset"])
    meta = with_defaults(meta, dataset)
    sections = [run_section(config, metrics), curves_section(metrics), model_section(model, meta)]
    task = task_from_config(meta.get("task"), len(meta.get("class_names") or ()))
    if dataset is not None and task.kind in TASK_SECTIONS:  # positions, masks, boxes: not one class per image
        sections += [TASK_SECTIONS[task.kind](model, dataset, meta, max_images, task), filters_section(model)]
    elif dataset is not None:
        validation, x, labels = validation_sections(model, dataset, meta, max_images)
        traces = sample_traces(model, x, labels, samples)
        sections += validation + [filters_section(model), features_section(model, x, labels, meta, samples, traces),
                                  attention_section(model, x, labels, meta, samples, traces),
                                  pooling_section(model, x, labels, samples, traces)]
    else:
        sections += [("Validation", f"<p class='note'>validation data not available ({html.escape(reason)})</p>"),
                     filters_section(model)]
    name = meta.get("model") or type(model).__name__
    title = f"convscope report: {name} on {meta['dataset'] or '?'} ({run_dir.name})"
    return render.write_text(Path(out) if out else run_dir / "report.html", page(title, sections))
