"""The one place in convscope that draws plots and writes image and HTML files.

Everything else in :mod:`convscope.viz` turns arrays into uint8 RGB arrays; this module
writes text into them (Pillow, with matplotlib's DejaVu Sans font), draws charts
(matplotlib's Agg canvas on a ``Figure``: no window, no pyplot state, the user's backend left
alone), encodes PNGs and writes files. Chart functions return uint8 RGB arrays too, of
``figsize * dpi`` pixels, so they can be saved or inlined in a report alike.

A titled image (:func:`titled`) has a white band on top: one bold title line
(``TITLE_SIZE`` px font) and, optionally, a plain-words note wrapped to the picture's width
(at least ``NOTE_WIDTH``). It is ``title_band(...).shape[0]`` pixels taller than the image,
``max(image width, title_width(title), NOTE_WIDTH if there is a note)`` pixels wide, and the
image sits at its bottom left.
"""

from __future__ import annotations

import base64
import functools
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg  # drawn off-screen, whatever the backend
from matplotlib.figure import Figure  # not pyplot: no global figure state, no window
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike
from PIL import Image, ImageDraw, ImageFont

from ..files import write_atomic
from .invariance import ShiftResult

TITLE_SIZE, NOTE_SIZE, LABEL_SIZE = 15, 12, 11  # font sizes in pixels
NOTE_WIDTH = 480  # notes wrap at the picture's width, but never narrower than this
LABEL_HEIGHT = 15  # band above a grid tile for its name (grids.tile(label=...))
BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)
DPI = 100


# ----- encoding and files -------------------------------------------------------------
def png_bytes(image: ArrayLike) -> bytes:
    """A uint8 (H, W, 3) or (H, W) array encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(image: ArrayLike) -> str:
    """A uint8 image as a ``data:image/png;base64,...`` URI for an inline ``<img>``."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def save_png(path: str | os.PathLike, image: ArrayLike) -> Path:
    """Write a uint8 image as a PNG file, atomically (folders are created); returns the Path."""
    return write_atomic(path, png_bytes(image), durable=False)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a UTF-8 text file (e.g. an HTML report), atomically; returns the Path."""
    return write_atomic(path, text.encode("utf-8"), durable=False)


# ----- text ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib) at ``size`` pixels."""
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"))
    return ImageFont.truetype(path, size)


def text_width(text: str, size: int, bold: bool = False) -> int:
    left, _, right, _ = font(size, bold).getbbox(text)
    return right - left


