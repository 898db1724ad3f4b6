"""Named scene datasets built from the real `digits`: detection, segmentation, regression.

    digit-scenes   64x64 scenes of 1-4 digits; targets (N, 4, 5) int64 rows
                   (x0, y0, x1, y1, class), one per digit, padded with rows of class -1
                   (:func:`box_counts` and :func:`boxes_per_image` undo the padding)
    digit-masks    the same kind of scenes; targets (N, 64, 64) uint8 masks,
                   0 = background, k + 1 = digit k (11 classes)
    digit-centres  64x64 canvases of one digit; targets (N, 2) float32, the centre (x, y)
                   of the digit's ink in pixels (see convscope.data.scenes)

Training scenes are made from the `digits` training split only, validation scenes from its
validation split only; split "test" is the validation scenes, as for `digits`. Each split
is made once, from a fixed seed (part of the dataset's definition, like the digits split),
and kept in <cache>/digit-scenes/<split>.npz (shared by digit-scenes and digit-masks) or
<cache>/digit-centres/<split>.npz, with everything :class:`Scenes` holds (``sources``
index the digits of that split) and a JSON ``recipe``: the generator's version, the
settings, the seed, the size and a SHA-256 of the source digits. The file is made again
when it is missing, cannot be read, or its recipe differs from the one wanted now.
"""
from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..files import write_atomic
from .bounded import NpzArchive
from .dataset import Dataset, channel_stats
from .scenes import VERSION, Scenes, SceneSettings, make_scenes

DIGIT_NAMES = tuple(str(k) for k in range(10))
SEEDS = {"train": 20_001, "val": 20_002}  # fixed: the scenes are part of the dataset


@dataclass(frozen=True)
class SceneRecipe:
    """A named scene dataset: its targets ("boxes", "masks" or "centres"), the cache folder
    of its scenes (datasets with the same scenes share one), their settings, and how many
    per split."""

    target: str
    folder: str
    settings: SceneSettings
    sizes: tuple[tuple[str, int], ...] = (("train", 10_000), ("val", 2_000))


SCENE_DATASETS = {
    "digit-scenes": SceneRecipe("boxes", "digit-scenes", SceneSettings()),
    "digit-masks": SceneRecipe("masks", "digit-scenes", SceneSettings()),  # the same scenes, other targets
    "digit-centres": SceneRecipe("centres", "digit-centres", SceneSettings(count=(1, 1)),
                                 (("train", 8_500), ("val", 1_500))),
}


def load_scene_splits(name: str, splits: Sequence[str], digits: dict[str, tuple[np.ndarray, np.ndarray]],
                      cache: Path) -> list[Dataset]:
    """The splits of a named scene dataset, made or read from the cache, as Datasets.

    Args:
        name: a key of SCENE_DATASETS.
        splits: "train", "val" and/or "test" (the validation scenes).
        digits: {"train": (images, labels), "val": (images, labels)}: the digits to make
            scenes from; cached scenes made from other digits are made again.
        cache: the cache folder; the scenes go to cache/<recipe.folder>/<split>.npz.

    ``mean`` and ``std`` come from the training scenes, for every split.
    """
    recipe = SCENE_DATASETS[name]
    made = {split: cached_scenes(cache / recipe.folder / f"{split}.npz", recipe, split, *digits[split])
            for split in ("train", "val")}
    made["test"] = made["val"]
    mean, std = channel_stats(made["train"].images)
    return [as_dataset(made[split], recipe, name, split, mean, std) for split in splits]


def as_dataset(scenes: Scenes, recipe: SceneRecipe, name: str, split: str, mean, std) -> Dataset:
    """The scenes' images with the recipe's targets."""
    if recipe.target == "boxes":
        targets = np.concatenate([scenes.boxes, scenes.classes[..., None]], axis=-1)
        return Dataset(scenes.images, targets, list(DIGIT_NAMES), name, split, mean, std)
    if recipe.target == "masks":
        return Dataset(scenes.images, scenes.masks, ["background", *DIGIT_NAMES], name, split, mean, std)
    return Dataset(scenes.images, scenes.centres[:, 0], None, name, split, mean, std)


def box_counts(targets: np.ndarray) -> np.ndarray:
    """How many boxes each image has in (B, K, 5) box targets: the rows of class >= 0.

    >>> box_counts(np.array([[[0, 0, 2, 2, 7], [0, 0, 0, 0, -1]]]))
    array([1])
    """
    return (np.asarray(targets)[..., 4] >= 0).sum(axis=-1)


def boxes_per_image(targets: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(B, K, 5) box targets -> per image (boxes (n, 4) (x0, y0, x1, y1), classes (n,)), padding dropped."""
    return [(t[t[:, 4] >= 0, :4], t[t[:, 4] >= 0, 4]) for t in np.asarray(targets)]


def recipe_json(recipe: SceneRecipe, split: str, images: np.ndarray, labels: np.ndarray) -> str:
    """Everything the scenes depend on, as the JSON stored with them."""
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.asarray(labels, np.int64).tobytes())
    return json.dumps({"version": VERSION, "settings": asdict(recipe.settings), "split": split,
                       "seed": SEEDS[split], "size": dict(recipe.sizes)[split],
                       "digits_sha256": digest.hexdigest()}, sort_keys=True)


def cached_scenes(path: Path, recipe: SceneRecipe, split: str, images: np.ndarray, labels: np.ndarray) -> Scenes:
    """The scenes of `path` if they match the recipe, else newly made (and written there)."""
    wanted = recipe_json(recipe, split, images, labels)
    scenes = read_scenes(path, wanted)
    if scenes is None:
        size = dict(recipe.sizes)[split]
        scenes = make_scenes(images, labels, size, np.random.default_rng(SEEDS[split]), recipe.settings)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, recipe=np.array(wanted), **scenes.arrays())
        write_atomic(path, buffer.getvalue())
    return scenes


def read_scenes(path: Path, wanted: str) -> Scenes | None:
    """Scenes from an .npz made with recipe `wanted`; None if missing, damaged or of another recipe."""
    try:
        with NpzArchive(path) as archive:  # bounded: a damaged cache cannot blow up memory
            if str(archive.array("recipe")) != wanted:
                return None
            scenes = Scenes(**{f.name: archive.array(f.name) for f in fields(Scenes)})
    except ValueError:
        return None  # missing or damaged: the caller makes the scenes again
    n = len(scenes.images)
    if any(len(a) != n for a in scenes.arrays().values()) or scenes.images.dtype != np.uint8:
        return None
    return scenes
