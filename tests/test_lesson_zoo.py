"""The lesson for every model of the zoo, at every depth and tone and for each aspect alone:
every number the model's own, no number outside the marks, the pictures its task calls for;
the grid detector's lesson speaks of heatmaps, focal loss, peaks and boxes, never of a softmax;
the command line on the detector, untrained and after a short run on tiny digit scenes."""

import dataclasses
import itertools
import re

import numpy as np
import pytest
from lesson_checks import LessonPage, check_fact

from convscope.cli import main
from convscope.io import load_model
from convscope.lesson import ASPECTS, DEPTHS, TONES, Request, build_lesson, read_run, to_html, to_markdown
from convscope.models import ZOO, ZOO_INPUTS, ZOO_TASKS, build
from convscope.summary import summarize
from convscope.viz.lesson import lesson_html

SMALL = {"vgg": {"width": 4}, "resnet": {"width": 4}, "unet": {"width": 4}, "locator": {"width": 4},
         "detector": {"width": 8}}  # the zoo's own layers, fewer channels: quicker, the same kinds of text
DEPTH_SETS = [d for k in (1, 2, 3) for d in itertools.combinations(DEPTHS, k)]
METRICS = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "lr": 0.001 * e, "train_map50": 0.1 * e,
            "val_map50": 0.08 * e, "seconds": 1.5} for e in (1, 2, 3)]


def zoo_model(name):
    return build(name, rng=np.random.default_rng(0), **SMALL.get(name, {})), ZOO_INPUTS[name]


def image_for(shape):
    return np.random.default_rng(1).standard_normal((1,) + shape).astype(np.float32)


def wrong_facts(lesson, model, shape, minutes, metrics=()):
    rows = {r.name: r for r in summarize(model, shape)}
    page = LessonPage(to_html(lesson))
    request = {"input_shape": shape, "minutes": minutes}
    return page, [f for f in page.facts if not check_fact(f, lesson, model, rows, request, metrics=metrics)]


@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_at_every_depth(name, tone):
    model, shape = zoo_model(name)
    task = ZOO_TASKS.get(name, "classification")
    for depth in DEPTH_SETS:
        request = Request(minutes=60, depth=depth, tone=tone, examples="full")
        lesson = build_lesson(model, shape, request, task=task, metrics=METRICS, image=image_for(shape))
        page, wrong = wrong_facts(lesson, model, shape, 60, METRICS)
        assert wrong == [], (depth, wrong[:3])
        assert [s for s in page.sections if s in ASPECTS] == list(ASPECTS), depth
        assert re.findall(r"\S*\d\S*", "".join(page.prose)) == [], depth
        assert len(page.facts) > 40


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_for_each_aspect_alone(name):
    model, shape = zoo_model(name)
    task = ZOO_TASKS.get(name, "classification")
    for aspect, tone in itertools.product(ASPECTS, TONES):
        for minutes in (2, 10):
            lesson = build_lesson(model, shape, Request(minutes=minutes, aspects=(aspect,), depth=DEPTHS, tone=tone),
                                  task=task)
            page, wrong = wrong_facts(lesson, model, shape, minutes)
            assert wrong == [] and [s for s in page.sections if s in ASPECTS] == [aspect], (aspect, tone)


def detector_lesson(tone="conversational", depth=DEPTHS, image=True):
    model, shape = zoo_model("detector")
    request = Request(minutes=120, depth=depth, tone=tone, examples="full")
    return model, build_lesson(model, shape, request, task="detection", image=image_for(shape) if image else None)


