"""How the network processes an image: convolution as a sliding filter, feature maps, stride
and padding, ReLU and pooling, told with the first such layers of the model in hand.

>>> import numpy as np
>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.writing import Voice
>>> model = lenet5(rng=np.random.default_rng(0))
>>> f = Facts(model, summarize(model, (1, 28, 28)), (1, 28, 28))
>>> blocks = processing_blocks(f, Voice("academic"), ("conceptual",))
>>> "6 filters of size 5x5" in plain(blocks[0].full[0][1])
True
"""

from __future__ import annotations

from collections.abc import Sequence

from ..summary import LayerRow
from .facts import Facts, formula
from .plan import Block
from .writing import Voice, plural

SPATIAL = ("conv", "pool", "conv_transpose", "upsample", "adaptive_pool")
_POOL_WORDS = {"MaxPool2d": ("keeps the largest value", "retains the maximum", "max"),
               "AvgPool2d": ("takes the average", "computes the mean", "mean"),
               "LPPool2d": ("takes the root of the sum of squares", "computes the Lp norm", "Lp norm")}


def key_layers(f: Facts) -> tuple[LayerRow | None, LayerRow | None, LayerRow | None]:
    """The first convolution, the first activation after it and the first pooling layer."""
    conv = f.first("conv")
    after = f.rows[f.rows.index(conv) + 1:] if conv is not None else f.rows
    act = next((r for r in after if r.module.role == "activation"), None)
    return conv, act, f.first("pool")


# ----- conceptual ---------------------------------------------------------------------
def conv_intro(f: Facts, v: Voice, c: LayerRow) -> str:
    m = c.module
    L, k, co, ci = f.layer(c), f.attr(c, "kernel_size"), f.attr(c, "out_channels"), f.attr(c, "in_channels")
    return v(f"Start with layer {L}, a convolution. It holds {co} small filters of {k} pixels. Each one slides "
             f"across your {ci}-channel input. At every stop, you multiply its {f.taps(c)} weights by the values "
             f"under it and add them up. That gives you one number. One filter, slid everywhere, gives one feature "
             f"map: a picture of where its pattern shows up. So your {f.inp(c)} input turns into {f.out(c)}.",
             f"The central operation is convolution. Layer {L} holds {co} filters of size {k}, each of which is "
             f"moved across the {ci}-channel input; at every position the {f.taps(c)} weights of the filter are "
             f"multiplied by the values beneath them and summed, giving a single response. Repeated at every "
             f"position, this produces a feature map that records where the filter's pattern occurs, so that "
             f"the {f.inp(c)} input becomes an {f.out(c)} block of maps.",
             f"Layer {L}, conv: {co} filters × {k} over {ci} input {plural(m.in_channels, 'channel')}. Per "
             f"position: ∑ of {f.taps(c)} weight × value products → one number. All positions → one feature "
             f"map per filter: {f.inp(c)} → {f.out(c)}.")


def conv_brief(f: Facts, v: Voice, c: LayerRow) -> str:
    L, co, k = f.layer(c), f.attr(c, "out_channels"), f.attr(c, "kernel_size")
    return v(f"Layer {L} slides {co} filters of {k} over your image. Each makes one feature map: "
             f"{f.inp(c)} becomes {f.out(c)}.",
             f"Layer {L} moves {co} filters of size {k} across the input, each producing one feature map, "
             f"so that {f.inp(c)} becomes {f.out(c)}.",
             f"Layer {L}: {co} filters × {k}, slid → one map each; {f.inp(c)} → {f.out(c)}.")


def pool_brief(f: Facts, v: Voice, p: LayerRow) -> str:
    L, k = f.layer(p), f.attr(p, "kernel_size")
    return v(f"Layer {L} pools each {k} window of your maps into one number: {f.inp(p)} shrinks to {f.out(p)}.",
             f"Layer {L} summarises each {k} window by one value, reducing {f.inp(p)} to {f.out(p)}.",
             f"Layer {L}: pool {k}; {f.inp(p)} → {f.out(p)}.")


