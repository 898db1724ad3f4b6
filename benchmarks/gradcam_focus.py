"""Where Grad-CAM puts its mass: on the digit, or on the background?

For each validation image, the Grad-CAM map of the predicted class is placed over the input
pixels each map cell sees (its receptive-field centre and jump, as ``convscope viz`` draws
it) and resampled to the image. Its *focus* is the share of the map's mass that falls on the
digit: the ink pixels (above 30% of the image's brightest) and their neighbours up to
``--margin`` pixels away. An empty map (Grad-CAM all zero) has no focus and counts as a miss.

    python benchmarks/gradcam_focus.py runs/lenet5-digits/model.safetensors [--layer NAME] [--images 500]

Prints, for the layer convscope chooses and for each of the alternatives given with
``--layer``, the median focus, the share of images with focus above 50%, and the share of
empty maps; and the share of the image the digit region covers (what a uniform map would
score).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from convscope.data import load_dataset, normalise  # noqa: E402
from convscope.io import load_model  # noqa: E402
from convscope.viz.saliency import gradcam_layer, mass_share, placed_grad_cam  # noqa: E402


def digit_region(image, margin):
    """Ink pixels of a uint8 (H, W) image and their neighbours within ``margin`` pixels."""
    ink = image > 0.3 * max(int(image.max()), 1)
    region = ink.copy()
    for dy in range(-margin, margin + 1):
        for dx in range(-margin, margin + 1):
            region |= np.roll(np.roll(ink, dy, axis=0), dx, axis=1)
    return region


def focus(model, x, image, layer, margin):
    """(share of the placed Grad-CAM mass on the digit region, or None for an empty map;
    the region's share of the image)."""
    placed, _, _ = placed_grad_cam(model, x, layer=layer)
    region = digit_region(image, margin)
    return mass_share(placed, region), float(region.mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--layer", action="append", default=[], help="also measure this layer (repeatable)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--margin", type=int, default=2)
    args = parser.parse_args(argv)
    model, meta = load_model(args.model)
    data = load_dataset(meta["dataset"], "val")
    n = min(args.images, len(data))
    x = normalise(data.images[:n], meta["mean"], meta["std"])
    chosen = gradcam_layer(model, x[:1])
    print(f"{args.model}: {n} {meta['dataset']} validation images; convscope's Grad-CAM layer is {chosen!r}")
    for layer in [None] + args.layer:
        scores, areas = zip(*[focus(model, x[i:i + 1], data.images[i, 0], layer, args.margin) for i in range(n)])
        hit = np.array([s for s in scores if s is not None])
        empty = sum(s is None for s in scores) / n
        name = chosen if layer is None else layer
        print(f"layer {name!r:8}: median focus {np.median(hit) if len(hit) else 0:.2f}, "
              f"focus > 50% on {np.sum(hit > 0.5) / n:.1%} of images, empty map on {empty:.1%}; "
              f"the digit region covers {np.mean(areas):.1%} of an image")


if __name__ == "__main__":
    main()
