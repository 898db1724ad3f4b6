"""The numbers a lesson may state, each marked with where it comes from.

Every number in a lesson's text is written through :func:`mark`: the shown text, with its
kind, the layer it belongs to and its value hidden around it in private-use characters. The
renderers turn a mark into plain text (Markdown) or into
``<span class="fact" data-kind=".." data-layer=".." data-value="..">`` (HTML), so a test can
find every number and check it against :func:`convscope.summary.summarize`. Kinds:

=========  ===============================================  ==========================
kind       value                                            checked against
=========  ===============================================  ==========================
in, out    a layer's input / output shape, ``6x28x28``      the summary row's shapes
h          the output's height (its length for a vector)    the output shape
w          the output maps' width                           the output shape
params     a layer's parameters, ``2,416``                  ``row.params``
weights    a conv layer's weights; dense: the dense layer   ``row.weights``, ``row.dense_weights``
rf, jump   receptive field / jump, ``14`` or ``5x3``        ``row.receptive_field``, ``row.jump``
arith      the output-size arithmetic                       ``row.arithmetic``
macs       multiply-adds per image                          ``row.mult_adds``
attr       ``name=value`` (``name[i]=``: one axis)          ``getattr(row.module, name)``
taps       weights per filter                               ``row.weights // out_channels``
layer      a layer's name                                   a row's name
kind       a layer's class name, ``Conv2d``                 the row's kind
total      all parameters (layer "")                        the model's parameters
count      ``role=n``: layers of a role ("all": every row)  the rows
share      ``linear=96.0%``: parameters held by a role      the rows
macshare   ``conv=86.9%``: multiply-adds done by a role     the rows
model      the model's class name                           ``type(model).__name__``
input      the input shape (layer c, h or w: one size)      the request
classes    the number of outputs per image / a class name   the last row / the class names
run        ``key@epoch=value`` from metrics.jsonl           the run folder
config     a setting of run.json (layer: its key)           the run folder
pred       ``class=probability`` for the traced image       the trace
formula    a fixed formula, a key of ``FORMULAS``           ``FORMULAS``
minutes    the minutes asked for; wpm: the rate             the request
grid       a detector's ``classes=``, ``boxes=``, ``cells=``,   the last row and the input
           ``size=``, ``stride=`` (see :mod:`.detect`)
decode     a detector's ``score_threshold=``, ``nms_iou=``,  the task's settings
           ``max_detections=``, ``neighbours=8``
det        ``count=`` / ``top:KEY=`` of the traced image's   decoding the trace again
           boxes and highest peak
=========  ===============================================  ==========================

>>> text = "maps of " + mark("out", "0", "6x28x28")
>>> plain(text), facts_in(text)
('maps of 6x28x28', [('out', '0', '6x28x28')])
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..nn import Module
from ..summary import LayerRow
from .writing import ROLE_WORDS

OPEN, SEP, CLOSE = "\ue000", "\ue001", "\ue002"
MARK = re.compile(f"{OPEN}([^{SEP}]*){SEP}([^{SEP}]*){SEP}([^{SEP}]*){SEP}([^{CLOSE}]*){CLOSE}")

FORMULAS = {
    "out_size": "H_out = floor((H + 2*padding - dilation*(k-1) - 1)/stride) + 1",
    "rf": "RF_out = RF_in + (k - 1)*dilation*jump_in,  jump_out = jump_in*stride",
    "conv_params": "C_out*(C_in*k_h*k_w) + C_out",
    "linear_params": "out*in + out",
    "relu": "max(0, x)",
    "relu_grad": "∂L/∂x = ∂L/∂y · [x > 0]",
    "softmax": "p_k = exp(z_k) / Σ_j exp(z_j)",
    "cross_entropy": "L = -log p_y",
    "ce_grad": "∂L/∂z_k = p_k - [k = y]",
    "sgd": "w ← w - η · ∂L/∂w",
    "maxpool_grad": "∂L/∂x = g at the window's argmax, 0 elsewhere",
    "l1": "L1",
    "l2": "L2",
    "one": "1",
    "two": "2",
    "float32": "float32",
    "init": "U(±1/√fan_in)",
    "half": "0.5",
    "mse": "L = mean((z - t)²)",
    "leaky": "x if x > 0, else a·x",
    "sigmoid": "1/(1 + e^-x), between 0 and 1",
    "tanh": "tanh(x), between -1 and 1",
    "batch_loss": "L = (1/N) Σ_n -log p[n, y_n]",
    "softmax_jacobian": "∂p_i/∂z_j = p_i·([i = j] - p_j)",
    "adamw": ("m ← β₁·m + (1 - β₁)·g,   v ← β₂·v + (1 - β₂)·g²\n"
              "w ← w - η·(m̂ / (√v̂ + ε) + λ·w)        (β₁ = 0.9, β₂ = 0.999, ε = 1e-8; m̂, v̂ bias-corrected)"),
    "adam": ("g ← g + λ·w,   m ← β₁·m + (1 - β₁)·g,   v ← β₂·v + (1 - β₂)·g²\n"
             "w ← w - η·m̂ / (√v̂ + ε)        (β₁ = 0.9, β₂ = 0.999, ε = 1e-8; m̂, v̂ bias-corrected)"),
    "sgd_momentum": "g ← g + λ·w,   b ← μ·b + g,   w ← w - η·(g + μ·b)        (Nesterov momentum μ)",
    # the grid detector (CenterNet): y is the heatmap target, d a cell's box numbers, d* their targets
    "heat_sigmoid": "p[k, i, j] = σ(z[k, i, j]) = 1/(1 + e^-z)",
    "bump": "y[k, i, j] = exp(-((j - c_x)²/(2σ_x²) + (i - c_y)²/(2σ_y²))),  σ = 0.54·(box size)/6",
    "focal": ("L_heat = -Σ_(k, i, j) { (1 - p)^α · log p                if y = 1\n"
              "                      { (1 - y)^β · p^α · log(1 - p)     otherwise        (α = 2, β = 4)"),
    "l1_box": "L_box = Σ_(centre cells) Σ_(d in dx, dy, log w, log h) |d - d*|",
    "det_loss": "L = (L_heat + L_box) / (number of objects)",
    "focal_grad": ("∂L_heat/∂z = (1 - p)^α · (α·p·log p - (1 - p))               if y = 1\n"
                   "           = (1 - y)^β · p^α · (p - α·(1 - p)·log(1 - p))    otherwise"),
    "l1_grad": "∂L_box/∂d = sign(d - d*) at the centre cells, 0 elsewhere",
    "peak": "peak: p[k, i, j] ≥ each of its 8 neighbours (a 3x3 max pool)",
    "box_decode": "centre = (j + dx, i + dy)·stride,   size = (e^(log w), e^(log h))·stride,   box = centre ± size/2",
    "nms": "NMS, per class, best first: drop a box whose IoU with a kept box > t",
    "iou": "IoU(A, B) = area(A ∩ B) / area(A ∪ B)",
    "map50": "mAP@0.5",
}


def mark(kind: str, layer: object, value: object, shown: object = None) -> str:
    """``shown`` (default: ``value``) marked as a number of ``kind`` for ``layer``."""
    return f"{OPEN}{kind}{SEP}{layer}{SEP}{value}{SEP}{value if shown is None else shown}{CLOSE}"


def plain(text: str) -> str:
    """``text`` with every mark replaced by what it shows."""
    return MARK.sub(lambda m: m.group(4), text)


def facts_in(text: str) -> list[tuple[str, str, str]]:
    """``[(kind, layer, value)]`` of every mark in ``text``, in order."""
    return [m.group(1, 2, 3) for m in MARK.finditer(text)]


def formula(key: str) -> str:
    """The fixed formula ``FORMULAS[key]``, marked."""
    return mark("formula", "", key, FORMULAS[key])


# ----- formatting ---------------------------------------------------------------------
def n(value: int) -> str:
    """``61,706``."""
    return f"{int(value):,}"


def dims(shape: Sequence[int]) -> str:
    """``6x28x28``."""
    return "x".join(str(v) for v in shape)


def pair(value: Sequence[float] | None) -> str:
    """``5`` (square), ``5x3``, ``2.5``, or ``the whole image`` (None)."""
    if value is None:
        return "the whole image"
    return f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}x{value[1]:g}"


def attr_text(value: object) -> str:
    """An attribute as a lesson shows it: a square pair as ``5x5``, a number as itself."""
    if isinstance(value, tuple):
        return dims(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def metric_text(key: str, value: object) -> str:
    """An accuracy as ``98.73%``, an epoch as ``20``, anything else with 4 significant digits."""
    if key.endswith("_acc"):
        return f"{value:.2%}"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def probability_text(p: float) -> str:
    """``0.981``; under 0.001 as ``9.8e-05`` (not a misleading ``0.000``)."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


