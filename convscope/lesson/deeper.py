"""Material for longer lessons at technical and math depth: the design in numbers, memory,
the weights against their initial range, how many values ReLU zeroes, output sizes had the
layer been set otherwise, the run's settings and how well it generalised.

Numbers here are marked ``acts`` (values a layer outputs per image), ``kib`` (the whole
pass's activations in KiB of float32), ``wstat`` (``std=``, ``min=``, ``max=``, ``bound=`` of
a layer's weights; the bound of the initial uniform range is 1/sqrt(fan_in)), ``zeros`` (the
share of a layer's output values that are 0 for the traced image) and ``whatif``
(``padding=P,stride=S:H``: the output height with those settings).

>>> import numpy as np
>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.writing import Voice
>>> model = lenet5(rng=np.random.default_rng(0))
>>> b = whatif_block(Facts(model, summarize(model, (1, 28, 28)), (1, 28, 28)), Voice("technical"), plainly=True)
>>> plain(b[0].full[1][1]).splitlines()[0]
'padding 0, stride 1: (28 + 2*0 - 5)/1 + 1 = 24'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..summary import LayerRow
from .facts import Facts, formula, mark, n
from .plan import Block
from .writing import Voice


def acts(r: LayerRow) -> int:
    return int(np.prod(r.output_shape[1:], dtype=np.int64))


def design_block(f: Facts, v: Voice) -> list[Block]:
    spatial = [r for r in f.of("conv", "pool") if len(r.output_shape) == 4]
    flat, first_linear = f.first("flatten"), f.first("linear")
    if len(spatial) < 2 or flat is None or first_linear is None:
        return []
    sizes = " → ".join([f.input()] + [f.out(r) for r in spatial])
    text = v(f"Follow the shapes through the feature extractor and you get {sizes}. Flattening gives you "
             f"{f.height(flat)} numbers, and layer {f.layer(first_linear)} was built for exactly "
             f"{f.attr(first_linear, 'in_features')} inputs. So you can't change the input size: feed it a bigger "
             "image and that layer no longer fits.",
             f"The shapes through the feature extractor are {sizes}. Flattening yields {f.height(flat)} values, "
             f"and layer {f.layer(first_linear)} is constructed for exactly "
             f"{f.attr(first_linear, 'in_features')} inputs; the input size is therefore fixed by the "
             "architecture, since a larger image would no longer fit this layer.",
             f"Shapes: {sizes}. Flatten → {f.height(flat)} = in_features of layer {f.layer(first_linear)} "
             f"({f.attr(first_linear, 'in_features')}) ⇒ input size fixed.")
    return [Block("structure", "structure.design", 6.1, [("p", text)])]


def memory_block(f: Facts, v: Voice) -> list[Block]:
    total = sum(acts(r) for r in f.rows)
    kib = mark("kib", "", f"{total * 4 / 1024:,.1f}")
    every = mark("acts", "", n(total))
    rows = [[f.layer(r), f.kind(r), mark("acts", r.name, n(acts(r))), f.macs(r)] for r in f.rows]
    text = v(f"Memory is a different story. When you run one image, the layers output {every} values in all, "
             f"{kib} KiB as {formula('float32')}. When you train, you keep them all for the backward pass, for "
             "every image in your batch.",
             f"Memory behaves differently from the parameter count: a single image causes the layers to output "
             f"{every} values in total, {kib} KiB in {formula('float32')}, all of which training retains for the "
             "backward pass, for every image of the batch.",
             f"Activations/image: {every} values = {kib} KiB ({formula('float32')}); kept for backward, "
             "× batch size.")
    table = ("table", [["layer", "type", "values out", "multiply-adds"]] + rows)
    return [Block("structure", "structure.memory", 6.2, [("p", text), table], [("p", text)])]


def weights_block(f: Facts, v: Voice) -> list[Block]:
    rows = [r for r in f.of("conv", "linear") if getattr(r.module, "weight", None) is not None]
    if not rows:
        return []
    table = [["layer", "fan-in", "initial bound", "std now", "min", "max"]]
    for r in rows:
        w = np.asarray(r.module.weight.data, np.float64)
        fan_in = int(np.prod(w.shape[1:]))
        stats = {"fan_in": fan_in, "bound": 1 / np.sqrt(fan_in), "std": w.std(), "min": w.min(), "max": w.max()}
        table.append([f.layer(r)] + [mark("wstat", r.name, f"{k}={s:.3g}" if k != "fan_in" else f"{k}={s}",
                                          f"{s:.3g}" if k != "fan_in" else s) for k, s in stats.items()])
    text = v(f"Each layer's weights started out random, drawn from {formula('init')}: the fan-in is how many "
             "inputs one output reads. Here is where you find them now:",
             f"The weights of each layer were initialised from {formula('init')}, that is, uniformly within plus or "
             "minus the reciprocal square root of the fan-in; their present statistics are as follows:",
             f"Init: w ~ {formula('init')}. Now:")
    return [Block("learning", "learning.weights", 6.3, [("p", text), ("table", table)])]


def sparsity_block(f: Facts, v: Voice) -> list[Block]:
    if f.trace is None:
        return []
    relus = [r for r in f.of("activation") if r.kind == "ReLU"]
    if not relus:
        return []
    shares = [mark("zeros", r.name, f"{float((f.trace[r.name].values == 0).mean()):.1%}") for r in relus]
    listed = v.join([f"{s} after layer {f.layer(r)}" for s, r in zip(shares, relus)])
    text = v(f"How much does ReLU throw away? For your image: {listed}. Those zeros pass no gradient back, so "
             "each image you train on teaches only part of the network.",
             f"The proportion of values set to zero by ReLU for the traced image is {listed}; since these pass no "
             "gradient backwards, each image trains only part of the network.",
             f"Zeros after ReLU (this image): {listed}. Zero → no gradient.")
    return [Block("processing", "processing.sparsity", 6.4, [("p", text)])]


def whatif_line(f: Facts, r: LayerRow, padding: int, stride: int) -> str:
    h, k = r.input_shape[2], r.module.kernel_size[0]
    out = (h + 2 * padding - k) // stride + 1
    p, s = (mark("whatif", r.name, f"padding={padding},stride={stride}:{name}", x)
            for name, x in (("p", padding), ("s", stride)))
    hh, kk = (mark("whatif", r.name, f"padding={padding},stride={stride}:{name}", x)
              for name, x in (("h", h), ("k", k)))
    res = mark("whatif", r.name, f"padding={padding},stride={stride}:out", out)
    text = f"({hh} + {formula('two')}*{p} - {kk})/{s}"
    text = f"floor({text})" if (h + 2 * padding - k) % stride else text
    return f"padding {p}, stride {s}: {text} + {formula('one')} = {res}"


def whatif_parts(f: Facts, r: LayerRow, padding: int, stride: int) -> tuple[str, str, str]:
    """Marked (padding, stride, output height) of one what-if."""
    h, k = r.input_shape[2], r.module.kernel_size[0]
    key = f"padding={padding},stride={stride}"
    return (mark("whatif", r.name, f"{key}:p", padding), mark("whatif", r.name, f"{key}:s", stride),
            mark("whatif", r.name, f"{key}:out", (h + 2 * padding - k) // stride + 1))


def whatif_block(f: Facts, v: Voice, plainly: bool = False) -> list[Block]:
    """Output sizes of the first conv layer with other padding and stride; ``plainly``: as
    equations (technical and math depth)."""
    conv = f.first("conv")
    if conv is None or conv.module.dilation != (1, 1) or isinstance(conv.module.padding, str) \
            or len(set(conv.module.kernel_size)) != 1:
        return []
    k = conv.module.kernel_size[0]
    options = sorted({(0, 1), (k // 2, 1), (k // 2, 2)} - {(conv.module.padding[0], conv.module.stride[0])})
    options = [(p, s) for p, s in options if conv.input_shape[2] + 2 * p >= k]
    if not plainly:
        said = v.join([f"padding {p} and stride {s} would give maps {res} pixels wide" for p, s, res in
                       (whatif_parts(f, conv, p, s) for p, s in options)])
        text = v(f"What if you set layer {f.layer(conv)} up differently? Then {said}. Padding and stride are "
                 "your choices, and the map size follows from them.",
                 f"Had layer {f.layer(conv)} been configured differently, the maps would change accordingly: "
                 f"{said}; padding and stride are design choices from which the map size follows.",
                 f"Layer {f.layer(conv)}, other settings: {said}.")
        return [Block("processing", "processing.whatif", 6.5, [("p", text)])]
    lead = v(f"What if you set layer {f.layer(conv)} up differently? You can answer that with the same formula:",
             f"The output-size formula also answers what layer {f.layer(conv)} would produce with other settings:",
             f"Layer {f.layer(conv)}, other settings:")
    return [Block("processing", "processing.whatif", 6.5, [("p", lead), ("pre", "\n".join(
        whatif_line(f, conv, p, s) for p, s in options))])]


def run_blocks(f: Facts, v: Voice) -> list[Block]:
    """The run's regularisation and how well it generalised (with a run folder)."""
    last, blocks = f.final(), []
    extra = [k for k in ("weight_decay", "schedule") if f.config.get(k) is not None]
    if len(extra) == 2:
        wd, sched = f.setting("weight_decay"), f.setting("schedule")
        blocks.append(Block("learning", "learning.settings", 6.6, [("p", v(
            f"Two more settings shaped your run: a weight decay of {wd}, which pulls every weight a little "
            f"towards zero at each step, and the {sched} schedule for the learning rate.",
            f"Two further settings shaped the run: a weight decay of {wd}, which draws every weight slightly "
            f"towards zero at each step, and the {sched} learning-rate schedule.",
            f"Weight decay {wd} (w shrinks each step); lr schedule: {sched}."))]))
    if all(k in last for k in ("train_map50", "val_map50", "seconds")):
        tm, vm, sec, m = f.run_value("train_map50"), f.run_value("val_map50"), f.run_value("seconds"), \
            formula("map50")
        blocks.append(Block("learning", "learning.generalisation", 6.7, [("p", v(
            f"At the end, your model's {m} was {tm} on its training scenes and {vm} on the validation scenes you "
            f"never trained it on. The last epoch took {sec} seconds on your machine.",
            f"After the final epoch the model's {m} (mean average precision at an IoU of one half) was {tm} on the "
            f"training scenes and {vm} on the held-out validation scenes; that epoch took {sec} seconds on this "
            "machine.",
            f"Final: train {m} {tm}, val {m} {vm}; last epoch {sec} s."))]))
    if all(k in last for k in ("train_acc", "val_acc", "seconds")):
        ta, va, sec = f.run_value("train_acc"), f.run_value("val_acc"), f.run_value("seconds")
        blocks.append(Block("learning", "learning.generalisation", 6.7, [("p", v(
            f"At the end, your model got {ta} of its training images right, and {va} of the validation images "
            f"you never trained it on. The last epoch took {sec} seconds on your machine.",
            f"After the final epoch the model classified {ta} of the training images and {va} of the held-out "
            f"validation images correctly; that epoch took {sec} seconds on this machine.",
            f"Final: train acc {ta}, val acc {va}; last epoch {sec} s."))]))
    return blocks


def deeper_blocks(f: Facts, v: Voice, aspect: str, depths: Sequence[str]) -> list[Block]:
    """The extra blocks of one aspect; memory and the weights' statistics at technical or math depth only."""
    technical = bool({"technical", "math"} & set(depths))
    if aspect == "structure":
        return design_block(f, v) + (memory_block(f, v) if technical else [])
    if aspect == "processing":
        return sparsity_block(f, v) + whatif_block(f, v, plainly=technical)
    if aspect == "learning":
        return (weights_block(f, v) if technical else []) + run_blocks(f, v)
    return []
