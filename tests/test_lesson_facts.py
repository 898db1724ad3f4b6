"""Every number a lesson writes is marked, and every marked number is the model's own.

The lesson's HTML is read back (tests/lesson_checks.py); each number is checked against an
independent :func:`convscope.summary.summarize` of the model, the run folder's records, the
trace of the image, or a real layer; the text outside the marks holds no digit at all.
"""

import re

import numpy as np
import pytest
from lesson_checks import LessonPage, check_fact

from convscope import nn
from convscope.lesson import DEPTHS, Request, build_lesson, to_html
from convscope.models import Detector, Locator, SmallResNet, SmallVGG, UNet, lenet5
from convscope.summary import summarize

METRICS = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + 0.04 * e, "val_loss": 1.2 / e,
            "val_acc": 0.45 + 0.05 * e, "seconds": 2.5 + e / 10, "lr": 0.001} for e in range(1, 6)]
CONFIG = {"optimizer": "adamw", "lr": 0.003, "batch_size": 32, "weight_decay": 0.05, "schedule": "onecycle"}


def random_model(seed):
    """A Sequential of conv, pool and linear layers with sizes drawn at random (seeded)."""
    rng = np.random.default_rng(seed)
    c1, c2, k, pad = int(rng.integers(2, 6)), int(rng.integers(3, 9)), int(rng.choice([3, 5])), int(rng.integers(0, 2))
    size = 20
    h1 = (size + 2 * pad - k) + 1
    h2 = ((h1 // 2) - 3) // 2 + 1
    return nn.Sequential(nn.Conv2d(3, c1, k, padding=pad, rng=rng), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(c1, c2, 3, stride=2, rng=rng), nn.Tanh(), nn.Flatten(),
                         nn.Linear(c2 * h2 * h2, 7, rng=rng)), (3, size, size)


def models():
    rng = np.random.default_rng(0)
    return {"lenet5": (lenet5(rng=rng), (1, 28, 28), "classification"),
            "vgg": (SmallVGG(width=4, rng=rng), (1, 28, 28), "classification"),
            "resnet": (SmallResNet(width=4, rng=rng), (3, 32, 32), "classification"),
            "unet": (UNet(width=4, depth=2, rng=rng), (1, 32, 32), "segmentation"),
            "locator": (Locator(width=4, hidden=16, rng=rng), (1, 64, 64), "positions"),
            "random": (*random_model(3), "classification"),
            "mixed": (mixed_model(rng), (3, 16, 16), "classification"),
            "mlp": (nn.Sequential(nn.Flatten(), nn.Linear(784, 32, rng=rng), nn.Sigmoid(), nn.Linear(32, 10, rng=rng)),
                    (1, 28, 28), "classification"),
            "detector": (Detector(width=8, rng=rng), (1, 64, 64), "detection")}


def mixed_model(rng):
    """Batch norm, a leaky ReLU, L2 pooling, dropout, upsampling, a 3x1 kernel and adaptive pooling."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng), nn.BatchNorm2d(4), nn.LeakyReLU(),
                         nn.LPPool2d(2, 2), nn.Dropout(0.2), nn.Upsample(scale_factor=2),
                         nn.Conv2d(4, 5, (3, 1), rng=rng), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(5, 3, rng=rng))


MODELS = models()


def lesson_page(name, tone, image=True, depth=DEPTHS):
    model, shape, task = MODELS[name]
    x = np.random.default_rng(1).standard_normal((1,) + shape).astype(np.float32) if image else None
    request = Request(minutes=120, depth=depth, tone=tone, examples="full", background="none")
    lesson = build_lesson(model, shape, request, task=task, config=CONFIG, metrics=METRICS, image=x)
    return lesson, LessonPage(to_html(lesson))


@pytest.mark.parametrize("tone", ["conversational", "technical"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_number_is_the_models_own(name, tone):
    model, shape, _ = MODELS[name]
    lesson, page = lesson_page(name, tone)
    rows = {r.name: r for r in summarize(model, shape)}
    request = {"input_shape": shape, "minutes": 120}
    assert len(page.facts) > 40
    wrong = [fact for fact in page.facts
             if not check_fact(fact, lesson, model, rows, request, metrics=METRICS, config=CONFIG)]
    assert wrong == []
    kinds = {kind for kind, *_ in page.facts}
    assert {"out", "params", "rf", "total"} | ({"arith"} if name != "mlp" else set()) <= kinds, kinds


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_number_outside_the_marks(name):
    _, page = lesson_page(name, "academic")
    prose = "".join(page.prose)
    assert re.findall(r"\S*\d\S*", prose) == []
    assert len(prose.split()) > 500


def test_a_wrong_number_is_caught():
    model, shape, _ = MODELS["lenet5"]
    lesson, page = lesson_page("lenet5", "technical")
    rows = {r.name: r for r in summarize(model, shape)}
    kind, layer, value, _ = next(f for f in page.facts if f[0] == "params" and f[2] != "0")
    assert check_fact((kind, layer, value, value), lesson, model, rows, {"input_shape": shape, "minutes": 120})
    bad = (kind, layer, "1" + value, "1" + value)
    assert not check_fact(bad, lesson, model, rows, {"input_shape": shape, "minutes": 120})
    arith = next(f for f in page.facts if f[0] == "arith")
    assert not check_fact(arith[:2] + (arith[2] + "0", arith[3] + "0"), lesson, model, rows,
                          {"input_shape": shape, "minutes": 120})


def test_the_lenet_numbers_a_reader_expects():
    lesson, page = lesson_page("lenet5", "technical")
    values = {(k, layer): v for k, layer, v, _ in page.facts}
    assert values[("out", "0")] == "6x28x28" and values[("params", "3")] == "2,416"
    assert values[("rf", "5")] == "16" and values[("total", "")] == "61,706"
    assert values[("arith", "2")] == "(28 + 2*0 - 2)/2 + 1 = 14"


def test_the_detector_numbers_a_reader_expects():
    lesson, page = lesson_page("detector", "technical")
    values = {(k, v.split("=")[0]): v.split("=")[-1] for k, _, v, _ in page.facts if k in ("grid", "decode")}
    assert values[("grid", "classes")] == "10" and values[("grid", "boxes")] == "4"
    assert values[("grid", "size")] == "16x16" and values[("grid", "stride")] == "4"
    assert values[("grid", "cells")] == "256" and values[("decode", "nms_iou")] == "0.5"
    assert values[("decode", "score_threshold")] == "0.05"
    model, shape, _ = MODELS["detector"]
    rows = {r.name: r for r in summarize(model, shape)}
    request = {"input_shape": shape, "minutes": 120}
    for kind, key in (("grid", "classes=11"), ("grid", "stride=2"), ("decode", "nms_iou=0.45")):
        assert not check_fact((kind, "", key, key.split("=")[1]), lesson, model, rows, request)
    top = next(f for f in page.facts if f[0] == "det" and f[2].startswith("top:score="))
    wrong = f"{float(top[3]) + 0.01:.3g}"
    assert check_fact(top, lesson, model, rows, request)
    assert not check_fact(("det", "", f"top:score={wrong}", wrong), lesson, model, rows, request)
