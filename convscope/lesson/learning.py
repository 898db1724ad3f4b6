"""How the network learns its features: the loss, backpropagation, the gradients through
convolution and pooling, and what the filters become; with a run folder, what this run did.

>>> import numpy as np
>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.writing import Voice
>>> model = lenet5(rng=np.random.default_rng(0))
>>> f = Facts(model, summarize(model, (1, 28, 28)), (1, 28, 28))
>>> b = learning_blocks(f, Voice("conversational"), ("conceptual",))
>>> "61,706" in plain(b[0].full[0][1])
True
"""

from __future__ import annotations

from collections.abc import Sequence

from . import detect
from .facts import Facts, formula
from .plan import Block
from .writing import Voice


def loss_words(f: Facts, v: Voice) -> str:
    """What the loss compares, by task."""
    if f.task == "positions":
        return v("how far the predicted position is from the true one",
                 "the squared distance between the predicted and the true position",
                 "squared position error")
    if f.task == "detection":
        return detect.loss_words(v)
    if f.task == "segmentation":
        return v("how little probability it gave the right class, pixel by pixel",
                 "the cross-entropy of the predicted class probabilities, averaged over the pixels",
                 "per-pixel cross-entropy")
    return v("how little probability it gave the right class",
             "the cross-entropy between the predicted probabilities and the true class",
             "cross-entropy vs the true class")


def conceptual_text(f: Facts, v: Voice) -> list[str]:
    first, last = f.layer(f.rows[0]), f.layer(f.rows[-1])
    what = loss_words(f, v)
    if not f.of("conv"):
        return mlp_text(f, v, what, first, last)
    return [v(f"So where do the filters come from? Nobody writes them. All {f.total()} numbers start out random. "
              f"You show the network an image with its right answer. The loss measures {what}. Then, for every "
              f"one of those numbers, you ask: which way should it move to make the loss smaller?",
              f"The filters are not designed by hand: all {f.total()} parameters are initialised at random and "
              f"then adjusted from examples. For each training image the loss measures {what}, and for every "
              f"parameter one computes the direction in which a small change would reduce it.",
              f"Filters: not designed; {f.total()} params, random init. Per image: loss = {what}. Per param: "
              f"direction that lowers the loss."),
            v(f"That direction is the gradient. Backpropagation gets you all of them in one pass, from layer {last} "
              f"back to layer {first}, using the chain rule. Then you move each number a small step downhill. Repeat "
              f"that over thousands of images, and you'll find the filters turn into detectors of edges, strokes "
              "and corners.",
              f"This direction is the gradient, and backpropagation obtains all of the gradients in a single "
              f"backward pass, from layer {last} to layer {first}, by repeated application of the chain rule. "
              f"Each parameter is then moved a small step against its gradient; repeated over many thousands of "
              f"images, this process turns the filters into detectors of edges, strokes and corners.",
              f"Direction = gradient. Backprop: one backward pass, layer {last} → layer {first}, chain rule. "
              f"Step each param against its gradient; repeat over many images → filters ≈ edge/stroke detectors.")]


def mlp_text(f: Facts, v: Voice, what: str, first: str, last: str) -> list[str]:
    """How a network without convolutions learns: the same loop, weights instead of filters."""
    return [v(f"So where do the weights come from? Nobody writes them. All {f.total()} numbers start out random. "
              f"You show the network an image with its right answer, and the loss measures {what}. Backpropagation "
              f"then tells you, from layer {last} back to layer {first}, which way each number should move, and "
              "you move each a small step.",
              f"The weights are not designed by hand: all {f.total()} parameters are initialised at random and "
              f"adjusted from examples, the loss measuring {what}; backpropagation, from layer {last} back to "
              f"layer {first}, gives the direction in which each parameter should move, and each is moved a small "
              "step.",
              f"{f.total()} params, random init; loss = {what}; backprop layer {last} → layer {first}; step "
              "against the gradient.")]


def run_text(f: Facts, v: Voice) -> str | None:
    if not f.metrics or "epoch" not in f.final():
        return None
    key = "val_acc" if "val_acc" in f.final() else ("val_loss" if "val_loss" in f.final() else None)
    if key is None:
        return None
    what = v("validation accuracy", "accuracy on the validation images", "val acc") if key == "val_acc" else \
        v("validation loss", "loss on the validation images", "val loss")
    return v(f"Your model did exactly that, for {f.run_value('epoch')} epochs. Its {what} went from "
             f"{f.run_value(key, 0)} after the first epoch to {f.run_value(key)} after the last.",
             f"The present model was trained in this way for {f.run_value('epoch')} epochs, during which its "
             f"{what} went from {f.run_value(key, 0)} after the first epoch to {f.run_value(key)} after the last.",
             f"This run: {f.run_value('epoch')} epochs; {what} {f.run_value(key, 0)} (first epoch) → "
             f"{f.run_value(key)} (last).")


