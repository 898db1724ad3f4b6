"""How the network makes a prediction: flatten, fully connected votes, softmax and confidence
(per pixel for a segmentation model; plain numbers for a model that regresses a position).

>>> import numpy as np
>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.writing import Voice
>>> model = lenet5(rng=np.random.default_rng(0))
>>> b = prediction_blocks(Facts(model, summarize(model, (1, 28, 28)), (1, 28, 28)), Voice("technical"), ("math",))
>>> "W: 120x400" in plain(b[0].full[1][1])
True
"""

from __future__ import annotations

from collections.abc import Sequence

from . import detect
from .facts import Facts, formula
from .plan import Block
from .writing import Voice


def head_text(f: Facts, v: Voice) -> str:
    flat, linears, last = f.first("flatten"), f.of("linear"), f.rows[-1]
    sizes = v.join([f.height(r) for r in linears])
    if flat is None or not linears:
        return v(f"The last layer, {f.layer(last)}, gives you {f.out(last)} for each image.",
                 f"The final layer, {f.layer(last)}, produces an output of {f.out(last)} for each image.",
                 f"Last layer {f.layer(last)}: {f.out(last)} per image.")
    return v(f"Layer {f.layer(flat)} flattens your {f.inp(flat)} maps into one list of {f.height(flat)} numbers. "
             f"Then the fully connected layers take over, with {sizes} outputs. Each output you get is a weighted "
             f"vote over every number of the layer before.",
             f"Layer {f.layer(flat)} flattens the {f.inp(flat)} maps into a single vector of {f.height(flat)} "
             f"values, which the fully connected layers, with {sizes} outputs, then combine; each of their "
             f"outputs is a weighted sum of all the values of the preceding layer.",
             f"Layer {f.layer(flat)}: flatten {f.inp(flat)} → {f.height(flat)}. Fully connected: {sizes} "
             f"outputs; each = weighted ∑ over all inputs.")


def softmax_text(f: Facts, v: Voice) -> str:
    last = f.layer(f.rows[-1])
    if f.task == "detection":
        return detect.output_text(f, v)
    if f.task == "positions":
        return v(f"Layer {last} gives {f.classes()} numbers: the x and y of the centre, as fractions of the "
                 "canvas. There is no softmax here. The numbers are your answer.",
                 f"Layer {last} produces {f.classes()} numbers, the coordinates of the centre as fractions of "
                 "the canvas size; no softmax is applied, since these values are themselves the prediction.",
                 f"Layer {last}: {f.classes()} outputs = (x, y) / canvas size; no softmax.")
    where = v(" for every pixel", " for every pixel", " per pixel") if f.task == "segmentation" else ""
    return v(f"Layer {last} gives {f.classes()} scores{where}, one per class. Softmax turns them into "
             f"probabilities that add up to {formula('one')}. The biggest one is your answer, and its size tells you "
             "how confident the network is.",
             f"Layer {last} yields {f.classes()} scores{where}, one for each class, which the softmax function "
             f"converts into probabilities summing to {formula('one')}; the most probable class is the "
             "prediction, and its probability expresses the confidence.",
             f"Layer {last}: {f.classes()} scores{where} → softmax → probabilities (∑ = {formula('one')}); "
             "argmax = prediction; max p = confidence.")


def image_text(f: Facts, v: Voice) -> str | None:
    if f.task == "detection":
        return detect.image_text(f, v)
    probs = f.probabilities()
    if probs is None or len(probs) < 2:
        return None
    best, second = (int(k) for k in probs.argsort()[::-1][:2])
    a, pa, b, pb = f.class_name(best), f.pred(best, probs[best]), f.class_name(second), f.pred(second, probs[second])
    return v(f"For your image, it says {a} with probability {pa}. The runner-up is {b}, at {pb}. Careful, "
             "though: a network can be sure and still wrong, so don't take it at its word.",
             f"For the image shown in the figures, the network assigns class {a} a probability of {pa}, the "
             f"next most probable being {b} with {pb}; a high probability is, however, no guarantee of a "
             "correct answer.",
             f"Shown image: {a} p = {pa}; runner-up {b} p = {pb}. High p ≠ correct.")


def conceptual(f: Facts, v: Voice) -> Block:
    texts = [head_text(f, v), softmax_text(f, v)] + [t for t in (image_text(f, v),) if t]
    return Block("predictions", "predictions.conceptual", 1, [("p", t) for t in texts],
                 [("p", softmax_text(f, v))], required=True)


