"""Command line: `python -m convscope.data.show_scenes out.png` draws a few digit scenes.

Each scene appears twice, enlarged: the picture with every digit's box, class and centre of
mass (a dot), and beside it the mask, one colour per class (black = background). It reads
(or first makes) the scenes of `digit-scenes`, or `digit-centres` with --dataset, from the
cache. Nothing in the package imports this module; it exists to be run, for a person to look
at what the generator makes.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..files import write_atomic
from .catalog import DatasetNotFoundError, load_splits
from .download import default_cache_dir
from .scene_sets import SCENE_DATASETS, SEEDS, cached_scenes

ZOOM = 4
# One colour per mask class: background black, then ten digits.
PALETTE = np.array([(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)], np.uint8)


def draw_scene(image: np.ndarray, mask: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
               centres: np.ndarray) -> Image.Image:
    """One scene (H, W) and its mask side by side, ZOOM times larger, boxes and centres drawn."""
    h, w = image.shape
    picture = Image.fromarray(image).convert("RGB").resize((w * ZOOM, h * ZOOM), Image.NEAREST)
    pen = ImageDraw.Draw(picture)
    for (x0, y0, x1, y1), label, (cx, cy) in zip(boxes, classes, centres):
        if label < 0:
            continue
        colour = tuple(int(c) for c in PALETTE[label + 1])
        pen.rectangle((x0 * ZOOM, y0 * ZOOM, x1 * ZOOM - 1, y1 * ZOOM - 1), outline=colour)
        pen.text((x0 * ZOOM + 2, y0 * ZOOM + 1), str(label), fill=colour)
        pen.ellipse((cx * ZOOM - 3, cy * ZOOM - 3, cx * ZOOM + 3, cy * ZOOM + 3), fill=colour)
    coloured = Image.fromarray(PALETTE[mask]).resize((w * ZOOM, h * ZOOM), Image.NEAREST)
    both = Image.new("RGB", (2 * w * ZOOM + ZOOM, h * ZOOM), (128, 128, 128))
    both.paste(picture, (0, 0))
    both.paste(coloured, (w * ZOOM + ZOOM, 0))
    return both


def sheet(scenes, count: int, columns: int = 2) -> Image.Image:
    """The first `count` scenes drawn in a grid of `columns` pairs."""
    tiles = [draw_scene(scenes.images[i, 0], scenes.masks[i], scenes.boxes[i], scenes.classes[i],
                        scenes.centres[i]) for i in range(min(count, len(scenes)))]
    tw, th = tiles[0].size
    rows = -(-len(tiles) // columns)
    out = Image.new("RGB", (columns * (tw + 8), rows * (th + 8)), (255, 255, 255))
    for k, tile in enumerate(tiles):
        out.paste(tile, ((k % columns) * (tw + 8), (k // columns) * (th + 8)))
    return out


def main(argv: list[str] | None = None) -> int:
    """Draw the scenes into the PNG file given; print what was drawn. Returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m convscope.data.show_scenes",
                                     description="Draw digit scenes with their boxes, centres and masks.")
    parser.add_argument("out", type=Path, help="the PNG file to write")
    parser.add_argument("--dataset", choices=sorted(SCENE_DATASETS), default="digit-scenes")
    parser.add_argument("--split", choices=sorted(SEEDS), default="val")
    parser.add_argument("--count", type=int, default=8, help="how many scenes (default 8)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache folder (default: $CONVSCOPE_DATA or ~/.cache/convscope)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count: expected a positive number of scenes, got {args.count}")
    cache = args.cache_dir or default_cache_dir()
    recipe = SCENE_DATASETS[args.dataset]
    try:
        digits = {d.split: d for d in load_splits("digits", ("train", "val"), cache_dir=cache)}
    except DatasetNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    scenes = cached_scenes(cache / recipe.folder / f"{args.split}.npz", recipe, args.split,
                           digits[args.split].images, digits[args.split].labels)
    buffer = io.BytesIO()
    sheet(scenes, args.count).save(buffer, format="PNG")
    write_atomic(args.out, buffer.getvalue())
    print(f"wrote {args.out}: {min(args.count, len(scenes))} of the {len(scenes)} {args.split} scenes of "
          f"{args.dataset} ({time.perf_counter() - start:.1f} s to read or make them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