def conceptual(f: Facts, v: Voice) -> Block:
    texts = conceptual_text(f, v) + [t for t in (run_text(f, v),) if t]
    brief = v(f"All {f.total()} numbers start random. For each example you show it, backpropagation finds which "
              "way each should move to lower the loss, and you move each a small step.",
              f"All {f.total()} parameters are initialised at random and repeatedly moved a small step against "
              "the gradient of the loss, which backpropagation computes.",
              f"{f.total()} params: random init, then steps against ∂L/∂θ (backprop).")
    return Block("learning", "learning.conceptual", 1, [("p", t) for t in texts], [("p", brief)], required=True)


def settings_text(f: Facts, v: Voice) -> str | None:
    keys = [k for k in ("optimizer", "lr", "batch_size") if self_has(f, k)]
    if len(keys) < 3:
        return None
    o, lr, b = (f.setting(k) for k in keys)
    return v(f"Your run used {o} with a learning rate of {lr}, on batches of {b} images.",
             f"The run used the {o} optimiser with a learning rate of {lr} and batches of {b} images.",
             f"Run: {o}, lr {lr}, batch {b}.")


def self_has(f: Facts, key: str) -> bool:
    return f.config.get(key) is not None


def technical(f: Facts, v: Voice) -> Block:
    conv, pool = f.first("conv"), max_pool(f)
    mean = v("added up over your batch and divided by its objects", "summed over the batch and divided by the "
             "number of its objects", "batch sum / objects") if f.task == "detection" else \
        v("averaged over your batch", "averaged over the batch", "batch mean")
    texts = [v(f"You train on batches. The loss is {loss_words(f, v)}, {mean}. Each backward "
               f"pass costs you about twice the forward pass, which is {f.total_macs()} multiply-adds per image.",
               f"Training proceeds on batches of images, the loss being {loss_words(f, v)}, {mean}; a backward "
               f"pass costs roughly twice the forward pass of {f.total_macs()} multiply-adds per image.",
               f"Batches; loss = {loss_words(f, v)}, {mean}. Backward ≈ twice forward ({f.total_macs()} "
               "multiply-adds/image).")]
    if conv is not None:
        texts.append(v(f"To get a filter's gradient in layer {f.layer(conv)}, you add up input patches, each weighted "
                       "by how much the loss cares about the output there. For the input's gradient, you slide the "
                       "filters back over the output's gradient.",
                       f"In a convolution such as layer {f.layer(conv)}, the gradient of a filter is the sum of "
                       "the input patches, each weighted by the gradient of the output at that position, while "
                       "the gradient of the input is obtained by sliding the filters over the output gradient.",
                       f"Conv (layer {f.layer(conv)}): ∂L/∂w = ∑ input patch × output gradient; ∂L/∂x = filters "
                       "slid over the output gradient."))
    if pool is not None:
        texts.append(v(f"Max pooling in layer {f.layer(pool)} sends the gradient back only to the winner of each "
                       "window. The others get nothing, so you only update what won.",
                       f"Max pooling, as in layer {f.layer(pool)}, routes the gradient of each window entirely to "
                       "the element that was the maximum, the others receiving none.",
                       f"Max pool (layer {f.layer(pool)}): gradient → argmax of each window only."))
    settings = settings_text(f, v)
    texts += [settings] if settings else []
    return Block("learning", "learning.technical", 2, [("p", t) for t in texts], [("p", texts[0])], required=True)


def max_pool(f: Facts):
    """The first max-pooling layer, or None."""
    return next((r for r in f.of("pool") if r.kind == "MaxPool2d"), None)