def padding_text(f: Facts, v: Voice, c: LayerRow) -> str:
    p, s = f.attr(c, "padding", short=True), f.attr(c, "stride", short=True)
    if c.output_shape[2] == c.input_shape[2]:
        pad = c.module.padding
        border = f"{p} {plural(pad[0], 'zero')}" if isinstance(pad, tuple) else f"zeros ('{p}' padding)"
        return v(f"Notice that your maps kept their size. That is the padding: a border of {border}, so the "
                 f"filter can sit on your edge pixels too. The stride is {s}: the filter moves {s} "
                 f"{plural(c.module.stride[0], 'pixel')} per step.",
                 f"The spatial size is preserved because the input is padded with a border of {border}, which "
                 f"allows the filter to be placed on the edge pixels as well; with a stride of {s}, the filter "
                 f"advances that many pixels between positions.",
                 f"padding {p}, stride {s} → spatial size kept.")
    return v(f"Your maps come out smaller than the input. With padding {p} and stride {s}, you have fewer "
             f"places to put the filter than there are pixels.",
             f"The maps are smaller than the input, since with a padding of {p} and a stride of {s} the filter "
             f"fits into fewer positions than there are pixels.",
             f"padding {p}, stride {s} → fewer positions than pixels → smaller maps.")


_BENDS = {"ReLU": ("relu", "Negative values become zero; the rest pass through.",
                    "which sets negative responses to zero and passes positive ones unchanged"),
          "LeakyReLU": ("leaky", "Negative values shrink; the rest pass through.",
                        "which scales negative responses down and passes positive ones unchanged"),
          "Sigmoid": ("sigmoid", "Every value is squeezed into that range.", "which squeezes every response into "
                      "that interval"),
          "Tanh": ("tanh", "Every value is squeezed into that range.", "which squeezes every response into that "
                   "interval")}


def relu_text(f: Facts, v: Voice, a: LayerRow) -> str:
    key, plain_words, academic_words = _BENDS.get(a.kind, (None, "It bends every value.", "applied elementwise"))
    L, rule = f.layer(a), formula(key) if key else f.kind(a)
    return v(f"Next, layer {L} applies {f.kind(a)}, {rule}. {plain_words} "
             f"Without that bend, you would get one straight-line rule however many layers you stacked.",
             f"Layer {L} then applies the {f.kind(a)} non-linearity, {rule}, {academic_words}; without such a "
             "non-linearity the stacked layers would reduce to a single linear map.",
             f"Layer {L}: {f.kind(a)}, y = {rule}, elementwise. Without it: stack of linear maps = one linear map.")


def pool_text(f: Facts, v: Voice, p: LayerRow) -> str:
    L, k, s = f.layer(p), f.attr(p, "kernel_size"), f.attr(p, "stride", short=True)
    c, a, t = _POOL_WORDS.get(p.kind, ("summarises", "summarises", p.kind))
    return v(f"Then layer {L} pools. It {c} of each {k} window, stepping {s} pixels at a time. The maps "
             f"shrink from {f.inp(p)} to {f.out(p)}. Nothing here is learned. It just summarises, so if your pattern "
             f"moves by a pixel, you often get the same answer.",
             f"Layer {L} performs pooling: it {a} of each {k} window, with a stride of {s}, so that the maps are "
             f"reduced from {f.inp(p)} to {f.out(p)}. The operation has no parameters; by summarising each "
             f"neighbourhood it also makes the output less sensitive to small shifts of the input.",
             f"Layer {L}, pool: {t} per {k} window, stride {s}; {f.inp(p)} → {f.out(p)}; no parameters; small "
             f"shifts → often same output.")


def stack_text(f: Facts, v: Voice) -> str | None:
    last = f.last_spatial()
    if last is None or len(f.of("conv")) < 2:
        return None
    L = f.layer(last)
    return v(f"The same steps repeat: {f.count('conv')} convolution layers in all. By layer {L} you have "
             f"{f.out(last)}, and each of those values sees a patch {f.rf(last)} pixels across: its receptive field.",
             f"These steps are repeated, with {f.count('conv')} convolution layers in total. The last spatial "
             f"layer, {L}, produces {f.out(last)}, and each of its values depends on a patch {f.rf(last)} pixels "
             f"across, its receptive field.",
             f"Repeat: {f.count('conv')} conv layers. Layer {L}: {f.out(last)}; receptive field {f.rf(last)} px.")


