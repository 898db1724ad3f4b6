"""``convscope evaluate`` and ``convscope predict`` for a detector: mAP, and boxes drawn on images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..nn import eval_mode
from ..tensor import Tensor, no_grad
from .train import _failures, _prepared, _printed_head, image_paths


def format_detection(result, class_names):
    """mAP@0.5, mAP@0.5:0.95 and the AP@0.5 of every class with its number of true objects."""
    labels = np.asarray(result["targets"])[..., 4].ravel()  # padding rows have class -1
    objects = np.bincount(labels[labels >= 0].astype(np.int64), minlength=len(class_names))
    lines = [f"mAP@0.5 {result['map50']:.4f}, mAP@0.5:0.95 {result['map']:.4f} (mean over the classes "
             f"present; COCO's 101-point interpolation), loss {result['loss']:.4f}", "",
             f"{'class':>14}  AP@0.5  objects"]
    for k, name in enumerate(class_names):
        ap = result["ap50_per_class"][k]
        lines.append(f"{name[:14]:>14}  {'     -' if np.isnan(ap) else f'{ap:6.3f}'}  {objects[k]:7d}")
    return "\n".join(lines)


def detect_one(model, meta, task, path, min_score):
    """Detect the objects of one image and draw them over it, next to it (``NAME.boxes.png``);
    ``{"path", "boxes_png", "objects": [{"label", "score", "box": [x0, y0, x1, y1]}...], "notes"}``
    (boxes in pixels of the model's input), or with "error"."""
    from ..viz import boxes, grids, render
    x, notes, failure = _prepared(path, meta)
    if failure:
        return failure
    with eval_mode(model), no_grad():
        found = task.detections(model(Tensor(x)).data)[0]
    strong = {k: v[found["scores"] >= min_score] for k, v in found.items()}
    names = meta.get("class_names") or []
    mean, std = np.asarray(meta["mean"]).reshape(-1, 1, 1), np.asarray(meta["std"]).reshape(-1, 1, 1)
    grey = grids.to_uint8((x[0] * std + mean).mean(axis=0))
    out = Path(path).with_suffix(".boxes.png")
    render.save_png(out, boxes.draw_boxes(grey, strong["boxes"], strong["labels"], strong["scores"], names))
    objects = [{"label": names[k] if k < len(names) else str(k), "score": round(float(s), 4),
                "box": [round(float(v), 2) for v in box]}
               for box, s, k in zip(strong["boxes"], strong["scores"], strong["labels"])]
    return {"path": path, "boxes_png": str(out), "objects": objects, "notes": notes}


def print_detections(result, meta):
    if not _printed_head(result):
        return
    _, height, width = meta["input_shape"]
    for obj in result["objects"]:
        x0, y0, x1, y1 = obj["box"]
        print(f"  {obj['label']:>8}  {obj['score']:.2f}  box ({x0:.1f}, {y0:.1f}) - ({x1:.1f}, {y1:.1f})")
    if not result["objects"]:
        print("  nothing found")
    print(f"  {len(result['objects'])} found on the {width}x{height} input; boxes drawn: {result['boxes_png']}")


def run_detect(args, model, meta, task):
    """``convscope predict`` for a detector: the boxes of each image, drawn and listed."""
    if args.format == "csv":
        raise ValueError("--format csv lists one class per image; a detector gives boxes per image: use "
                         "--format text or json")
    if not 0 <= args.min_score <= 1:
        raise ValueError(f"--min-score must be a score in [0, 1], got {args.min_score}")
    paths = [p for p in image_paths(args.images) if p in args.images or not p.endswith(".boxes.png")]
    results = [detect_one(model, meta, task, path, args.min_score) for path in paths]
    if args.format == "json":
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print_detections(result, meta)
    return _failures(results)
