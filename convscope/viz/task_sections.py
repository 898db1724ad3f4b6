"""The report's sections for models that do not name one class per image: positions (a
locator), masks (segmentation) and boxes (a detector), each on the validation split.

>>> sorted(TASK_SECTIONS)
['detection', 'positions', 'segmentation']
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data import Dataset, normalise
from ..inference import predict
from ..nn import Module, eval_mode
from ..tasks import Detection, Positions, Segmentation
from ..tensor import Tensor, no_grad
from . import boxes, gallery, grids, masks, positions, render
from .pages import explained, figure, img, table


def positions_section(model: Module, dataset: Dataset, meta: Mapping[str, Any], max_images: int,
                      task: Positions, shown: int = 6) -> tuple[str, str]:
    """Mean / median position error and canvases with the true and predicted centres."""
    images, true = dataset.images[:max_images], np.asarray(dataset.targets[:max_images], np.float64)
    x = normalise(images, meta["mean"], meta["std"])
    with eval_mode(model), no_grad():
        predicted = np.concatenate([task.predictions(model(Tensor(x[i:i + 500])).data)
                                    for i in range(0, len(x), 500)])
    result = task.evaluate(predicted / task.scale, true)
    intro = (f"<p>Mean position error {result['mean_error']:.3f} px, median {result['median_error']:.3f} px; "
             f"{result['within_fraction']:.2%} within {result['within']:g} px, on {len(true)} of "
             f"{len(dataset)} validation canvases.</p>")
    parts = []
    for title, indices in zip(("Largest errors", "Typical"), positions.worst_and_typical(result["errors"], shown)):
        pictures = [figure(positions.centres_picture(gallery.input_picture(x[i:i + 1], meta["mean"], meta["std"],
                                                                           scale=3), 3, true[i], predicted[i]),
                           f"error {result['errors'][i]:.2f} px") for i in indices]
        parts.append(f"<h3>{title}</h3>{''.join(pictures)}")
    return "Positions (validation)", explained("Positions", intro + "".join(parts))


def segmentation_section(model: Module, dataset: Dataset, meta: Mapping[str, Any], max_images: int,
                         task: Segmentation | None = None, samples: int = 4) -> tuple[str, str]:
    """Pixel accuracy, mIoU, the IoU of each class, and a few scenes with true and predicted masks."""
    images, labels = dataset.images[:max_images], np.asarray(dataset.labels[:max_images])
    x = normalise(images, meta["mean"], meta["std"])
    probs = predict(model, x, batch_size=100)
    names = list(meta.get("class_names") or dataset.class_names)
    result = Segmentation(len(names)).evaluate(probs, labels)
    rows = [(name, "-" if np.isnan(iou) else f"{iou:.3f}") for name, iou in zip(names, result["iou_per_class"])]
    intro = (f"<p>Pixel accuracy {result['pixel_accuracy']:.2%}, mIoU {result['mean_iou']:.3f} on "
             f"{len(labels)} of {len(dataset.labels)} validation scenes.</p>")
    scenes = []
    for i in range(min(samples, len(labels))):
        grey = images[i, 0]  # uint8, as stored
        row = np.concatenate([np.repeat(grey[..., None], 3, -1), masks.overlay(grey, labels[i]),
                              masks.overlay(grey, probs[i].argmax(axis=0))], axis=1)
        scenes.append(figure(grids.enlarge(row, 3), f"scene {i}: image, true mask, predicted mask"))
    legend = " ".join(f"<span style='color:rgb{tuple(int(c) for c in masks.PALETTE[k])}'>&#9632;</span> "
                      f"{html.escape(name)}" for k, name in enumerate(names) if k > 0)
    return "Segmentation (validation)", explained("Segmentation", intro + table(rows) + f"<p>{legend}</p>"
                                                  + "".join(scenes))


def detection_section(model: Module, dataset: Dataset, meta: Mapping[str, Any], max_images: int,
                      task: Detection, samples: int = 6) -> tuple[str, str]:
    """mAP@0.5 and @0.5:0.95, each class's AP and precision-recall curve, and scenes with their
    true boxes beside the detected ones."""
    images, targets = dataset.images[:max_images], np.asarray(dataset.targets[:max_images])
    x = normalise(images, meta["mean"], meta["std"])
    with eval_mode(model), no_grad():
        outputs = np.concatenate([model(Tensor(x[i:i + 100])).data for i in range(0, len(x), 100)])
    result = task.evaluate(outputs, targets)
    names = list(meta.get("class_names") or dataset.class_names or range(task.num_classes))
    names = [str(n) for n in names]
    rows = [(name, "-" if np.isnan(ap) else f"{ap:.3f}") for name, ap in zip(names, result["ap50_per_class"])]
    intro = (f"<p>mAP@0.5 {result['map50']:.3f}, mAP@0.5:0.95 {result['map']:.3f} on {len(targets)} of "
             f"{len(dataset)} validation scenes.</p>")
    colours = np.array([boxes.colour(k) for k in range(len(names))])
    curves = img(render.plot_precision_recall(result["curves"], names, result["ap50_per_class"], colours),
                 "precision-recall curves")
    scenes = []
    for i in range(min(samples, len(targets))):
        truth = {"boxes": targets[i, targets[i, :, 4] >= 0, :4], "labels": targets[i, targets[i, :, 4] >= 0, 4]}
        found = result["detections"][i]
        strong = {k: v[found["scores"] >= 0.3] for k, v in found.items()}
        scenes.append(figure(boxes.truth_and_found(images[i, 0], truth, strong, names),
                             f"scene {i}: true boxes, detected boxes (score >= 0.3)"))
    return "Detection (validation)", explained("Detection", intro + table(rows) + curves + "".join(scenes))


TASK_SECTIONS = {"positions": positions_section, "segmentation": segmentation_section, "detection": detection_section}
