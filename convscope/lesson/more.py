"""Further material at math and technical depth: the multiply-adds of each layer worked out,
the batch loss and the softmax's Jacobian, the optimiser's update rule with the run's own
settings, and the learning rate the schedule set in each epoch.

>>> import numpy as np
>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.writing import Voice
>>> model = lenet5(rng=np.random.default_rng(0))
>>> b = cost_block(Facts(model, summarize(model, (1, 28, 28)), (1, 28, 28)), Voice("academic"))
>>> plain(b[0].full[1][1]).splitlines()[0]
'0: 28·28·6·(1·5·5) = 117,600'
"""

from __future__ import annotations

from collections.abc import Sequence

from ..summary import LayerRow
from . import detect
from .facts import Facts, formula
from .plan import Block
from .writing import Voice

UPDATES = {"adamw": "adamw", "adam": "adam", "sgd": "sgd_momentum"}


def cost_line(f: Facts, r: LayerRow) -> str | None:
    m = r.module
    if m.role == "linear":
        return f"{f.layer(r)}: {f.attr(r, 'out_features')}·{f.attr(r, 'in_features')} = {f.macs(r)}"
    if m.role != "conv" or m.groups != 1 or len(set(m.kernel_size)) != 1 or r.output_shape[2] != r.output_shape[3]:
        return None
    h, k = f.height(r), f.attr(r, "kernel_size", short=True)
    return (f"{f.layer(r)}: {h}·{h}·{f.attr(r, 'out_channels')}·({f.attr(r, 'in_channels')}·{k}·{k}) = "
            f"{f.macs(r)}")


def cost_block(f: Facts, v: Voice) -> list[Block]:
    """Each conv and linear layer's multiply-adds, worked out from its shapes."""
    lines = [line for line in (cost_line(f, r) for r in f.rows) if line]
    if not lines:
        return []
    lead = v("You can work out the cost of each layer too. A convolution does one multiply-add per weight of a "
             "filter, at every output position of every map; a fully connected layer one per weight:",
             "The cost of each layer follows likewise from its shapes: a convolution performs one multiply-add per "
             "filter weight at every position of every output map, and a fully connected layer one per weight:",
             "Multiply-adds: conv H_out·W_out·C_out·(C_in·k·k); linear out·in:")
    return [Block("structure", "structure.cost", 6.15, [("p", lead), ("pre", "\n".join(lines))])]


def batch_block(f: Facts, v: Voice) -> list[Block]:
    """The loss over a batch and the Jacobian of softmax behind the output gradient."""
    if f.task == "positions":
        return []
    if f.task == "detection":
        lead = v("Over a batch, you add up the losses of all its images and divide by the number of objects in it. "
                 "The gradient at a heatmap logit z, and at a box number d, is:",
                 "Over a batch the losses of all images are summed and divided by the number of objects; the "
                 "gradients at a heatmap logit z and at a box quantity d are",
                 "Batch: Σ over images / number of objects; output gradients:")
        return [Block("learning", "learning.batch", 6.85, [("p", lead), ("pre", "\n".join(detect.batch_lines()))])]
    size = f.setting("batch_size") if f.config.get("batch_size") is not None else "N"
    where = v(f", and your run used N = {size}", f", N being {size} in this run", f"; N = {size}") \
        if size != "N" else ""
    lead = v(f"Over a batch of N images you average the loss{where}. The output gradient comes from the "
             "softmax's Jacobian:",
             f"Over a batch of N images the loss is averaged{where}; the gradient at the output follows from the "
             "Jacobian of the softmax:",
             f"Batch of N{where}:")
    lines = [formula("batch_loss"), formula("softmax_jacobian"), formula("ce_grad")]
    return [Block("learning", "learning.batch", 6.85, [("p", lead), ("pre", "\n".join(lines))])]


def update_block(f: Facts, v: Voice) -> list[Block]:
    """The optimiser's update rule with the run's learning rate and weight decay."""
    name = str(f.config.get("optimizer", "")).lower()
    if name not in UPDATES or f.config.get("lr") is None or f.config.get("weight_decay") is None:
        return []
    o, lr, wd = f.setting("optimizer"), f.setting("lr"), f.setting("weight_decay")
    lead = v(f"Your run did not use the plain step above. It used {o}, which keeps running averages of each "
             f"gradient. With η = {lr} at its peak and λ = {wd}, each step is:",
             f"The run did not employ the plain gradient step but {o}, which maintains running averages of each "
             f"gradient; with a peak learning rate η = {lr} and weight decay λ = {wd}, each step reads",
             f"Optimiser {o}: η = {lr} (peak), λ = {wd}:")
    return [Block("learning", "learning.update", 6.9, [("p", lead), ("pre", formula(UPDATES[name]))])]


def schedule_block(f: Facts, v: Voice) -> list[Block]:
    """The learning rate per epoch, as metrics.jsonl recorded it."""
    records = f.metrics
    if len(records) < 3 or not all("lr" in r and "epoch" in r for r in records):
        return []
    top = max(range(len(records)), key=lambda i: records[i]["lr"])
    (e1, lr1), (et, lrt), (el, lrl) = ((f.run_value("epoch", i), f.run_value("lr", i)) for i in (0, top, -1))
    text = v(f"The learning rate did not stay put. In epoch {e1} it was {lr1}, by epoch {et} it had reached "
             f"{lrt}, and in the last epoch, {el}, it was down to {lrl}. Big steps while you are far off, small "
             "ones to settle.",
             f"The learning rate varied over the run: {lr1} in epoch {e1}, a maximum of {lrt} in epoch {et}, and "
             f"{lrl} in the final epoch, {el}; large steps are taken while far from a minimum and small ones to "
             "settle into it.",
             f"lr: epoch {e1} {lr1} → epoch {et} {lrt} (max) → epoch {el} {lrl}.")
    return [Block("learning", "learning.schedule", 6.95, [("p", text)])]


def more_blocks(f: Facts, v: Voice, aspect: str, depths: Sequence[str]) -> list[Block]:
    """The extra blocks of one aspect at math depth (cost, batch loss, update) or technical depth (schedule)."""
    math, technical = "math" in depths, bool({"technical", "math"} & set(depths))
    if aspect == "structure":
        return cost_block(f, v) if math else []
    if aspect == "learning":
        return (batch_block(f, v) + update_block(f, v) if math else []) + (schedule_block(f, v) if technical else [])
    return []
