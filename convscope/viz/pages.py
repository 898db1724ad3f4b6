"""The HTML of the report's pages: the style, the plain-words paragraph of every section, and
small builders (an inlined image, a figure, a table, a page). Pure: strings in, strings out.

>>> table([("epochs", 3)])
'<table><tr><th>epochs</th><td>3</td></tr></table>'
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import numpy as np

from . import render

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
img{image-rendering:pixelated;max-width:100%;margin:4px;vertical-align:top}
figure{display:inline-block;margin:4px;text-align:center;font-size:.8em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
.note{color:#a33}.explain{color:#444;max-width:60em;line-height:1.4}"""

EXPLANATIONS = {
    "Run": "The settings this model was trained with, and the numbers from the last epoch.",
    "Training curves": (
        "Loss (lower is better) and accuracy (higher is better) after each pass over the training data "
        "(an epoch). 'train' is measured on the images the model learns from, 'val' on held-out validation "
        "images it never trains on. If val stops improving while train keeps getting better, the model is "
        "starting to memorise (overfit)."),
    "Model": ("The layers in order, with the shape of what each one outputs, how many numbers it learns "
              "(Params), its work per image (Mult-adds) and how many input pixels one output pixel sees (RF)."),
    "Confusion matrix": (
        "Each row is the true class, each column the class the model predicted; a cell counts the validation "
        "images with that pair. The diagonal (bold) holds the correct answers; any other cell with a large "
        "number is a pair of classes the model confuses."),
    "Segmentation": (
        "The model names a class for every pixel. Pixel accuracy is the share of pixels it gets right; most "
        "pixels are background, so it flatters. The IoU of a class is the overlap of the pixels predicted and "
        "truly of that class divided by their union (1 is perfect); mIoU is its mean over the classes. Below: "
        "validation scenes, their true masks and the predicted ones, one colour per class."),
    "Most confidently misclassified": (
        "Validation images the model got wrong while being most sure of itself, with the true and the "
        "predicted class and the probability it gave. They often show odd writing, wrong labels, or a real "
        "weakness of the model."),
    "Filters": (
        "The weights each convolution layer learned. A filter is a small pattern that is slid over the "
        "image; where the image matches it (red weights on bright pixels, blue on dark) the feature map "
        "lights up. Deeper layers' filters read the previous layer's maps, one tile per input channel."),
    "Feature maps": (
        "What the convolution layers produce for a few validation images of different classes. Each map is "
        "one filter's answer to 'where does my pattern appear?': bright where it does, dark where it does not. "
        "Early maps look like edge drawings of the digit; deeper ones are smaller and more abstract."),
    "Where the network looks": (
        "Saliency: how much each input pixel would change the predicted class's score if it changed a little "
        "(the gradient). Grad-CAM: which region of the last convolution layer's maps (after its ReLU) carries the "
        "evidence for that class, placed over the input pixels it sees. Bright = important for the decision."),
    "Pooling compared": (
        "Pooling shrinks each feature map by summarising small windows: max pooling keeps the strongest "
        "response, average pooling the mean, L2 pooling the square root of the sum of squares. Shown on the "
        "most active map entering the model's first pooling layer, all on one grey scale."),
}
TASK_EXPLANATIONS = {  # the sections of models that do not name a class per image, in place of the confusion matrix
    "Detection": (
        "The model finds every digit on a scene and draws a box around it. A detected box counts as right when "
        "it has the right class and overlaps a true box of that class by at least half (IoU >= 0.5: the "
        "overlap divided by the union of the two boxes); each true box can be found once. Ranked by score, "
        "the detections give a precision-recall curve per class; its area is the average precision (AP), and "
        "mAP@0.5 is its mean over the classes. mAP@0.5:0.95 averages it over ten overlap thresholds, so it "
        "rewards boxes that fit tightly. Below: scenes with their true boxes (left) and the detected ones."),
    "Positions": (
        "How far the predicted centre lies from the true one, in pixels, on the validation canvases. The "
        "pictures mark the true centre in green and the predicted one in red: first the canvases with the "
        "largest errors, then typical ones (errors near the median)."),
}
def img(image: np.ndarray, alt: str) -> str:
    """An ``<img>`` with the image inlined as a base64 PNG data URI."""
    return f'<img src="{render.data_uri(image)}" alt="{html.escape(alt)}">'


def figure(image: np.ndarray, caption: str) -> str:
    return f"<figure>{img(image, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def table(pairs: Iterable[tuple[object, object]]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def explained(heading: str, inner: str) -> str:
    """``inner`` under the plain-words paragraph of ``EXPLANATIONS`` for ``heading``."""
    words = EXPLANATIONS.get(heading) or TASK_EXPLANATIONS[heading]
    return f'<p class="explain">{html.escape(words)}</p>\n{inner}'


def page(title: str, sections: Iterable[tuple[str, str]]) -> str:
    """A whole HTML document from ``[(heading, inner HTML)]``."""
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{inner}\n" for h, inner in sections)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n{body}</body></html>\n")
