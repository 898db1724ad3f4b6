"""The parts around the aspects: the introduction, the primer the background calls for, the
real-world examples, what to remember and questions to check yourself.

>>> import numpy as np
>>> from convscope.models import lenet5
>>> from convscope.summary import summarize
>>> from convscope.lesson.facts import Facts, plain
>>> from convscope.lesson.plan import Request
>>> from convscope.lesson.writing import Voice
>>> model = lenet5(rng=np.random.default_rng(0))
>>> f = Facts(model, summarize(model, (1, 28, 28)), (1, 28, 28))
>>> "LeNet5" in plain(intro(f, Voice("academic"), Request()).full[0][1])
True
"""

from __future__ import annotations

from . import detect
from .facts import Facts, mark
from .plan import WORDS_PER_MINUTE, Block, Request
from .processing import key_layers
from .writing import Voice, plural

ASPECT_WORDS = {"structure": "how it is built", "processing": "how it processes an image",
                "learning": "how it learns", "predictions": "how it makes a prediction"}


def intro(f: Facts, v: Voice, request: Request) -> Block:
    minutes = mark("minutes", "", f"{request.minutes:g}")
    wpm = mark("wpm", "", WORDS_PER_MINUTE)
    topics = v.join([ASPECT_WORDS[a] for a in request.aspects])
    gives = v(f"{f.classes()} scores for every pixel", f"{f.classes()} scores for every pixel",
              f"{f.classes()} scores/pixel") if f.task == "segmentation" else v(
        f"{f.classes()} numbers", f"{f.classes()} outputs", f"{f.classes()} outputs")
    gives = detect.gives(f, v) if f.task == "detection" else gives
    text = v(f"This is a {minutes}-minute read ({wpm} words a minute) about {f.name()}, the network in front "
             f"of you. It takes a {f.input()} image and gives back {gives}. You will see {topics}.",
             f"This lesson, of about {minutes} minutes at {wpm} words per minute, concerns the network "
             f"{f.name()}, which maps a {f.input()} image to {gives}. It treats {topics}.",
             f"{f.name()}: {f.input()} → {gives}. Covers: {topics}. ≈ {minutes} min @ {wpm} wpm.")
    return Block("intro", "intro", 0, [("p", text)], required=True)


def primer_none(f: Facts, v: Voice) -> list[str]:
    c, h, w = (f.input(a) for a in range(3))
    return [v(f"First, three words you will need. To a computer, your image is a grid of numbers: {h} rows of "
              f"{w}, in {c} colour {plural(f.input_shape[0], 'channel')}, one number per pixel, dark to bright "
              f"({f.input()} in all). A neuron takes some numbers, multiplies "
              "each by a weight, adds them up and bends the result. A weight is just a number that says how much "
              "one input counts.",
              f"Three notions are required. To a computer an image is an array of numbers, here {f.input()}, one "
              "for each pixel and colour channel, measuring its brightness. A neuron multiplies each of its "
              "inputs by a weight, sums the products and applies a non-linear function to the sum; a weight is "
              "thus a number expressing how much one input contributes.",
              f"Image = array of numbers, {f.input()} (channel × height × width). Neuron: y = f(∑ wᵢxᵢ + b). "
              "Weight wᵢ: how much input xᵢ counts."),
            v(f"Training means finding good weights from examples. You show the network images with the right "
              f"answers, and it adjusts its {f.total()} numbers a little each time.",
              f"Training is the process of determining the weights from labelled examples: the network is shown "
              f"images with their correct answers and adjusts its {f.total()} parameters a little each time.",
              f"Training: fit the {f.total()} params to labelled examples, small steps at a time.")]


def primer_some(f: Facts, v: Voice) -> list[str]:
    conv = f.first("conv")
    if conv is None:
        return [v(f"You know neurons and gradient descent. Here you meet them on a {f.input()} image.",
                  f"Neurons and gradient descent are assumed known; here they are applied to a {f.input()} image.",
                  f"Assumed: neurons, gradient descent. Input {f.input()}.")]
    return [v(f"You know neurons and gradient descent. What is new here is the image. A fully connected layer "
              f"from the {f.inp(conv)} input to layer {f.layer(conv)}'s output would need {f.dense(conv)} weights. "
              "With a convolution you need far fewer, because it looks at small patches and reuses its filters.",
              f"Neurons and gradient descent are assumed known; what is new is the structure of images. A fully "
              f"connected layer from the {f.inp(conv)} input to the output of layer {f.layer(conv)} would require "
              f"{f.dense(conv)} weights, and convolution avoids this by looking at small patches and reusing its "
              "filters.",
              f"Assumed: neurons, gradient descent. Dense {f.inp(conv)} → layer {f.layer(conv)} output = "
              f"{f.dense(conv)} weights; conv: local patches + shared filters.")]


