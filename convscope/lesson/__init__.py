"""A lesson about the model in hand, written for one reader: ``convscope lesson``.

The reader says how long to read (minutes), what they already know (background), which
aspects they care about (structure, processing, learning, predictions), how technical
(conceptual, technical, math: any combination), whether they want real-world examples
(none, brief, full) and in what tone (conversational, academic, technical). The lesson is
written from the model's own summary and trace (every number marked, see
:mod:`convscope.lesson.facts`), fitted to the minutes (:mod:`convscope.lesson.plan`) and
rendered as Markdown or HTML (:mod:`convscope.lesson.render`). It names the pictures it wants
(the model's filters, the feature maps of a real image, pooling compared, the training
curve); :mod:`convscope.viz.lesson` draws them and embeds them in the HTML.

>>> import numpy as np
>>> from convscope.models import lenet5
>>> lesson = build_lesson(lenet5(rng=np.random.default_rng(0)), (1, 28, 28),
...                       Request(minutes=3, aspects=("processing",), depth=("conceptual",)))
>>> lesson.sections(), 480 <= lesson.words <= 720
(['intro', 'background', 'processing', 'examples', 'close'], True)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..nn import Module
from ..summary import rows_of
from ..tensor import Tensor
from ..trace import trace
from . import detect, extras
from .deeper import deeper_blocks
from .facts import Facts, plain
from .learning import learning_blocks
from .more import more_blocks
from .plan import ASPECTS, BACKGROUNDS, DEPTHS, EXAMPLES, WORDS_PER_MINUTE, Block, Lesson, Request, fit
from .predictions import prediction_blocks
from .processing import processing_blocks
from .render import to_html, to_markdown
from .structure import structure_blocks
from .worked import backward_blocks, conv_cell, loss_worked, softmax_worked
from .writing import TONES, Voice

HEADINGS = {"intro": ("What this is", "Introduction", "Scope"),
            "background": ("First, some words", "Preliminaries", "Assumed"),
            "structure": ("How it is built", "Architecture", "Structure"),
            "processing": ("How it sees an image", "Processing an image", "Forward pass: conv, ReLU, pool"),
            "learning": ("How it learns", "Learning", "Training: loss, gradients"),
            "predictions": ("How it decides", "Making a prediction", "Output: logits, softmax"),
            "examples": ("Where CNNs are used", "Applications", "Applications"),
            "close": ("Before you go", "Conclusion", "Recap")}
SECTION_MAKERS = {"structure": structure_blocks, "processing": processing_blocks, "learning": learning_blocks,
                  "predictions": prediction_blocks}


def all_blocks(f: Facts, request: Request) -> list[Block]:
    """Every block the request could use, before fitting: introduction, primer, the aspects
    at the selected depths with their layer details, examples, the close."""
    v = Voice(request.tone)
    blocks = [extras.intro(f, v, request)] + extras.background(f, v, request)
    worked = {"processing": lambda: conv_cell(f, v, request.depth),
              "predictions": lambda: softmax_worked(f, v) + detect.worked(f, v),
              "learning": lambda: loss_worked(f, v, request.depth) + backward_blocks(f, v, request.depth),
              "structure": list}
    for aspect in request.aspects:
        made = SECTION_MAKERS[aspect](f, v, request.depth)
        cores = len(request.depth)
        deep = deeper_blocks(f, v, aspect, request.depth) + more_blocks(f, v, aspect, request.depth)
        blocks += made[:cores] + worked[aspect]() + made[cores:] + deep
    return blocks + extras.examples(f, v, request) + extras.remember(f, v) + extras.questions(f, v, request.depth)


def length_notes(lesson: Lesson, available: int) -> list[str]:
    """What to tell the reader when the lesson could not fit the minutes."""
    target, words = lesson.request.words, lesson.words
    if words > 1.2 * target:
        return [f"The shortest lesson with these aspects and depths is {words} words, more than "
                f"{lesson.request.minutes:g} minutes at {WORDS_PER_MINUTE} words a minute: choose fewer."]
    if available < 0.8 * target:
        return [f"This model, with these aspects and depths, gives {available} words, about "
                f"{available / WORDS_PER_MINUTE:.1f} minutes at {WORDS_PER_MINUTE} words a minute: add aspects, "
                "depths or examples for a longer lesson."]
    return []


def build_lesson(model: Module, input_shape: Sequence[int], request: Request | None = None, *,
                 task: str | Mapping[str, Any] = "classification", class_names: Sequence[str] | None = None,
                 config: Mapping[str, Any] | None = None, metrics: Sequence[Mapping[str, Any]] = (),
                 image: np.ndarray | None = None, input_note: str = "") -> Lesson:
    """A :class:`Lesson` about ``model`` on (C, H, W) inputs, for ``request``.

    Args:
        task: "classification", "segmentation", "positions" or "detection" (a model file's task
            kind), or the model file's task config (``{"kind": "detection", "nms_iou": 0.5, ...}``).
        class_names, config, metrics: the model's class names, run.json and the records of
            metrics.jsonl (a run folder's; see :func:`read_run`).
        image: one normalised input (1, C, H, W): its trace gives the prediction the text
            cites and the feature maps the HTML shows.
    """
    request = (request or Request()).checked()
    input_shape = tuple(int(s) for s in tuple(input_shape)[-3:])
    if image is not None:
        traced = trace(model, np.asarray(image, np.float32)[-1:].reshape((1,) + input_shape))
    else:
        x = np.zeros((1,) + input_shape, np.float32)
        traced = trace(model, Tensor(x), keep_outputs=False)
    settings = dict(task) if isinstance(task, Mapping) else {"kind": task}
    f = Facts(model, rows_of(traced), input_shape, str(settings.get("kind", "classification")), class_names,
              dict(config or {}), list(metrics), traced if image is not None else None, input_note, settings)
    blocks = all_blocks(f, request)
    v = Voice(request.tone)
    headings = {s: v(*words) for s, words in HEADINGS.items()}
    if f.task == "detection":
        headings["predictions"] = v(*detect.HEADING)
    title = v(f"{f.name()}, explained", f"On the network {f.name()}", f"{f.name()}: notes")
    head_words = len(plain(title).split()) + sum(len(h.split()) for h in headings.values()) // 2
    kept = fit(blocks, max(request.words - head_words, 0))
    lesson = Lesson(title, request, kept, headings, trace=f.trace, found=detect.found(f))
    lesson.notes = length_notes(lesson, sum(b.words for b in fit(blocks, 10 ** 9)))
    return lesson


def read_run(run_dir: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(run.json, the records of metrics.jsonl) of a run folder; ({}, []) for what is absent."""
    folder = Path(run_dir)
    config = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
    path = folder / "metrics.jsonl"
    metrics = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return config, metrics


__all__ = ["ASPECTS", "BACKGROUNDS", "DEPTHS", "EXAMPLES", "TONES", "WORDS_PER_MINUTE", "Lesson", "Request",
           "build_lesson", "plain", "read_run", "to_html", "to_markdown"]
