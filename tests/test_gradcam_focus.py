"""Grad-CAM of a trained network lights the object, not the background: a LeNet-5 trained for
a few seconds to tell three shapes apart, placed anywhere on a noisy background, puts most of
each map's mass on the shape (the main job's figure on real digits comes from
``benchmarks/gradcam_focus.py``; see the README)."""

import numpy as np

from convscope import optim
from convscope.data import DataLoader, Dataset, normalise
from convscope.models import lenet5
from convscope.train import fit
from convscope.viz.saliency import gradcam_layer, mass_share, placed_grad_cam


def shapes(n, seed):
    """uint8 (n, 1, 28, 28) images of a bright bar, cross or box (classes 0, 1, 2) of 8 px at a
    random place on dark noise, and the boolean region of each shape (its pixels and 1 px around)."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 1, 28, 28)) * 60).astype(np.uint8)
    labels, regions = rng.integers(0, 3, n), np.zeros((n, 28, 28), bool)
    for k, (label, (top, left)) in enumerate(zip(labels, rng.integers(2, 18, size=(n, 2)))):
        shape = np.zeros((8, 8), bool)
        if label == 0:
            shape[:, 3:5] = True
        elif label == 1:
            shape[:, 3:5] = shape[3:5, :] = True
        else:
            shape[[0, 1, 6, 7], :] = shape[:, [0, 1, 6, 7]] = True
        images[k, 0, top:top + 8, left:left + 8][shape] = 255
        regions[k, top - 1:top + 9, left - 1:left + 9] = True
    return images, labels, regions


def test_grad_cam_mass_lies_on_the_object():
    images, labels, _ = shapes(1500, 0)
    train = Dataset(images, labels, ["bar", "cross", "box"])
    model = lenet5(num_classes=3, rng=np.random.default_rng(0))
    loader = DataLoader(train, batch_size=32, shuffle=True, rng=np.random.default_rng(1))
    fit(model, loader, optim.Adam(model.parameters(), lr=2e-3), 3)
    val_images, val_labels, regions = shapes(120, 1)
    x = normalise(val_images, train.mean, train.std)
    assert gradcam_layer(model, x[:1]) == "4"
    correct = sum(placed_grad_cam(model, x[i:i + 1])[2] == val_labels[i] for i in range(len(x)))
    assert correct / len(x) > 0.9  # it has learned the shapes

    def on_object(layer):
        """Share of images whose placed Grad-CAM has more than half its mass on the shape."""
        shares = [mass_share(placed_grad_cam(model, x[i:i + 1], layer=layer)[0], regions[i]) for i in range(len(x))]
        return sum(s is not None and s > 0.5 for s in shares) / len(x)

    rectified, raw = on_object("4"), on_object("3")  # measured: 0.69 and 0.43
    assert rectified > 0.6 and rectified > raw
    assert np.mean(regions) < 0.2  # the shapes' regions are small: a spread-out map would fail