def technical(f: Facts, v: Voice) -> Block:
    rows = f.of("linear", "flatten") or [f.rows[-1]]
    table = ("table", [["layer", "type", "input → output", "parameters"]]
             + [[f.layer(r), f.kind(r), f"{f.inp(r)} → {f.out(r)}", f.params(r)] for r in rows])
    lead = detect.channels_lead(f, v) if f.task == "detection" else v(
        f"You call the scores before softmax logits. Here is the head of the network, which gives you "
        f"{f.classes()} of them at the end:",
        f"The scores before the softmax are known as logits; the head of the network, which ends in "
        f"{f.classes()} of them, is as follows:",
        f"Head → {f.classes()} logits:")
    return Block("predictions", "predictions.technical", 2, [("p", lead), table], [("p", lead)], required=True)


def math(f: Facts, v: Voice) -> Block:
    lines = [f"{f.layer(r)}: y = W x + b,  W: {f.attr(r, 'out_features')}x{f.attr(r, 'in_features')},  "
             f"b: {f.attr(r, 'out_features')}" for r in f.of("linear")]
    lead = v("You can write each fully connected layer as one matrix product plus a bias:",
             "Each fully connected layer computes an affine map:",
             "Linear layers:")
    out = {"positions": lambda: [formula("mse")], "detection": lambda: detect.decode_math(f, v)}.get(
        f.task, lambda: [formula("softmax"), f"k < {f.classes()}"])()
    pieces = ([("p", lead), ("pre", "\n".join(lines))] if lines else []) + [
        ("p", v("And you get the output:", "The output is then", "Output:")), ("pre", "\n".join(out))]
    return Block("predictions", "predictions.math", 3, pieces, pieces[-2:], required=True)


def funnel(f: Facts, v: Voice) -> list[Block]:
    """The head as a funnel, and how often the answer was right (with a run)."""
    linears, flat = f.of("linear"), f.first("flatten")
    if flat is None or len(linears) < 2 or f.task != "classification":
        return []
    steps = v.join([f"{f.height(r)} at layer {f.layer(r)}" for r in linears])
    text = v(f"Think of the head as a funnel. You start with {f.height(flat)} numbers and keep fewer at each "
             f"step: {steps}. Each step keeps what matters for the decision and drops the rest.",
             f"The head may be regarded as a funnel: from {f.height(flat)} values the representation is reduced "
             f"step by step, to {steps}, each stage retaining what is relevant to the decision.",
             f"Head = funnel: {f.height(flat)} → {steps}.")
    if "val_acc" in f.final():
        text += " " + v(f"How far can you trust the answer? On the validation images, this network was right "
                        f"{f.run_value('val_acc')} of the time: usually, not always.",
                        f"As to reliability, the network was correct on {f.run_value('val_acc')} of the "
                        "validation images.",
                        f"Val acc {f.run_value('val_acc')}.")
    return [Block("predictions", "predictions.funnel", 6.4, [("p", text)])]


def details(f: Facts, v: Voice, depths: Sequence[str]) -> list[Block]:
    linears = f.of("linear")
    blocks = []
    for i, r in enumerate(linears):
        L, o, n_in = f.layer(r), f.attr(r, "out_features"), f.attr(r, "in_features")
        text = v(f"Layer {L} has {o} outputs, each a weighted sum of all {n_in} inputs plus a bias: {f.params(r)} "
                 "numbers for you to train.",
                 f"Layer {L} has {o} outputs, each a weighted sum of its {n_in} inputs plus a bias, which amounts "
                 f"to {f.params(r)} parameters.",
                 f"Layer {L}: {n_in} → {o}; {f.params(r)} params.")
        if "technical" in depths:
            text += " " + v(f"That costs you {f.macs(r)} multiply-adds per image.",
                            f"It performs {f.macs(r)} multiply-adds per image.",
                            f"{f.macs(r)} multiply-adds.")
        blocks.append(Block("predictions", f"predictions.layer.{r.name}", 6.5 + i / 1000, [("p", text)]))
    return blocks


def prediction_blocks(f: Facts, v: Voice, depths: Sequence[str]) -> list[Block]:
    """The predictions section's blocks for the selected ``depths``."""
    makers = {"conceptual": conceptual, "technical": technical, "math": math}
    blocks = [makers[d](f, v) for d in depths]
    blocks[0].pictures = {"classification": ("prediction",), "detection": ("boxes",)}.get(f.task, ()) \
        if f.trace is not None else ()
    return blocks + (funnel(f, v) if "conceptual" in depths else []) + details(f, v, depths)
