"""The one place in convscope that draws plots and writes image and HTML files.

Everything else in :mod:`convscope.viz` turns arrays into uint8 RGB arrays; this module
adds titles (Pillow), draws charts (matplotlib's Agg canvas on a ``Figure``: no window, no
pyplot state, the user's backend left alone), encodes PNGs and writes files. Chart functions return uint8 RGB arrays too, of
``figsize * dpi`` pixels, so they can be saved or inlined in a report alike.

A titled image (:func:`titled`) is ``TITLE_HEIGHT`` pixels taller than the image and
``max(image width, title_width(title))`` pixels wide.
"""

import base64
import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg  # drawn off-screen, whatever the backend
from matplotlib.figure import Figure  # not pyplot: no global figure state, no window
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

TITLE_HEIGHT = 20
BACKGROUND = (255, 255, 255)
DPI = 100


# ----- encoding and files -------------------------------------------------------------
def png_bytes(image):
    """A uint8 (H, W, 3) or (H, W) array encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(image):
    """A uint8 image as a ``data:image/png;base64,...`` URI for an inline ``<img>``."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def save_png(path, image):
    """Write a uint8 image as a PNG file (folders are created); returns the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(image))
    return path


def write_text(path, text):
    """Write a UTF-8 text file (e.g. an HTML report); returns the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ----- titles -------------------------------------------------------------------------
def title_width(title):
    """Pixels the title needs: its text width plus 4 pixels each side."""
    left, _, right, _ = ImageFont.load_default().getbbox(title)
    return right - left + 8


def titled(image, title):
    """The image under a white band with ``title`` written in it.

    Shape: (H, W, 3) -> (H + TITLE_HEIGHT, max(W, title_width(title)), 3), image at the left.
    """
    image = np.asarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (max(w, title_width(title)), h + TITLE_HEIGHT), BACKGROUND)
    canvas.paste(Image.fromarray(image), (0, TITLE_HEIGHT))
    ImageDraw.Draw(canvas).text((4, 4), title, fill=(0, 0, 0), font=ImageFont.load_default())
    return np.asarray(canvas)


# ----- charts -------------------------------------------------------------------------
def figure_array(fig):
    """Draw a matplotlib Figure with Agg and return its pixels, uint8 (H, W, 3)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def plot_top_k(names, probs, title="Top predictions", size=(4.0, 2.6)):
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


def plot_curves(metrics, size=(8.0, 3.0)):
    """Loss and accuracy per epoch from ``metrics.jsonl`` records. Returns uint8 image."""
    fig = Figure(figsize=size, dpi=DPI)
    epochs = [m["epoch"] for m in metrics]
    for i, (key, label) in enumerate((("loss", "loss"), ("acc", "accuracy"))):
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


def plot_confusion(matrix, class_names, size=(5.0, 4.5)):
    """Confusion matrix (K, K), rows = true class, columns = predicted, with counts."""
    matrix = np.asarray(matrix)
    fig = Figure(figsize=size, dpi=DPI)
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90 if len(class_names) > 10 else 45, fontsize=7)
    ax.set_yticks(ticks, class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 12:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                    color="white" if v > threshold else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return figure_array(fig)


def plot_invariance(results, images, maps, size_per_shift=1.4):
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
