"""How the network is built: its stages, its shapes and where its parameters are.

>>> import numpy as np
>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.writing import Voice
>>> model = lenet5(rng=np.random.default_rng(0))
>>> blocks = structure_blocks(Facts(model, summarize(model, (1, 28, 28)), (1, 28, 28)), Voice("technical"), ("math",))
>>> "6·(1·5·5) + 6 = 156" in plain(blocks[0].full[1][1])
True
"""

from __future__ import annotations

from collections.abc import Sequence

from ..summary import LayerRow
from .facts import Facts, formula
from .plan import Block
from .writing import Voice


def counts_text(f: Facts, v: Voice) -> str:
    parts = [(f.count(role), word) for role, word in (("conv", "convolution"), ("pool", "pooling"),
                                                       ("conv_transpose", "transposed convolution"),
                                                       ("upsample", "upsampling"), ("linear", "fully connected"),
                                                       ("normalization", "batch normalisation")) if f.of(role)]
    listed = v.join([f"{c} {word}" for c, word in parts])
    return v(f"The network you are looking at, {f.name()}, is a stack of {f.count('all')} layers: {listed}, with "
             "activations in between.",
             f"The network {f.name()} consists of {f.count('all')} layers, namely {listed}, separated by "
             "activation functions.",
             f"{f.name()}: {f.count('all')} layers; {listed} (+ activations).")


def flow_text(f: Facts, v: Voice) -> str:
    last, out = f.last_spatial(), f.rows[-1]
    if last is None or last is out:
        return v(f"Your {f.input()} image goes in, and {f.out(out)} numbers come out.",
                 f"It maps a {f.input()} input to an output of {f.out(out)}.",
                 f"{f.input()} → {f.out(out)}.")
    return v(f"Your {f.input()} image goes in. The first part finds patterns: the maps get smaller while "
             f"their number grows, down to {f.out(last)} at layer {f.layer(last)}. The last part turns those "
             f"into the answer: {f.out(out)} numbers.",
             f"The {f.input()} input first passes through a feature extractor, in which the maps become "
             f"smaller while their number grows, reaching {f.out(last)} at layer {f.layer(last)}; the remaining "
             f"layers turn these features into the output, {f.out(out)} values.",
             f"{f.input()} → feature extractor (maps shrink, channels grow) → {f.out(last)} at layer "
             f"{f.layer(last)} → head → {f.out(out)}.")


def params_text(f: Facts, v: Voice) -> str:
    if not f.of("linear"):
        return v(f"In all, it learns {f.total()} numbers.",
                 f"In total the network has {f.total()} trainable parameters.",
                 f"Parameters: {f.total()}.")
    return v(f"In all, it learns {f.total()} numbers. You'll find {f.share('linear')} of them in the fully "
             "connected layers.",
             f"In total the network has {f.total()} trainable parameters, of which {f.share('linear')} belong "
             "to the fully connected layers.",
             f"Parameters: {f.total()}; fully connected: {f.share('linear')}.")


def conceptual(f: Facts, v: Voice) -> Block:
    full = [("p", f"{counts_text(f, v)} {flow_text(f, v)}"), ("p", params_text(f, v))]
    brief = [("p", flow_text(f, v))]
    return Block("structure", "structure.conceptual", 1, full, brief, required=True)


def sharing_text(f: Facts, v: Voice, c: LayerRow) -> str:
    L, w, d = f.layer(c), f.weights(c), f.dense(c)
    return v(f"Why convolution? For layer {L} you need just {w} weights, because you reuse each filter at every "
             f"position. With a fully connected layer of the same input and output, you would need {d}.",
             f"The economy of convolution is considerable: because each filter is shared across all positions, "
             f"layer {L} requires only {w} weights, whereas a fully connected layer with the same input and "
             f"output would require {d}.",
             f"Weight sharing: layer {L} = {w} weights vs {d} for a dense layer of the same shapes.")


def technical(f: Facts, v: Voice) -> Block:
    header = ["layer", "type", "output", "parameters", "RF"]
    table = ("table", [header] + [[f.layer(r), f.kind(r), f.out(r), f.params(r), f.rf(r)] for r in f.rows])
    lead = v(f"Here is every layer, with what it outputs when you feed it one image. You get {f.total()} "
             f"parameters and {f.total_macs()} multiply-adds per image.",
             f"The table lists every layer with its output for one image; in total the network has {f.total()} "
             f"parameters and performs {f.total_macs()} multiply-adds per image.",
             f"Layers (per image). Total: {f.total()} params, {f.total_macs()} multiply-adds.")
    conv = f.first("conv")
    full = [("p", lead), table] + ([("p", sharing_text(f, v, conv))] if conv is not None else [])
    if conv is not None and f.of("linear"):
        full.append(("p", v(f"You might expect the layers with the most parameters to do the most work. They "
                            f"don't. The convolutions hold only {f.share('conv')} of the parameters but do "
                            f"{f.macshare('conv')} of the multiply-adds. The fully connected layers hold "
                            f"{f.share('linear')} and do {f.macshare('linear')}.",
                            f"Parameters and computation are distributed very differently: the convolutions hold "
                            f"{f.share('conv')} of the parameters yet perform {f.macshare('conv')} of the "
                            f"multiply-adds, whereas the fully connected layers hold {f.share('linear')} and "
                            f"perform {f.macshare('linear')}.",
                            f"Params vs work: conv {f.share('conv')} of params, {f.macshare('conv')} of "
                            f"multiply-adds; linear {f.share('linear')}, {f.macshare('linear')}.")))
    brief = [("p", sharing_text(f, v, conv) if conv is not None else lead)]
    return Block("structure", "structure.technical", 2, full, brief, required=True)