def grow_text(f: Facts, v: Voice) -> str | None:
    up = f.first("conv_transpose", "upsample")
    if up is None:
        return None
    L = f.layer(up)
    if f.task != "segmentation":
        return v(f"Then the network goes the other way. Layer {L} makes your maps bigger again: {f.inp(up)} "
                 f"becomes {f.out(up)}.",
                 f"The network subsequently enlarges the maps again: layer {L} takes {f.inp(up)} to {f.out(up)}.",
                 f"Layer {L}, {f.kind_word(up)}: {f.inp(up)} → {f.out(up)} (maps grow).")
    return v(f"Then the network goes the other way. Layer {L} makes your maps bigger again: {f.inp(up)} becomes "
             f"{f.out(up)}. That is how you get back to one answer per pixel.",
             f"The network subsequently enlarges the maps again: layer {L} takes {f.inp(up)} to {f.out(up)}, "
             f"which is how an answer for every pixel is eventually recovered.",
             f"Layer {L}, {f.kind_word(up)}: {f.inp(up)} → {f.out(up)} (maps grow back).")


def conceptual(f: Facts, v: Voice) -> Block:
    conv, act, pool = key_layers(f)
    if conv is None:
        text = v(f"This model has no convolution layer. It reads your {f.input()} image with fully connected "
                 "layers only, so every weight looks at every pixel.",
                 f"The model contains no convolution layer: the {f.input()} image is processed by fully "
                 "connected layers alone, in which every weight is connected to every pixel.",
                 f"No conv layer: {f.input()} input → fully connected layers only.")
        return Block("processing", "processing.conceptual", 1, [("p", text)], required=True)
    paragraphs = [conv_intro(f, v, conv), padding_text(f, v, conv)]
    paragraphs += [relu_text(f, v, act)] if act is not None else []
    paragraphs += [pool_text(f, v, pool)] if pool is not None else []
    paragraphs += [t for t in (stack_text(f, v), grow_text(f, v)) if t]
    brief = [conv_brief(f, v, conv) + (" " + pool_brief(f, v, pool) if pool is not None else "")]
    return Block("processing", "processing.conceptual", 1, [("p", t) for t in paragraphs],
                 [("p", t) for t in brief], required=True)


def pictures(f: Facts) -> tuple[str, ...]:
    """The input, the first conv layer's filters and maps, pooling compared."""
    conv, act, pool = key_layers(f)
    if conv is None:
        return ()
    return ("input", f"filters:{conv.name}", f"features:{(act or conv).name}") + (("pooling",) if pool else ())


# ----- technical ----------------------------------------------------------------------
def window_cells(f: Facts, r: LayerRow) -> str:
    """``k 5x5, s 1, p 2`` for a layer with a window, ``-`` for one without."""
    names = [("k", "kernel_size"), ("s", "stride"), ("p", "padding")]
    found = [(short, name) for short, name in names if isinstance(getattr(r.module, name, None), tuple)]
    return ", ".join(f"{short} {f.attr(r, name, short=name != 'kernel_size')}" for short, name in found) or "-"


def spatial_table(f: Facts) -> tuple:
    header = ["layer", "type", "input → output", "window", "output size", "RF", "jump"]
    rows = [[f.layer(r), f.kind(r), f"{f.inp(r)} → {f.out(r)}", window_cells(f, r),
             f.arith(r) if r.arithmetic else "-", f.rf(r), f.jump(r)] for r in f.of(*SPATIAL)]
    return ("table", [header] + rows)


def technical_text(f: Facts, v: Voice, c: LayerRow) -> str:
    L, last = f.layer(c), f.last_spatial()
    rf = formula("rf")
    return v(f"You get every output size from one formula per axis, {formula('out_size')}. For layer {L} that "
             f"reads {f.arith(c)}. The receptive field grows at every window, {rf}. By layer {f.layer(last)}, each "
             f"value you look at sees {f.rf(last)} pixels, and neighbouring values sit {f.jump(last)} pixels apart.",
             f"The output size along each axis is given by {formula('out_size')}; for layer {L} this is "
             f"{f.arith(c)}. The receptive field grows with every window according to {rf}, so that at layer "
             f"{f.layer(last)} each value depends on {f.rf(last)} input pixels, neighbouring values being "
             f"{f.jump(last)} pixels apart.",
             f"Output size per axis: {formula('out_size')}. Layer {L}: {f.arith(c)}. RF: {rf}. Layer "
             f"{f.layer(last)}: RF {f.rf(last)} px, jump {f.jump(last)} px.")