# ----- what the lesson knows ----------------------------------------------------------
@dataclass
class Facts:
    """The model, its summary rows and what else is known: the run's config and metrics,
    the class names, and (optionally) a trace of one real image.

    ``task`` is "classification", "segmentation", "positions" or "detection";
    ``task_settings`` the model file's task config (a detector's decoding thresholds).
    """

    model: Module
    rows: list[LayerRow]
    input_shape: tuple[int, int, int]
    task: str = "classification"
    class_names: Sequence[str] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Sequence[Mapping[str, Any]] = ()
    trace: Any = None  # a convscope.trace.Trace of one image, or None
    input_note: str = ""
    task_settings: Mapping[str, Any] = field(default_factory=dict)

    # ----- marked numbers of the model -----
    def name(self) -> str:
        return mark("model", "", type(self.model).__name__)

    def layer(self, row: LayerRow) -> str:
        return mark("layer", row.name, row.name)

    def kind(self, row: LayerRow) -> str:
        """The layer's class name, e.g. Conv2d."""
        return mark("kind", row.name, row.kind)

    def kind_word(self, row: LayerRow) -> str:
        """The layer's kind in words ("convolution"), else its class name."""
        role = row.module.role if row.module is not None else None
        return ROLE_WORDS[role] if role in ROLE_WORDS else self.kind(row)

    def out(self, row: LayerRow) -> str:
        return mark("out", row.name, dims(row.output_shape[1:]))

    def inp(self, row: LayerRow) -> str:
        return mark("in", row.name, dims(row.input_shape[1:]))

    def height(self, row: LayerRow) -> str:
        """The output's height (maps) or length (vectors)."""
        return mark("h", row.name, row.output_shape[2] if len(row.output_shape) == 4 else row.output_shape[1])

    def params(self, row: LayerRow) -> str:
        return mark("params", row.name, n(row.params))

    def weights(self, row: LayerRow) -> str:
        return mark("weights", row.name, n(row.weights))

    def dense(self, row: LayerRow) -> str:
        return mark("dense", row.name, n(row.dense_weights))

    def rf(self, row: LayerRow) -> str:
        return mark("rf", row.name, pair(row.receptive_field))

    def jump(self, row: LayerRow) -> str:
        return mark("jump", row.name, pair(row.jump))

    def arith(self, row: LayerRow) -> str:
        return mark("arith", row.name, row.arithmetic)

    def macs(self, row: LayerRow) -> str:
        return mark("macs", row.name, n(row.mult_adds))

    def attr(self, row: LayerRow, name: str, short: bool = False) -> str:
        """A layer attribute; ``short``: a square pair (5, 5) shown as ``5``, not ``5x5``."""
        value = getattr(row.module, name)
        square = isinstance(value, tuple) and len(set(value)) == 1
        shown = attr_text(value[0] if short and square else value)
        return mark("attr", row.name, f"{name}={shown}", shown)

    def axis(self, row: LayerRow, name: str, axis: int) -> str:
        """One axis of a pair attribute, e.g. the kernel's height."""
        value = getattr(row.module, name)[axis]
        return mark("attr", row.name, f"{name}[{axis}]={value}", value)

    def width(self, row: LayerRow) -> str:
        """The output maps' width."""
        return mark("w", row.name, row.output_shape[3])

    def taps(self, row: LayerRow) -> str:
        return mark("taps", row.name, n(row.weights // row.module.out_channels))

    def total(self) -> str:
        return mark("total", "", n(sum(p.size for p in self.model.parameters())))

    def total_macs(self) -> str:
        return mark("macs", "", n(sum(r.mult_adds for r in self.rows)))

    def input(self, axis: int | None = None) -> str:
        """The input shape, or one of its sizes: axis 0 channels, 1 height, 2 width."""
        if axis is None:
            return mark("input", "", dims(self.input_shape))
        return mark("input", "chw"[axis], self.input_shape[axis])

    def count(self, role: str) -> str:
        return mark("count", "", f"{role}={len(self.of(role) if role != 'all' else self.rows)}",
                    len(self.of(role) if role != "all" else self.rows))

    def share(self, role: str) -> str:
        total = sum(p.size for p in self.model.parameters())
        held = sum(r.params for r in self.of(role))
        value = f"{100 * held / max(total, 1):.1f}%"
        return mark("share", "", f"{role}={value}", value)

    def macshare(self, role: str) -> str:
        """The share of the multiply-adds done by the layers of ``role``."""
        total = sum(r.mult_adds for r in self.rows)
        value = f"{100 * sum(r.mult_adds for r in self.of(role)) / max(total, 1):.1f}%"
        return mark("macshare", "", f"{role}={value}", value)

    def classes(self) -> str:
        return mark("classes", "", self.outputs)

    def class_name(self, k: int) -> str:
        return mark("classes", k, self.label(k))

    # ----- plain values -----
    @property
    def outputs(self) -> int:
        """Numbers per image (per pixel for segmentation) in the last layer's output."""
        return int(self.rows[-1].output_shape[1])

    def label(self, k: int) -> str:
        names = self.class_names
        return str(names[k]) if names is not None and k < len(names) else str(k)

    def of(self, *roles: str) -> list[LayerRow]:
        """The rows whose module has one of ``roles``."""
        return [r for r in self.rows if r.module is not None and r.module.role in roles]

    def first(self, *roles: str) -> LayerRow | None:
        rows = self.of(*roles)
        return rows[0] if rows else None

    def last_spatial(self) -> LayerRow | None:
        spatial = [r for r in self.rows if len(r.output_shape) == 4]
        return spatial[-1] if spatial else None

    def final(self) -> dict[str, Any]:
        """The last epoch's metrics ({} without a run)."""
        return dict(self.metrics[-1]) if self.metrics else {}

    def run_value(self, key: str, index: int = -1) -> str:
        """A number of epoch record ``index`` of metrics.jsonl (see :func:`metric_text`)."""
        record = self.metrics[index]
        return mark("run", f"{key}@{record.get('epoch')}", metric_text(key, record[key]))

    def setting(self, key: str) -> str:
        """A training setting from run.json, e.g. the optimizer or the learning rate."""
        return mark("config", key, attr_text(self.config[key]))

    def probabilities(self) -> np.ndarray | None:
        """The softmax of the traced image's scores (classification), or None."""
        if self.trace is None or self.task != "classification":
            return None
        return self.trace.probabilities()[0]

    def pred(self, k: int, p: float) -> str:
        return mark("pred", k, probability_text(p))