def param_equation(f: Facts, r: LayerRow) -> str | None:
    m = r.module
    bias = getattr(m, "bias", None) is not None
    if r.module.role == "linear":
        o, i = f.attr(r, "out_features"), f.attr(r, "in_features")
        return f"{f.layer(r)}: {o}·{i}" + (f" + {o}" if bias else "") + f" = {f.params(r)}"
    if r.module.role != "conv" or m.groups != 1 or len(set(m.kernel_size)) != 1:
        return None
    o, i, k = f.attr(r, "out_channels"), f.attr(r, "in_channels"), f.attr(r, "kernel_size", short=True)
    return f"{f.layer(r)}: {o}·({i}·{k}·{k})" + (f" + {o}" if bias else "") + f" = {f.params(r)}"


def rf_equation(f: Facts, r: LayerRow, before: LayerRow) -> str:
    k, s = f.attr(r, "kernel_size", short=True), f.attr(r, "stride", short=True)
    return (f"{f.layer(r)}: RF {f.rf(before)} + ({k} - {formula('one')})·{f.jump(before)} = {f.rf(r)},  "
            f"jump {f.jump(before)}·{s} = {f.jump(r)}")


def rf_rows(f: Facts) -> list[tuple[LayerRow, LayerRow]]:
    """(layer, the layer before) for each conv or pooling layer with a square, undilated window
    after the first layer (whose field grows from the input's 1 pixel)."""
    found = []
    for i, r in enumerate(f.rows[1:], start=1):
        m, before = r.module, f.rows[i - 1]
        if m.role not in ("conv", "pool") or not r.receptive_field or not before.receptive_field:
            continue
        if len(set(m.kernel_size)) == 1 and getattr(m, "dilation", (1, 1)) == (1, 1):
            found.append((r, before))
    return found


def math(f: Facts, v: Voice) -> Block:
    lines = [e for e in (param_equation(f, r) for r in f.rows) if e]
    lead = v(f"You can count the parameters yourself. A convolution has {formula('conv_params')} of them, a "
             f"fully connected layer {formula('linear_params')}. For your model:",
             f"The parameter counts follow from the shapes: a convolution has {formula('conv_params')} "
             f"parameters and a fully connected layer {formula('linear_params')}. For this model:",
             f"Params: conv {formula('conv_params')}; linear {formula('linear_params')}.")
    full = [("p", lead), ("pre", "\n".join(lines))] if lines else [("p", lead)]
    windowed = rf_rows(f)
    if windowed:
        full += [("p", v(f"You can track the receptive field the same way, with {formula('rf')}. Layer by layer:",
                         f"The receptive field obeys {formula('rf')}; layer by layer,",
                         f"RF: {formula('rf')}:")), ("pre", "\n".join(rf_equation(f, r, b) for r, b in windowed))]
    brief = [("p", lead), ("pre", "\n".join(lines[:2]))] if lines else [("p", lead)]
    return Block("structure", "structure.math", 3, full, brief, required=True)


def walk(f: Facts, v: Voice) -> list[Block]:
    """Every layer in one line of plain words (conceptual depth)."""
    items = []
    for r in f.rows:
        kind = f.kind_word(r)
        items.append(v(f"Layer {f.layer(r)}, {kind} ({f.kind(r)}): {f.out(r)} out.",
                       f"Layer {f.layer(r)} ({kind}, {f.kind(r)}) produces {f.out(r)}.",
                       f"{f.layer(r)} {kind} ({f.kind(r)}) → {f.out(r)}"))
    lead = v("Here is the whole stack you are reading about, one layer a line:",
             "The complete sequence of layers is as follows:", "Stack:")
    return [Block("structure", "structure.walk", 6.05, [("p", lead), ("ul", items)])]


def fields(f: Facts, v: Voice) -> list[Block]:
    """How far each stage sees, in plain words (conceptual depth)."""
    conv, last = f.first("conv"), f.last_spatial()
    if conv is None or last is None or conv is last:
        return []
    return [Block("structure", "structure.fields", 6.02, [("p", v(
        f"Why stack layers at all? Because each one sees further. A value of layer {f.layer(conv)} sees a patch "
        f"{f.rf(conv)} pixels across, so it can only notice a stroke or an edge. By layer {f.layer(last)}, one "
        f"value sees {f.rf(last)} pixels across your {f.input()} image, enough to notice whole parts of a shape. "
        "You build big patterns out of small ones.",
        f"Layers are stacked because each one enlarges the region of the image that its outputs depend on. A value "
        f"of layer {f.layer(conv)} depends on a patch {f.rf(conv)} pixels across and can therefore register only "
        f"an edge or a stroke, whereas a value of layer {f.layer(last)} depends on {f.rf(last)} pixels across the "
        f"{f.input()} input, enough to register entire parts of a shape; large patterns are thus composed of "
        "small ones.",
        f"Why depth: RF grows. Layer {f.layer(conv)}: {f.rf(conv)} px (edges). Layer {f.layer(last)}: "
        f"{f.rf(last)} px of {f.input()} (parts). Big patterns = compositions of small ones."))])]


def structure_blocks(f: Facts, v: Voice, depths: Sequence[str]) -> list[Block]:
    """The structure section's blocks for the selected ``depths``."""
    makers = {"conceptual": conceptual, "technical": technical, "math": math}
    return [makers[d](f, v) for d in depths] + (walk(f, v) + fields(f, v) if "conceptual" in depths else [])
