"""Datasets for convscope: file readers, named datasets, the DataLoader and augmentations.

    from convscope.data import load_dataset, DataLoader, RandomShift
    train = load_dataset("digits", "train")          # Dataset: images (N, 1, 28, 28) uint8
    loader = DataLoader(train, batch_size=64, shuffle=True, rng=np.random.default_rng(0),
                        augment=RandomShift(2))
    for x, y in loader: ...                          # x (64, 1, 28, 28) float32, y (64,) int64
    scenes = load_dataset("digit-scenes", "val")     # 64x64 scenes of 1-4 digits, y (N, 4, 5) boxes
"""
from .augment import (
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomShift,
    rotate,
    translate,
)
from .catalog import DATASETS, DatasetNotFoundError, load_dataset, load_splits
from .dataset import Dataset, channel_stats, normalise
from .download import default_cache_dir, sha256_file, verify_sha256
from .loader import DataLoader
from .npm_digits import prepare_digits
from .preprocess import preprocess_image
from .readers import read_cifar10_batch, read_idx, read_image_folder, read_npz
from .scene_sets import SCENE_DATASETS, box_counts, boxes_per_image
from .scenes import Scenes, SceneSettings, make_scenes
from .user import load_user_data, load_user_splits

__all__ = [
    # containers and loading
    "Dataset",
    "DataLoader",
    "load_dataset",
    "load_splits",
    "load_user_data",
    "load_user_splits",
    "preprocess_image",
    "DATASETS",
    "SCENE_DATASETS",
    "DatasetNotFoundError",
    "prepare_digits",
    "default_cache_dir",
    "channel_stats",
    "normalise",
    # readers
    "read_idx",
    "read_cifar10_batch",
    "read_image_folder",
    "read_npz",
    # scenes of several digits: boxes, masks, centres
    "make_scenes",
    "Scenes",
    "SceneSettings",
    "box_counts",
    "boxes_per_image",
    # integrity
    "sha256_file",
    "verify_sha256",
    # augmentation
    "Compose",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomShift",
    "rotate",
    "translate",
]
