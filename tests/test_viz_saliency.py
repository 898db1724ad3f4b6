"""Saliency and Grad-CAM against central finite differences, in float64, on a small model."""

import numpy as np
import pytest

from convscope import Tensor, nn, no_grad
from convscope.models import SmallResNet, SmallVGG, lenet5
from convscope.summary import hooked
from convscope.viz.saliency import grad_cam, gradcam_layer, predict, saliency, saliency_map, top_k

EPS = 1e-6


def small_model():
    """Conv-ReLU-MaxPool-Conv-ReLU-Flatten-Linear on 1x8x8 inputs, float64."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(3, 4, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(16, 5, rng=rng))
    for p in model.parameters():
        p.data = p.data.astype(np.float64) + 0.05  # a positive shift keeps some ReLUs open
    return model


def an_input():
    return np.random.default_rng(1).standard_normal((1, 1, 8, 8))


def score(model, x, target):
    with no_grad():
        return model(Tensor(x, dtype=np.float64)).data[0, target]


def central_differences(f, a):
    grad = np.zeros_like(a)
    for index in np.ndindex(a.shape):
        plus, minus = a.copy(), a.copy()
        plus[index] += EPS
        minus[index] -= EPS
        grad[index] = (f(plus) - f(minus)) / (2 * EPS)
    return grad


@pytest.mark.parametrize("target", [None, 3])
def test_saliency_is_the_input_gradient(target):
    model, x = small_model(), an_input()
    gradient, chosen = saliency(model, x, target)
    assert chosen == (int(predict(model, x)[0].argmax()) if target is None else target)
    expected = central_differences(lambda v: score(model, v, chosen), x)[0]
    assert np.count_nonzero(expected) > 32  # a real test: most pixels matter
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(saliency_map(gradient), np.abs(expected).max(axis=0), rtol=1e-5, atol=1e-7)


def test_grad_cam_matches_finite_differences():
    model, x = small_model(), an_input()
    assert gradcam_layer(model, x) == "4"  # the last conv's maps after their ReLU
    with no_grad():
        activation = model[:5](Tensor(x)).data  # output of the last conv's ReLU, (1, 4, 2, 2)

    def score_from_activation(a):
        def replace(name, module, inputs, out):
            return Tensor(a) if name == "4" else None

        with hooked(model, replace):
            return score(model, x, target)

    cam, layer, target = grad_cam(model, x)
    gradient = central_differences(score_from_activation, activation)[0]
    expected = np.maximum(np.tensordot(gradient.mean(axis=(1, 2)), activation[0], axes=1), 0)
    assert layer == "4" and cam.shape == (2, 2) and cam.max() > 0
    np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-8)


def test_no_trace_left_on_the_model():
    model, x = small_model(), an_input()
    model.train()
    saliency(model, x)
    grad_cam(model, x, target=1)
    for p in model.parameters():
        assert p.grad is None and p.requires_grad
    assert all(m.training and "forward" not in vars(m) for m in model.modules())


def test_gradcam_layer_choices():
    x = np.zeros((1, 1, 28, 28), np.float32)
    assert gradcam_layer(lenet5(rng=np.random.default_rng(0)), x) == "4"  # conv 3, then its ReLU
    assert gradcam_layer(SmallVGG(rng=np.random.default_rng(0)), x) == "12"  # conv 10, batch norm, ReLU
    resnet = SmallResNet(width=4, rng=np.random.default_rng(0))
    xr = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    assert gradcam_layer(resnet, xr) == "stages.2"  # the block, whose output includes the shortcut
    cam, layer, _ = grad_cam(resnet, xr)
    assert cam.shape == (8, 8) and (cam >= 0).all()


def test_top_k():
    assert top_k(np.array([0.1, 0.5, 0.15, 0.25]), 2) == [(1, 0.5), (3, 0.25)]