def wrap(text: str, width: int, size: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` pixels at word boundaries."""
    lines = []
    for word in text.split():
        if lines and text_width(lines[-1] + " " + word, size) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def title_width(title: str, size: int = TITLE_SIZE) -> int:
    """Pixels the bold title needs: its text width plus 6 pixels each side."""
    return text_width(title, size, bold=True) + 12


def title_band(title: str, note: str = "", width: int = 0, size: int = TITLE_SIZE) -> np.ndarray:
    """The white band of :func:`titled`: bold ``title``, then ``note`` wrapped, uint8 (h, w, 3)."""
    width = max(width, title_width(title, size), NOTE_WIDTH if note else 0)
    lines = wrap(note, width - 12, NOTE_SIZE) if note else []
    line = NOTE_SIZE + 4
    canvas = Image.new("RGB", (width, size + 10 + line * len(lines) + (4 if lines else 0)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 4), title, fill=INK, font=font(size, bold=True))
    for k, text in enumerate(lines):
        draw.text((6, size + 8 + k * line), text, fill=(60, 60, 60), font=font(NOTE_SIZE))
    return np.asarray(canvas)


def titled(image: ArrayLike, title: str, note: str = "", size: int = TITLE_SIZE) -> np.ndarray:
    """The image under a white band with ``title`` (``size`` px, bold) and ``note`` in it.

    Shape: (H, W, 3) -> (H + band height, max(W, band width), 3), image at the bottom left.
    """
    image = np.asarray(image, dtype=np.uint8)
    band = title_band(title, note, image.shape[1], size)
    out = np.empty((band.shape[0] + image.shape[0], band.shape[1], 3), np.uint8)
    out[:] = BACKGROUND
    out[:band.shape[0]] = band
    out[band.shape[0]:, :image.shape[1]] = image
    return out


def write_labels(image: ArrayLike, boxes: Sequence[tuple[int, int, int, int]], labels: Sequence[str],
                 size: int = LABEL_SIZE) -> np.ndarray:
    """Each label centred in its ``(top, left, bottom, right)`` box (e.g. a tile's label band)."""
    canvas = Image.fromarray(np.asarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    for (top, left, bottom, right), text in zip(boxes, labels):
        draw.text(((left + right) / 2, (top + bottom) / 2), text, fill=INK, font=font(size), anchor="mm")
    return np.asarray(canvas)


def write_tags(image: ArrayLike, tags: Sequence[tuple[float, float, str, Sequence[int]]], size: int) -> np.ndarray:
    """Each ``(x, y, text, colour)`` of ``tags`` as black text on a ``colour`` band whose top-left
    corner is (x, y), e.g. the class and score over a detected box."""
    canvas = Image.fromarray(np.asarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    for x, y, text, colour in tags:
        draw.rectangle((x, y, x + text_width(text, size) + 4, y + size + 2), fill=tuple(int(c) for c in colour))
        draw.text((x + 2, y + 1), text, fill=(0, 0, 0), font=font(size))
    return np.asarray(canvas)


def legend(ramp: ArrayLike, ticks: Sequence[tuple[float, str]], caption: str) -> np.ndarray:
    """A colour key: ``caption`` above the ``ramp`` (from grids.colour_ramp), and under it
    each ``(fraction, text)`` of ``ticks`` at that fraction of the ramp's width."""
    ramp = np.asarray(ramp, dtype=np.uint8)
    h, w = ramp.shape[:2]
    widest = max([text_width(t, NOTE_SIZE) for _, t in ticks] + [0])
    width = max(text_width(caption, NOTE_SIZE) + 12, w + widest + 12)
    canvas = Image.new("RGB", (width, h + 2 * NOTE_SIZE + 16), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 2), caption, fill=INK, font=font(NOTE_SIZE))
    left, top = 6 + widest // 2, NOTE_SIZE + 6
    canvas.paste(Image.fromarray(ramp), (left, top))
    draw.rectangle((left - 1, top - 1, left + w, top + h), outline=(120, 120, 120))
    for fraction, text in ticks:
        draw.text((left + fraction * (w - 1), top + h + 2), text, fill=INK, font=font(NOTE_SIZE), anchor="ma")
    return np.asarray(canvas)


# ----- charts -------------------------------------------------------------------------
def figure_array(fig: Figure) -> np.ndarray:
    """Draw a matplotlib Figure with Agg and return its pixels, uint8 (H, W, 3)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def plot_top_k(names: Sequence[str], probs: Sequence[float], title: str = "Top predictions",
               size: tuple[float, float] = (4.0, 2.6)) -> np.ndarray:
    """Horizontal bars of the top classes: names (k,), probs (k,). Returns uint8 image."""
    fig = Figure(figsize=size, dpi=DPI)
    ax = fig.add_subplot()
    y = np.arange(len(names))[::-1]
    ax.barh(y, probs, color="#4c72b0")
    ax.set_yticks(y, [str(n) for n in names])
    ax.set_xlim(0, 1)
    for yi, p in zip(y, probs):
        ax.text(min(p + 0.02, 0.85), yi, f"{p:.3f}", va="center", fontsize=8)
    ax.set_xlabel("probability")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return figure_array(fig)


def plot_curves(metrics: Sequence[Mapping[str, Any]], size: tuple[float, float] = (8.0, 3.0)) -> np.ndarray:
    """Loss and accuracy (or the mean position error, or the mAP@0.5 of detections) per epoch from
    ``metrics.jsonl`` records. Returns uint8 image."""
    fig = Figure(figsize=size, dpi=DPI)
    epochs = [m["epoch"] for m in metrics]
    second = ("acc", "accuracy")
    for key, label in (("mpe", "mean position error (px)"), ("map50", "mAP@0.5")):
        if any(f"val_{key}" in m or f"train_{key}" in m for m in metrics):
            second = (key, label)
    for i, (key, label) in enumerate((("loss", "loss"), second)):
        ax = fig.add_subplot(1, 2, i + 1)
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [m.get(f"{split}_{key}") for m in metrics]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], style, ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_array(fig)


def plot_precision_recall(curves: Sequence[Mapping[str, np.ndarray] | None], names: Sequence[str],
                          aps: Sequence[float], colours: np.ndarray,
                          size: tuple[float, float] = (6.0, 4.2)) -> np.ndarray:
    """One precision-recall curve per class (``{"recall", "precision"}``, or None for a class
    with no object), each in its colour (uint8 (K, 3)) and named with its average precision."""
    fig = Figure(figsize=size, dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    for k, curve in enumerate(curves):
        if curve is None or not len(curve["recall"]):
            continue
        recall = np.concatenate([[0.0], curve["recall"]])
        precision = np.concatenate([[curve["precision"][0]], curve["precision"]])
        ax.plot(recall, precision, color=np.asarray(colours[k]) / 255, lw=1.4, label=f"{names[k]}  AP {aps[k]:.3f}")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (objects found)")
    ax.set_ylabel("precision (detections right)")
    ax.set_title("precision-recall at IoU 0.5, per class", fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    return figure_array(fig)


def plot_bars(values: ArrayLike, names: Sequence[str] | None = None, highlight: int | None = None,
              ylabel: str = "value", size: tuple[float, float] = (9.0, 2.6)) -> np.ndarray:
    """One bar per value of a 1-D vector (F,), e.g. a fully connected layer's outputs.

    ``names`` (F,) label each bar (e.g. class names for the logits); without them the axis
    counts units. Bar ``highlight`` is drawn in orange. Returns uint8 image.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    fig = Figure(figsize=size, dpi=DPI)
    ax = fig.add_subplot()
    colours = ["#dd8452" if i == highlight else "#4c72b0" for i in range(values.size)]
    ax.bar(np.arange(values.size), values, color=colours, width=0.8 if names else 1.0)
    ax.axhline(0, color="#555", lw=0.8)
    if names:
        ax.set_xticks(np.arange(values.size), [str(n) for n in names], fontsize=10)
        ax.set_xlabel("class")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("unit (position in the vector)")
        ax.set_xlim(-1, values.size)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return figure_array(fig)


def plot_confusion(matrix: ArrayLike, class_names: Sequence[str], size: tuple[float, float] = (7.0, 6.0)) -> np.ndarray:
    """Confusion matrix (K, K), rows = true class, columns = predicted, with counts."""
    matrix = np.asarray(matrix)
    fig = Figure(figsize=size, dpi=DPI)
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90 if len(class_names) > 10 else 0, fontsize=11)
    ax.set_yticks(ticks, class_names, fontsize=11)
    ax.set_xlabel("predicted class", fontsize=11)
    ax.set_ylabel("true class", fontsize=11)
    if len(class_names) <= 12:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=11 if len(class_names) <= 10 else 9,
                    color="white" if v > threshold else "black", fontweight="bold" if i == j else "normal")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return figure_array(fig)


def plot_invariance(results: Sequence[ShiftResult], images: Sequence[np.ndarray], maps: np.ndarray,
                    size_per_shift: float = 1.4) -> np.ndarray:
    """Rows: each shifted image, then its feature map (one channel); numbers in titles.

    Args: results (list of ShiftResult), images (S, H, W, 3) floats in [0, 1], maps
        (S, h, w). Returns uint8 image of ``(S * size_per_shift) x (2.6 * size_per_shift)``
        inches at DPI.
    """
    count = len(results)
    fig = Figure(figsize=(count * size_per_shift, 2.6 * size_per_shift), dpi=DPI)
    lo, hi = float(np.min(maps)), float(np.max(maps))
    for k, (r, image, fmap) in enumerate(zip(results, images, maps)):
        top = fig.add_subplot(2, count, k + 1)
        top.imshow(image)
        top.set_title(f"({r.dy:+d},{r.dx:+d})\nclass {r.predicted} p={r.probability:.2f}", fontsize=7)
        bottom = fig.add_subplot(2, count, count + k + 1)
        bottom.imshow(fmap, cmap="gray", vmin=lo, vmax=hi)
        bottom.set_title(f"corr {r.aligned_corr:.2f}\npooled Δ {r.pooled_change:.2f}", fontsize=7)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return figure_array(fig)
