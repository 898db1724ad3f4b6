"""Default training recipes: optimizer, schedule, batch size and augmentation per model.

``convscope train`` uses these unless told otherwise. The LeNet-5 recipe (AdamW with weight
decay 0.05, a one-cycle schedule peaking at 3e-3, batch 32, random 1-pixel shifts on
digits) reached 98.60-98.93% on the ``digits`` validation split in 20 epochs over seeds
0-3 (mean 98.80%). Measured alternatives, same seeds: batch 64 mean 98.42%; weight decay
0.1 98.57%; shifts plus 5-degree rotations 98.67%; Adam without weight decay, He init or
+-2 px shifts with 10-degree rotations 97.3-98.3%. See README.md.

The locator recipe (Adam, one-cycle to 3e-3, batch 64, 8 epochs, no augmentation: a shift
would move the target) reached a mean centre error of 0.87 / 0.78 / 0.88 px for seeds 0 / 1 /
2 on the 1,500 digit-centres validation canvases (seed 0: median 0.75 px, 68% within 1 px),
from scratch, in 1.9 / 1.3 / 0.9 minutes on two cores shared with other work (load 2.7-5)
(``convscope train --model locator --data digit-centres``).

The U-Net recipe (Adam, one-cycle peaking at 5e-3, batch 8, 3 epochs, no augmentation: a
shifted scene would need its mask shifted too) reached mIoU 0.914 over the 11 classes
(pixel accuracy 99.32%) on the ``digit-masks`` validation scenes, seed 0, in 733 s of
training (14.2 min with loading, validation and the report) on a shared 2-core machine.
Epoch by epoch: 0.640, 0.875, 0.914. On 2,500 scenes, width 12 with two levels learned no
faster than width 8 with three, which runs 1.4x as fast; batch 16 at 3e-3 was slower still.

The detector recipe (Adam, one-cycle peaking at 3e-3, batch 32, 3 epochs, no augmentation: a
flip or shift would need its boxes moved too) reached mAP@0.5 0.964 (mAP@0.5:0.95 0.749) on the
2,000 ``digit-scenes`` validation scenes, seed 0, in 437 s of training on an otherwise idle
2-core machine (``convscope train --model detector --data digit-scenes``). Epoch by epoch:
0.901, 0.957, 0.964. Four epochs reached 0.971 (0.692, 0.956, 0.970, 0.971) but take about
10 minutes of training here, more than the time asked of this recipe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import optim
from .data import Compose, RandomCrop, RandomHorizontalFlip, RandomRotation, RandomShift
from .tensor import Tensor


@dataclass
class Recipe:
    """How to train: every field can be overridden from the command line."""

    optimizer: str = "adam"        # "sgd", "adam" or "adamw"
    lr: float = 3e-3               # peak learning rate of the schedule
    momentum: float = 0.9          # SGD only
    weight_decay: float = 0.0
    schedule: str = "onecycle"     # "onecycle", "cosine", "step" or "constant"
    batch_size: int = 64
    epochs: int = 20
    augment: dict = field(default_factory=dict)  # e.g. {"shift": 2, "rotate": 10, "flip": False}


RECIPES = {
    "lenet5": Recipe(optimizer="adamw", lr=3e-3, weight_decay=0.05, batch_size=32, epochs=20),
    "vgg": Recipe(optimizer="adamw", lr=3e-3, weight_decay=5e-4, batch_size=128, epochs=10),
    "resnet": Recipe(optimizer="sgd", lr=0.1, weight_decay=5e-4, batch_size=128, epochs=30),
    "locator": Recipe(optimizer="adam", lr=3e-3, batch_size=64, epochs=8),  # digit-centres: see above
    "unet": Recipe(optimizer="adam", lr=5e-3, batch_size=8, epochs=3),  # digit-masks: see the module docstring
    "detector": Recipe(optimizer="adam", lr=3e-3, batch_size=32, epochs=3),  # digit-scenes: see the module docstring
}

AUGMENT = {  # per dataset: what keeps a label true
    "digits": {"shift": 1},
    "mnist": {"shift": 1},
    "fashion-mnist": {"shift": 2, "flip": True},
    "cifar10": {"crop": 4, "flip": True},
}


def recipe_for(model_name: str, dataset_name: str) -> Recipe:
    """The default recipe of ``model_name``, with augmentation suited to ``dataset_name``."""
    base = RECIPES.get(model_name, Recipe())
    return Recipe(**{**base.__dict__, "augment": dict(AUGMENT.get(dataset_name, {}))})


def make_augment(spec: Mapping[str, Any], image_size: tuple[int, int]) -> Compose | None:
    """Augmentation callable from a recipe's ``augment`` dict (None when empty)."""
    steps = []
    if spec.get("crop"):
        steps.append(RandomCrop(image_size, padding=spec["crop"]))
    if spec.get("shift"):
        steps.append(RandomShift(spec["shift"]))
    if spec.get("rotate"):
        steps.append(RandomRotation(spec["rotate"]))
    if spec.get("flip"):
        steps.append(RandomHorizontalFlip())
    return Compose(steps) if steps else None


def make_optimizer(recipe: Recipe, params: Iterable[Tensor]) -> optim.Optimizer:
    if recipe.optimizer == "sgd":
        return optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0,
                         weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; expected sgd, adam or adamw")


def make_scheduler(recipe: Recipe, optimizer: optim.Optimizer, total_steps: int) -> optim.LRScheduler | None:
    """A schedule stepped once per batch over ``total_steps`` batches (None for constant).

    A run of a single step has nothing to schedule and keeps the peak rate.
    """
    if total_steps < 2:
        return None
    if recipe.schedule == "onecycle":
        return optim.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total_steps)
    if recipe.schedule == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=total_steps)
    if recipe.schedule == "step":
        return optim.StepLR(optimizer, step_size=max(total_steps // 3, 1), gamma=0.1)
    if recipe.schedule == "constant":
        return None
    raise ValueError(f"unknown schedule {recipe.schedule!r}; expected onecycle, cosine, step or constant")