def background(f: Facts, v: Voice, request: Request) -> list[Block]:
    if request.background == "none":
        texts = primer_none(f, v)
        return [Block("background", "background", 1, [("p", t) for t in texts], [("p", texts[0])], required=True)]
    if request.background == "some-ml":
        return [Block("background", "background", 4, [("p", t) for t in primer_some(f, v)])]
    return [Block("background", "background", 4, [("p", notation(f, v))])]


def notation(f: Facts, v: Voice) -> str:
    return v(f"A word on notation. Shapes are per image, channels × height × width, so your input is {f.input()}. "
             "Receptive fields and jumps are in input pixels. And g is the gradient of the loss arriving at a "
             "layer's output.",
             f"Notation: shapes are given per image as channels × height × width (the input being {f.input()}), "
             "receptive fields and jumps are measured in input pixels, and g denotes the gradient of the loss with "
             "respect to a layer's output.",
             f"Notation: shape per image C×H×W (input {f.input()}, batch axis omitted); RF, jump in input px; "
             "g = ∂L/∂y.")


EXAMPLES = (  # (name, conversational, academic, technical), then the longer paragraph in three tones
    ("Classification", "name what is in an image", "assign an image to one of a set of classes",
     "image → one class"),
    ("Detection", "draw a box around each object and name it", "locate each object by a bounding box and "
     "classify it", "image → boxes + classes"),
    ("Segmentation", "colour every pixel by what it belongs to", "assign a class to every pixel", "image → class "
     "per pixel"),
    ("Face recognition", "tell whether two photos show the same face", "decide whether two images depict the "
     "same person", "face → embedding; same person ⇔ close"),
    ("Style transfer", "paint one photo in the style of another", "render the content of one image in the "
     "style of another", "content (deep maps) + style (map correlations)"),
    ("Regression", "give a number, such as where something is", "predict continuous quantities, such as a "
     "position", "image → real numbers"),
)
TASK_EXAMPLES = {"classification": "Classification", "detection": "Detection", "segmentation": "Segmentation",
                 "positions": "Regression"}  # the example each task kind is
CONVSCOPE = (
    ("`convscope train` trains this kind of network on your own folder of images.",
     "convscope trains such classifiers with `convscope train`, on named datasets or a folder of images.",
     "`convscope train --data FOLDER`."),
    ("Try `convscope train --model detector --data digit-scenes`: you get a grid detector that boxes and names "
     "every digit of a scene, scored by mean average precision.",
     "convscope includes a CenterNet-style grid detector (`convscope train --model detector --data "
     "digit-scenes`) that locates and classifies every digit of a scene, evaluated by mean average precision.",
     "`--model detector --data digit-scenes`: grid detector, boxes + classes, mAP."),
    ("Try `convscope train --model unet --data digit-masks`: you get a U-Net that labels every pixel of a scene.",
     "convscope includes a U-Net (`convscope train --model unet --data digit-masks`) that labels every pixel "
     "of a scene of digits.",
     "`--model unet --data digit-masks`: U-Net, class per pixel."),
    ("convscope has no face model. The idea: you train the same kind of network so that your photos of one "
     "person land close together.",
     "convscope has no face model; such systems train a network of this kind so that images of the same person "
     "are mapped to nearby vectors.",
     "Not in convscope; same conv stack, metric-learning loss."),
    ("convscope has no style transfer, but its feature-map pictures show you the raw material it works on.",
     "convscope does not implement style transfer, although its feature-map pictures show the material on which "
     "the method operates.",
     "Not in convscope; its feature-map pictures = the inputs of the method."),
    ("Try `convscope train --model locator --data digit-centres`: you get a model that finds the centre of a digit.",
     "convscope includes a locator (`convscope train --model locator --data digit-centres`) that regresses "
     "the centre of a digit.",
     "`--model locator --data digit-centres`: (x, y) regression."),
)