def technical(f: Facts, v: Voice) -> Block:
    conv, _, _ = key_layers(f)
    anchor = conv or f.first(*SPATIAL)
    if anchor is None:
        text = v(f"There is no sliding window here: every layer sees the whole {f.input()} input.",
                 f"No layer of this model slides a window; each sees the whole {f.input()} input.",
                 f"No windowed layer; input {f.input()} seen whole by every layer.")
        return Block("processing", "processing.technical", 2, [("p", text)], required=True)
    text = technical_text(f, v, anchor)
    brief = v(f"You get layer {f.layer(anchor)}'s output size from {f.arith(anchor)}.",
              f"The output size of layer {f.layer(anchor)} is {f.arith(anchor)}.",
              f"Layer {f.layer(anchor)}: {f.arith(anchor)}.")
    return Block("processing", "processing.technical", 2, [("p", text), spatial_table(f)], [("p", brief)],
                 required=True)


# ----- math ---------------------------------------------------------------------------
def strides(f: Facts, r: LayerRow) -> tuple[str, str]:
    if len(set(r.module.stride)) == 1:
        return (f.attr(r, "stride", short=True),) * 2
    return f.axis(r, "stride", 0), f.axis(r, "stride", 1)


def ranges(f: Facts, r: LayerRow) -> str:
    """``u, v < 5,  i, j < 28`` (per axis when the window or the map is not square)."""
    k = (f"u, v < {f.attr(r, 'kernel_size', short=True)}" if len(set(r.module.kernel_size)) == 1 else
         f"u < {f.axis(r, 'kernel_size', 0)},  v < {f.axis(r, 'kernel_size', 1)}")
    out = f"i, j < {f.height(r)}" if r.output_shape[2] == r.output_shape[3] else \
        f"i < {f.height(r)},  j < {f.width(r)}"
    return f"{k},  {out}"


def conv_equation(f: Facts, c: LayerRow) -> str:
    sh, sw = strides(f, c)
    bias = "b[o] + " if c.module.bias is not None else ""
    return (f"y[o, i, j] = {bias}Σ_c Σ_u Σ_v w[o, c, u, v] · x_pad[c, {sh}·i + u, {sw}·j + v]\n"
            f"o < {f.attr(c, 'out_channels')},  c < {f.attr(c, 'in_channels')},  {ranges(f, c)}")


def pool_equation(f: Facts, p: LayerRow) -> str:
    sh, sw = strides(f, p)
    reduce = {"MaxPool2d": "max", "AvgPool2d": "mean", "LPPool2d": "Lp-norm"}.get(p.kind, f.kind(p))
    return f"y[c, i, j] = {reduce}_(u, v) x[c, {sh}·i + u, {sw}·j + v],   {ranges(f, p)}"