def math(f: Facts, v: Voice) -> Block:
    conv, pool = f.first("conv"), max_pool(f)
    loss = {"positions": [formula("mse")], "detection": detect.loss_formulas()}.get(
        f.task, [formula("softmax"), formula("cross_entropy"), formula("ce_grad")])
    lead = v("Here is the loss you minimise, and its gradient at the output:",
             "The loss and its gradient with respect to the output scores z are",
             "Loss, output gradient:")
    pieces = [("p", lead), ("pre", "\n".join(loss))]
    brief = list(pieces)
    if conv is not None:
        s = f.attr(conv, "stride", short=True)
        pieces += [("p", v(f"For layer {f.layer(conv)}, with g the gradient you get at its output:",
                           f"For layer {f.layer(conv)}, writing g for the gradient of the loss with respect to its "
                           "output,",
                           f"Layer {f.layer(conv)}, g = ∂L/∂y:")),
                   ("pre", f"∂L/∂w[o, c, u, v] = Σ_(i, j < {f.height(conv)}) g[o, i, j] · x_pad[c, {s}·i + u, "
                           f"{s}·j + v]\n∂L/∂b[o] = Σ_(i, j) g[o, i, j]\n{formula('relu_grad')}")]
    if pool is not None:
        pieces += [("p", v(f"In layer {f.layer(pool)}, max pooling, you pass g to the winner of each window:",
                           f"Max pooling in layer {f.layer(pool)} passes g to the maximum of each window:",
                           f"Layer {f.layer(pool)}, max pool:")),
                   ("pre", formula("maxpool_grad"))]
    pieces += [("p", v("Then you move each number a step downhill:", "Each parameter is then updated by", "Update:")),
               ("pre", formula("sgd"))]
    return Block("learning", "learning.math", 3, pieces, brief, required=True)


def history(f: Facts, v: Voice) -> list[Block]:
    """The run's epochs as a table (a low-priority block; only with a run folder)."""
    keys = [k for k in ("train_loss", "val_loss", "train_acc", "val_acc", "val_mpe", "train_map50", "val_map50")
            if k in f.final()]
    if not f.metrics or "epoch" not in f.final() or not keys:
        return []
    rows = [[f.run_value("epoch", i)] + [f.run_value(k, i) for k in keys] for i in range(len(f.metrics))]
    lead = v("Here is your run, epoch by epoch. Watch the validation numbers: when they stop improving while "
             "the training ones still do, you know the model has started to memorise.",
             "The course of the run, epoch by epoch, is given below; a widening gap between the training and "
             "validation figures would indicate overfitting.",
             "Per epoch (train/val gap ↑ ⇒ overfitting):")
    header = [k.replace("map50", formula("map50")) for k in keys]  # no bare digit in the text
    return [Block("learning", "learning.history", 6.9, [("p", lead), ("table", [["epoch"] + header] + rows)])]


def story(f: Facts, v: Voice) -> list[Block]:
    """The run's course in words: first, middle and last epoch, and the best one (conceptual depth)."""
    records, key = f.metrics, "val_acc"
    if len(records) < 3 or not all(key in r and "val_loss" in r and "epoch" in r for r in records):
        return []
    mid = len(records) // 2
    best = min(range(len(records)), key=lambda i: records[i]["val_loss"])
    e1, em, el, eb = (f.run_value("epoch", i) for i in (0, mid, -1, best))
    a1, am, al = (f.run_value(key, i) for i in (0, mid, -1))
    text = v(f"How did your run go? After epoch {e1}, {a1} of the validation images were right. By epoch {em}, {am}. "
             f"At the end, epoch {el}, {al}. You got the lowest validation loss at epoch {eb}. Most of the learning "
             "happens early; the rest is polish.",
             f"The course of training is typical: the validation accuracy was {a1} after epoch {e1}, {am} after "
             f"epoch {em} and {al} after the final epoch, {el}, the validation loss reaching its minimum at epoch "
             f"{eb}; most of the improvement occurs early, and later epochs refine it.",
             f"Val acc: epoch {e1} {a1}, epoch {em} {am}, epoch {el} {al}; min val loss at epoch {eb}.")
    return [Block("learning", "learning.story", 6.75, [("p", text)])]


def learning_blocks(f: Facts, v: Voice, depths: Sequence[str]) -> list[Block]:
    """The learning section's blocks for the selected ``depths``."""
    makers = {"conceptual": conceptual, "technical": technical, "math": math}
    blocks = [makers[d](f, v) for d in depths]
    conv = f.first("conv")
    blocks[0].pictures = ((f"filters:{conv.name}",) if conv is not None else ()) + (("curve",) if f.metrics else ())
    deep = history(f, v) if "technical" in depths or "math" in depths else []
    targets = [detect.targets_block(f, v)] if f.task == "detection" else []
    return blocks + targets + (story(f, v) if "conceptual" in depths else []) + deep
