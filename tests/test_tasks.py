"""Tasks beyond classification: the loop takes its loss and figures from a task, a Dataset holds
targets of any shape, and a hook runs between backward and step (gradient clipping)."""

import numpy as np
import pytest

from convscope import nn, optim
from convscope.data import DataLoader, Dataset
from convscope.optim import clip_grad_norm_
from convscope.tasks import Classification, Regression
from convscope.train import Callback, GradientClipping, evaluate, fit


def spot_images(n, seed=0):
    """One bright 2x2 spot per 12x12 image; the target is its centre (row, column) / 12."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, 12, 12), np.uint8)
    centres = rng.integers(1, 10, size=(n, 2))
    for k, (r, c) in enumerate(centres):
        images[k, 0, r:r + 2, c:c + 2] = 255
    return images, ((centres + 1.0) / 12).astype(np.float32)


def locator(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 6 * 6, 32, rng=rng), nn.ReLU(), nn.Linear(32, 2, rng=rng))


def test_dataset_and_loader_carry_vector_targets():
    images, centres = spot_images(10)
    data = Dataset(images, centres, name="spots")
    assert data.targets.shape == (10, 2) and data.targets.dtype == np.float32 and data.num_classes == 0
    x, y = next(iter(DataLoader(data, batch_size=4)))
    assert x.shape == (4, 1, 12, 12) and y.shape == (4, 2)
    np.testing.assert_array_equal(y, centres[:4])


def test_dataset_still_checks_class_labels():
    with pytest.raises(ValueError, match="expected labels >= 0"):
        Dataset(np.zeros((2, 4, 4), np.uint8), np.array([0, -1]))
    with pytest.raises(ValueError, match="one label per image"):
        Dataset(np.zeros((2, 4, 4), np.uint8), np.zeros((3, 2), np.float32))


def test_regression_trains_and_reports_its_own_figures():
    images, centres = spot_images(256)
    train = DataLoader(Dataset(images[:200], centres[:200]), batch_size=20, shuffle=True, rng=np.random.default_rng(1))
    val = DataLoader(Dataset(images[200:], centres[200:]), batch_size=56)
    model = locator()
    before = evaluate(model, val, task=Regression())
    history = fit(model, train, optim.Adam(model.parameters(), lr=3e-3), 8, val, task=Regression())
    after = evaluate(model, val, task=Regression())
    assert {"train_loss", "train_mae", "train_distance", "val_loss", "val_mae", "val_distance"} <= set(history[-1])
    assert "train_acc" not in history[-1]
    assert after["loss"] < before["loss"] / 5 and after["distance"] < 0.05  # under a pixel of 12
    assert after["outputs"].shape == (56, 2) and after["count"] == 56


def test_classification_is_the_default_task():
    rng = np.random.default_rng(0)
    images, labels = (rng.random((40, 1, 6, 6)) * 255).astype(np.uint8), rng.integers(0, 3, 40)
    loader = DataLoader(Dataset(images, labels), batch_size=10)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3, rng=rng))
    default = evaluate(model, loader)
    explicit = evaluate(model, loader, task=Classification(num_classes=3))
    assert default["accuracy"] == explicit["accuracy"] and default["confusion"].shape == (3, 3)
    np.testing.assert_array_equal(default["labels"], labels)
    record = fit(model, loader, optim.SGD(model.parameters(), lr=0.1), 1, loader)[-1]
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(record)


class Watch(Callback):
    """Records the gradient norm each backward pass leaves, and the weights at that moment."""

    def __init__(self):
        self.norms, self.weights = [], []

    def on_backward_end(self, epoch, batch, model):
        grads = [p.grad for p in model.parameters()]
        self.norms.append(float(np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads))))
        self.weights.append(model.parameters()[0].data.copy())


def test_hook_runs_between_backward_and_step_and_clipping_clips():
    images, centres = spot_images(40)
    loader = DataLoader(Dataset(images, centres * 100), batch_size=10)  # large targets: large gradients
    model = locator()
    watch_raw, clip, watch_clipped = Watch(), GradientClipping(0.5), Watch()
    fit(model, loader, optim.SGD(model.parameters(), lr=1e-4), 1, task=Regression(),
        callbacks=[watch_raw, clip, watch_clipped])
    assert len(watch_raw.norms) == 4 and min(watch_raw.norms) > 0.5
    assert max(watch_clipped.norms) == pytest.approx(0.5, rel=1e-4)
    assert not np.array_equal(watch_raw.weights[0], watch_raw.weights[1])  # a step came after each hook
    np.testing.assert_array_equal(watch_raw.weights[0], watch_clipped.weights[0])  # ...but not in between


def test_clip_grad_norm_leaves_small_gradients_alone():
    p = nn.Parameter(np.zeros(3))
    p.grad = np.array([0.1, 0.2, 0.2], np.float32)
    assert clip_grad_norm_([p], 1.0) == pytest.approx(0.3)
    np.testing.assert_array_equal(p.grad, np.array([0.1, 0.2, 0.2], np.float32))
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        GradientClipping(0)


def test_progress_bar_shows_the_tasks_figures():
    import io

    from convscope.cli.progress import ProgressBar
    images, centres = spot_images(20)
    loader = DataLoader(Dataset(images, centres), batch_size=10)
    model, stream = locator(), io.StringIO()
    fit(model, loader, optim.SGD(model.parameters(), lr=0.01), 1, loader, task=Regression(),
        callbacks=[ProgressBar(stream)])
    lines = stream.getvalue().splitlines()
    assert "mae " in lines[0] and "distance " in lines[0] and "acc" not in lines[0]
    assert lines[1].strip().startswith("validation  loss") and "mae " in lines[1]
    bar = ProgressBar(io.StringIO())
    bar.on_epoch_start(0, 1, 0)
    bar.on_epoch_end(0, {"seconds": 0.0})  # an epoch with no batches