def math(f: Facts, v: Voice, depths: Sequence[str] = ("math",)) -> Block:
    """The cross-correlation and pooling of the first such layers; the output-size formula
    again only when the technical block (which states it) is not there."""
    conv, _, pool = key_layers(f)
    if conv is None:
        text = v("No convolution here, so no sliding sum: see the fully connected equations below.",
                 "As the model has no convolution, there is no sliding sum to write; its equations are those "
                 "of the fully connected layers below.",
                 "No conv → no cross-correlation; see the linear equations below.")
        return Block("processing", "processing.math", 3, [("p", text)], required=True)
    L = f.layer(conv)
    lead = v(f"Here is layer {L} written out, so you can see the sum that filter o computes at position (i, j). "
             "Strictly, it is a cross-correlation: you don't flip the filter.",
             f"Formally, layer {L} computes a cross-correlation (the filter is not flipped): for filter o and "
             "output position (i, j),",
             f"Layer {L}, cross-correlation (no flip):")
    pieces = [("p", lead), ("pre", conv_equation(f, conv))]
    if "technical" not in depths:
        pieces.append(("p", v(f"You get the size from {formula('out_size')}: {f.arith(conv)}.",
                              f"The output size follows from {formula('out_size')}, which gives {f.arith(conv)}.",
                              f"{formula('out_size')}: {f.arith(conv)}.")))
    brief = list(pieces)
    if pool is not None:
        P = f.layer(pool)
        pieces += [("p", v(f"You'll notice that pooling in layer {P} is a window too, with a reduction instead of a "
                           "weighted sum:",
                           f"The pooling of layer {P} uses the same windows with a reduction in place of the "
                           "weighted sum:",
                           f"Layer {P}, pool:")), ("pre", pool_equation(f, pool))]
    return Block("processing", "processing.math", 3, pieces, brief, required=True)


# ----- one block per further layer ----------------------------------------------------
def detail_text(f: Facts, v: Voice, r: LayerRow) -> str:
    """One layer in plain words."""
    L, kind = f.layer(r), f.kind_word(r)
    if r.module.role == "conv":
        co, ci, k = f.attr(r, "out_channels"), f.attr(r, "in_channels"), f.attr(r, "kernel_size")
        return v(f"Layer {L} is a convolution too: {co} filters of {k}, each reading all {ci} maps below it at "
                 f"once. You go from {f.inp(r)} to {f.out(r)}, and each value now sees a patch {f.rf(r)} pixels "
                 "across.",
                 f"Layer {L} is a further convolution, with {co} filters of size {k}, each combining all {ci} maps "
                 f"of the layer below; it maps {f.inp(r)} to {f.out(r)}, and each of its values depends on a patch "
                 f"{f.rf(r)} pixels across.",
                 f"Layer {L}, conv: {co} × {k} over {ci} maps; {f.inp(r)} → {f.out(r)}; RF {f.rf(r)} px.") + \
            dilation_text(f, v, r)
    if r.module.role == "activation":
        return v(f"Layer {L} applies {f.kind(r)} again, to all {f.out(r)} values.",
                 f"Layer {L} applies {f.kind(r)} once more, elementwise, to its {f.out(r)} values.",
                 f"Layer {L}: {f.kind(r)}, elementwise on {f.out(r)}.")
    if r.module.role == "pool":
        return v(f"Layer {L} pools again: {f.inp(r)} shrinks to {f.out(r)}, and each value now sees a patch "
                 f"{f.rf(r)} pixels across.",
                 f"Layer {L} pools once more, reducing {f.inp(r)} to {f.out(r)}, so that each value depends on a "
                 f"patch {f.rf(r)} pixels across.",
                 f"Layer {L}, pool: {f.inp(r)} → {f.out(r)}; RF {f.rf(r)} px.")
    return v(f"In layer {L} ({kind}), you go from {f.inp(r)} to {f.out(r)}. Each value you get sees a patch "
             f"{f.rf(r)} pixels across.",
             f"Layer {L}, of type {kind}, maps {f.inp(r)} to {f.out(r)}; each of its values depends on a patch "
             f"{f.rf(r)} pixels across.",
             f"Layer {L}, {kind}: {f.inp(r)} → {f.out(r)}; RF {f.rf(r)} px.")


def dilation_text(f: Facts, v: Voice, r: LayerRow) -> str:
    """A dilated convolution's wider view ("" for an undilated one)."""
    if getattr(r.module, "dilation", (1, 1)) == (1, 1):
        return ""
    d = f.attr(r, "dilation", short=True)
    return v(f" Its filter is dilated by {d}: its taps sit {d} pixels apart, so it sees wider with no extra weights, "
             "and your maps keep their size.",
             f" Its filter is dilated by {d}, its taps lying {d} pixels apart, which widens its view without "
             "further weights or any loss of resolution.",
             f" Dilation {d}: taps {d} px apart → wider view, same weights, same map size.")