def test_the_detector_lesson_speaks_of_its_own_output():
    _, lesson = detector_lesson()
    written = to_markdown(lesson)
    assert "mAP@0.5 was 0.3 on its training scenes and 0.24 on the validation scenes" in to_markdown(
        build_lesson(*zoo_model("detector"), Request(minutes=120, depth=("technical",)), task="detection",
                     metrics=METRICS))
    for said in ("16x16 grid", "10 class scores and 4 box numbers", "focal loss", "(1 - p)^α · log p",
                 "(α = 2, β = 4)", "σ(z[k, i, j])", "|d - d*|", "8 neighbours", "under 0.05",
                 "more than 0.5 (IoU)", "## How it finds objects", "`convscope train --model detector --data "
                 "digit-scenes`", "as this network does", "Its filter is dilated by 2", "dilated by 4"):
        assert said in written, said
    facts = {(kind, value) for kind, _, value, _ in LessonPage(to_html(lesson)).facts}
    assert {("formula", "focal"), ("formula", "l1_box"), ("formula", "focal_grad"), ("formula", "peak"),
            ("formula", "nms")} <= facts
    assert not {("formula", "softmax"), ("formula", "cross_entropy"), ("formula", "ce_grad")} & facts
    assert "Softmax turns them into probabilities" not in written and "Say your image really is" not in written


def test_the_detector_lesson_has_the_same_facts_in_every_tone():
    made = {tone: detector_lesson(tone)[1] for tone in TONES}
    keys = {tone: [b.key for b in made[tone].blocks] for tone in TONES}
    assert keys["conversational"] == keys["academic"] == keys["technical"]
    assert "predictions.worked" in keys["academic"] and "learning.targets" in keys["academic"]
    for key in keys["academic"]:
        facts = [{f[:3] for f in LessonPage(to_html(dataclasses.replace(made[tone], blocks=[
            b for b in made[tone].blocks if b.key == key]))).facts} for tone in TONES]
        assert facts[0] == facts[1] == facts[2], key


def test_the_detector_lesson_draws_boxes_not_class_bars():
    model, lesson = detector_lesson(depth=("conceptual",))
    page = LessonPage(lesson_html(lesson, model))
    assert "boxes" in page.figures and "prediction" not in page.figures
    assert lesson.found is not None and len(lesson.found["scores"]) > 0
    _, without = detector_lesson(depth=("conceptual",), image=False)
    assert without.found is None and "boxes" not in LessonPage(lesson_html(without, model)).figures
    classifier, shape = zoo_model("lenet5")
    bars = build_lesson(classifier, shape, Request(minutes=10), image=image_for(shape))
    assert "prediction" in LessonPage(lesson_html(bars, classifier)).figures and bars.found is None


def test_cli_lesson_on_the_detector(tmp_path, capsys):
    out = tmp_path / "detector.md"
    assert main(["lesson", "detector", "--minutes", "3", "--out", str(out)]) == 0
    written = out.read_text()
    assert "## How it finds objects" in written and "16x16 grid" in written
    assert main(["lesson", "detector", "--minutes", "3", "--depth", "math", "--tone", "technical"]) == 0
    assert "(α = 2, β = 4)" in capsys.readouterr().out


def test_cli_lesson_on_a_trained_detector_run(scenes, capsys):
    run = scenes / "run"
    assert main(["train", "--model", "detector", "--data", "digit-scenes", "--epochs", "1", "--batch-size", "8",
                 "--no-report", "--out", str(run)]) == 0
    page_path = scenes / "lesson.html"
    assert main(["lesson", str(run), "--minutes", "10", "--depth", "conceptual,technical,math",
                 "--out", str(page_path)]) == 0
    assert "digit-scenes validation image 0" in capsys.readouterr().out
    text = page_path.read_text()
    page = LessonPage(text)
    assert "boxes" in page.figures and "curve" in page.figures and "prediction" not in page.figures
    model, meta = load_model(run)
    config, metrics = read_run(run)
    rows = {r.name: r for r in summarize(model, tuple(meta["input_shape"]))}
    assert any(f[0] == "run" for f in page.facts)
    # the page's facts are checked against a lesson rebuilt on the same image (its trace)
    from convscope.cli.inspect import validation_sample
    x, _ = validation_sample(meta)
    lesson = build_lesson(model, meta["input_shape"], Request(minutes=10, depth=DEPTHS), task=meta["task"],
                          class_names=meta["class_names"], config=config, metrics=metrics, image=x)
    request = {"input_shape": tuple(meta["input_shape"]), "minutes": 10}
    wrong = [f for f in page.facts if not check_fact(f, lesson, model, rows, request,
                                                     class_names=meta["class_names"], metrics=metrics,
                                                     config=config)]
    assert wrong == []