def examples(f: Facts, v: Voice, request: Request) -> list[Block]:
    if request.examples == "none":
        return []
    ours = TASK_EXAMPLES[f.task]
    this = v(", as this network does", ", as the present network does", " (this network)")
    items = [f"**{name}**: {v(c, a, t)}{this if name == ours else ''}" for name, c, a, t in EXAMPLES]
    lead = v("You can do much more with the same building blocks:", "The same building blocks serve many other tasks:",
             "Other uses of the same blocks:")
    brief = [("p", lead), ("ul", items)]
    if request.examples == "brief":
        return [Block("examples", "examples", 5, brief, required=True)]
    full = [("p", lead)] + [("p", f"{item}. {v(*more)}") for item, more in zip(items, CONVSCOPE)]
    return [Block("examples", "examples", 5, full, brief, required=True)]


def remember(f: Facts, v: Voice) -> list[Block]:
    conv, _, pool = key_layers(f)
    items = [v(f"The network learns {f.total()} numbers; you never write them by hand.",
               f"All {f.total()} parameters are learned from data.",
               f"{f.total()} params, all learned.")]
    if conv is not None:
        items.insert(0, v(f"A convolution slides small filters over your image: layer {f.layer(conv)} makes "
                          f"{f.out(conv)}.",
                          f"A convolution applies small shared filters at every position; layer {f.layer(conv)} "
                          f"produces {f.out(conv)}.",
                          f"Conv = shared filters slid over the input; layer {f.layer(conv)} → {f.out(conv)}."))
    if pool is not None:
        items.insert(1, v(f"Pooling shrinks your maps: layer {f.layer(pool)} gives {f.out(pool)}.",
                          f"Pooling reduces the maps; layer {f.layer(pool)} yields {f.out(pool)}.",
                          f"Pool: layer {f.layer(pool)} → {f.out(pool)}."))
    return [Block("close", "close.remember", 7, [("h3", v("What to remember", "Summary", "Summary")),
                                                 ("ul", items)])]


def size_question(f: Facts, v: Voice, r) -> tuple[str, str]:
    return (v(f"Why does layer {f.layer(r)} give {f.out(r)}?", f"Why does layer {f.layer(r)} produce {f.out(r)}?",
              f"Layer {f.layer(r)} → {f.out(r)}: why?"),
            v(f"Work it out: {f.arith(r)}.", f"By the output-size formula, {f.arith(r)}.", f"{f.arith(r)}."))


def questions(f: Facts, v: Voice, depths: tuple[str, ...] = ("conceptual",)) -> list[Block]:
    """Questions answered with this model's numbers; those answered by the output-size formula
    only at technical or math depth."""
    conv, _, pool = key_layers(f)
    last, technical = f.last_spatial(), bool({"technical", "math"} & set(depths))
    if conv is None or pool is None or last is None:
        return []
    qa = [(v(f"How many weights does one filter of layer {f.layer(conv)} hold?",
             f"How many weights does a single filter of layer {f.layer(conv)} contain?",
             f"Weights per filter, layer {f.layer(conv)}?"),
           v(f"{f.taps(conv)}: one for each input channel and pixel under it.",
             f"{f.taps(conv)}, one for each input channel and each position of the kernel.",
             f"{f.taps(conv)} (C_in × k_h × k_w).")),
          (v(f"How much of the image does one value of layer {f.layer(last)} see?",
             f"What is the receptive field of layer {f.layer(last)}?", f"RF of layer {f.layer(last)}?"),
           v(f"A patch {f.rf(last)} pixels across.", f"A patch of {f.rf(last)} pixels across.", f"{f.rf(last)} px."))]
    if technical:
        qa += [size_question(f, v, r) for r in f.of("conv", "pool") if r.arithmetic][:4]
    for r in f.of("linear")[:1]:
        o, i = f.attr(r, "out_features"), f.attr(r, "in_features")
        qa.append((v(f"How many parameters does layer {f.layer(r)} have?",
                     f"How many parameters has layer {f.layer(r)}?", f"Params of layer {f.layer(r)}?"),
                   v(f"{f.params(r)}: {o} rows of {i} weights, plus the biases.",
                     f"{f.params(r)}, that is {o} rows of {i} weights together with the biases.",
                     f"{f.params(r)} = {o}×{i} + biases.")))
    items = [f"{q} — {a}" for q, a in qa]
    return [Block("close", "close.questions", 8, [("h3", v("Check yourself", "Exercises", "Checks")),
                                                  ("ul", items)])]
