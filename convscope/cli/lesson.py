"""``convscope lesson``: a lesson about a model, written for one reader.

    convscope lesson runs/lenet5-digits --minutes 5 --background none --tone conversational --out lesson.html
    convscope lesson lenet5 --depth technical,math --examples none --out lesson.md

MODEL is a model file, a run folder or a zoo name (as for ``convscope explain``; default
lenet5). A run folder also gives the training curve and the run's numbers. The image the
lesson follows is IMAGE (``--image``), else a validation image of the model's dataset when it
can be loaded, else none (the lesson then shows the filters only). ``--out`` ending in
``.html`` writes a page with the pictures inline; ``.md`` writes Markdown without pictures;
without ``--out`` the Markdown is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .inspect import InspectError, load, load_image, norm_stats, reports_errors, write_into


def comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def lesson_image(args: argparse.Namespace, meta: dict) -> tuple[object, str]:
    """(x or None, a note on where it came from)."""
    if args.image:
        x, notes = load_image(args.image, meta)
        return x, f"{args.image} ({'; '.join(notes)})" if notes else str(args.image)
    if not meta.get("dataset"):
        return None, "none (the model names no dataset to take one from; pass --image)"
    from .inspect import validation_sample
    try:
        x, notes = validation_sample(meta, args.index, args.data_dir)
    except (InspectError, OSError, ValueError, ImportError) as error:
        return None, f"none ({error})"
    return x, "; ".join(notes)


def run_folder(spec: str) -> Path | None:
    """The run folder of MODEL: itself, or the folder of a model file holding metrics.jsonl."""
    path = Path(spec)
    folder = path if path.is_dir() else path.parent
    return folder if (folder / "metrics.jsonl").is_file() or (folder / "run.json").is_file() else None


@reports_errors
def run_lesson(args: argparse.Namespace) -> int:
    from ..lesson import WORDS_PER_MINUTE, Request, build_lesson, read_run, to_markdown
    suffix = Path(args.out).suffix.lower() if args.out else ".md"
    if suffix not in (".html", ".md"):
        raise InspectError(f"--out must end in .html or .md, got {args.out}")
    request = Request(args.minutes, args.background, comma_list(args.aspects), comma_list(args.depth),
                      args.examples, args.tone).checked()
    model, meta = load(args.model, args.input_shape)
    folder = run_folder(args.model) if Path(args.model).exists() else None
    config, metrics = read_run(folder) if folder is not None else ({}, [])
    x, note = lesson_image(args, meta)  # its trace gives the worked examples, in Markdown too
    task = meta.get("task") or "classification"  # the task's config: a detector's decoding settings too
    lesson = build_lesson(model, meta["input_shape"], request, task=task, class_names=meta.get("class_names"),
                          config=config, metrics=metrics, image=x, input_note=note)
    if not args.out:
        print(to_markdown(lesson), end="")
        return 0
    text = html_text(lesson, model, meta, metrics) if suffix == ".html" else to_markdown(lesson)
    from ..viz import render
    print(write_into(args.out, lambda: render.write_text(args.out, text)))
    rate = WORDS_PER_MINUTE
    print(f"{lesson.words} words: about {lesson.words / rate:.1f} minutes at {rate} words a minute "
          f"(asked for {request.minutes:g})" + (f"; image: {note}" if note else ""))
    for line in lesson.notes:
        print(f"note: {line}")
    return 0


def html_text(lesson, model, meta: dict, metrics: list) -> str:
    """The lesson as HTML with the model's pictures."""
    from ..viz.lesson import lesson_html
    mean, std = norm_stats(meta)
    return lesson_html(lesson, model, metrics, mean, std, meta.get("class_names"))


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lesson`` to the ``convscope`` subparsers."""
    from ..lesson import BACKGROUNDS, EXAMPLES, TONES
    p = subparsers.add_parser("lesson", help="a lesson about a model, written for you (HTML with its pictures, "
                                             "or Markdown)")
    p.add_argument("model", metavar="MODEL", nargs="?", default="lenet5",
                   help="model file, run folder or zoo name (default lenet5, untrained)")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape (default: the model's)")
    p.add_argument("--minutes", type=float, default=10, help="reading time, at 200 words a minute (default 10)")
    p.add_argument("--background", choices=BACKGROUNDS, default="some-ml", help="what you already know "
                   "(default some-ml)")
    p.add_argument("--aspects", default="structure,processing,learning,predictions",
                   help="comma-separated: structure, processing, learning, predictions (default all)")
    p.add_argument("--depth", default="conceptual,technical",
                   help="comma-separated: conceptual, technical, math (default conceptual,technical)")
    p.add_argument("--examples", choices=EXAMPLES, default="brief", help="real-world uses (default brief)")
    p.add_argument("--tone", choices=TONES, default="conversational", help="default conversational")
    p.add_argument("--image", help="image file to follow through the network (default: a validation image)")
    p.add_argument("--index", type=int, default=0, help="validation image to use without --image (default 0)")
    p.add_argument("--data-dir", help="folder with the dataset's files (default: the cache)")
    p.add_argument("--out", help="lesson.html (with pictures) or lesson.md; default: Markdown on stdout")
    p.set_defaults(run=run_lesson)