def detail_numbers(f: Facts, v: Voice, r: LayerRow, named: bool) -> str:
    """One layer's parameters, cost and output-size arithmetic; ``named``: say which layer first."""
    size = (v(f" Its size: {f.arith(r)}.", f" Its output size is {f.arith(r)}.", f" Size: {f.arith(r)}.")
            if r.arithmetic else "")
    kind = f.kind_word(r)
    if r.module.role == "activation":
        return v(f"Layer {f.layer(r)} applies {f.kind(r)} to all {f.out(r)} values; no parameters.",
                 f"Layer {f.layer(r)} applies {f.kind(r)} elementwise to its {f.out(r)} values, without parameters.",
                 f"Layer {f.layer(r)}: {f.kind(r)} on {f.out(r)}; no params.")
    head = v(f"In layer {f.layer(r)} ({kind}) you go from {f.inp(r)} to {f.out(r)}. ",
             f"Layer {f.layer(r)} ({kind}) maps {f.inp(r)} to {f.out(r)}. ",
             f"Layer {f.layer(r)}, {kind}: {f.inp(r)} → {f.out(r)}. ") if named else ""
    if not r.params:
        return head + v(f"Nothing for you to train here; neighbouring values sit {f.jump(r)} pixels apart.{size}",
                        f"It has no parameters; neighbouring outputs are {f.jump(r)} input pixels apart.{size}",
                        f"No params; jump {f.jump(r)} px.{size}")
    return head + v(f"It gives you {f.params(r)} parameters to train and costs you {f.macs(r)} multiply-adds per "
                    f"image, with neighbouring values {f.jump(r)} pixels apart.{size}{dense(f, v, r)}",
                    f"It has {f.params(r)} parameters and requires {f.macs(r)} multiply-adds per image; "
                    f"neighbouring outputs are {f.jump(r)} input pixels apart.{size}{dense(f, v, r)}",
                    f"Params {f.params(r)}; multiply-adds {f.macs(r)}; jump {f.jump(r)} px.{size}{dense(f, v, r)}")


def dense(f: Facts, v: Voice, r: LayerRow) -> str:
    """A conv layer's weights against a dense layer of the same shapes ("" for other layers)."""
    if r.dense_weights is None:
        return ""
    return v(f" A dense layer in its place would need {f.dense(r)} weights, not {f.weights(r)}.",
             f" A fully connected layer in its place would require {f.dense(r)} weights instead of {f.weights(r)}.",
             f" Dense equivalent: {f.dense(r)} vs {f.weights(r)} weights.")


def detail_pieces(f: Facts, v: Voice, r: LayerRow, depths: Sequence[str]) -> list:
    named = "conceptual" not in depths
    text = " ".join(t for t, d in ((detail_text(f, v, r), "conceptual"),
                                   (detail_numbers(f, v, r, named), "technical")) if d in depths)
    text = text or (detail_numbers(f, v, r, True) if "math" in depths else detail_text(f, v, r))
    pieces = [("p", text)]
    if "math" in depths and r.module.role == "conv":
        pieces.append(("pre", conv_equation(f, r)))
    elif "math" in depths and r.module.role == "pool" and isinstance(getattr(r.module, "kernel_size", None), tuple):
        pieces.append(("pre", pool_equation(f, r)))
    return pieces


def details(f: Facts, v: Voice, depths: Sequence[str]) -> list[Block]:
    """One low-priority block per windowed, normalising or activation layer the core blocks
    did not describe, earlier layers first."""
    described = {r.name for r in key_layers(f) if r is not None}
    rows = [r for r in f.of(*SPATIAL, "normalization", "activation") if r.name not in described
            and len(r.output_shape) == 4]
    return [Block("processing", f"processing.layer.{r.name}", 6 + i / 1000, detail_pieces(f, v, r, depths))
            for i, r in enumerate(rows)]


def processing_blocks(f: Facts, v: Voice, depths: Sequence[str]) -> list[Block]:
    """The processing section's blocks for the selected ``depths``."""
    makers = {"conceptual": conceptual, "technical": technical, "math": math}
    blocks = [makers[d](f, v, depths) if d == "math" else makers[d](f, v) for d in depths]
    blocks[0].pictures = pictures(f)
    return blocks + details(f, v, depths)
