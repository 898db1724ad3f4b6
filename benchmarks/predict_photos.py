"""How well ``convscope predict`` reads digits photographed in the wild.

Writes ``--per-kind`` photos of each kind of :mod:`convscope.data.photos` (grey gradients,
noise, shadows, tilted sheets with white corners, transparent PNGs, EXIF-rotated JPEGs,
16-bit PNGs, clean), digits 0-9 in every DejaVu font, seeded, into a temporary folder, runs
each through ``preprocess_image`` and the model, and prints the accuracy per kind and in all.

    python benchmarks/predict_photos.py runs/lenet5-digits/model.safetensors [--per-kind 40] [--keep DIR]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from convscope.data.photos import KINDS, font_paths, write_photo  # noqa: E402
from convscope.data.preprocess import preprocess_image  # noqa: E402
from convscope.inference import predict  # noqa: E402
from convscope.io import load_model  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="write the photos here and keep them")
    args = parser.parse_args(argv)
    model, meta = load_model(args.model)
    fonts, rng = font_paths(), np.random.default_rng(args.seed)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="photos-"))
    right, total = {}, {}
    for kind in KINDS:
        for i in range(args.per_kind):
            digit, font = i % 10, fonts[(i // 10 + KINDS.index(kind)) % len(fonts)]
            path = write_photo(folder / f"{kind}-{i:03d}-{digit}", digit, kind, rng, font)
            try:
                x, _ = preprocess_image(path, meta)
                hit = int(predict(model, x)[0].argmax() == digit)
            except ValueError:  # e.g. "the image is blank": a miss
                hit = 0
            right[kind] = right.get(kind, 0) + hit
            total[kind] = total.get(kind, 0) + 1
    print(f"{args.model}: {sum(total.values())} photos, {len(fonts)} fonts, seed {args.seed}")
    for kind in KINDS:
        print(f"  {kind:14s} {right[kind] / total[kind]:7.1%}  ({right[kind]}/{total[kind]})")
    print(f"  {'all':14s} {sum(right.values()) / sum(total.values()):7.1%}")


if __name__ == "__main__":
    main()
