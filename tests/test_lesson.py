"""convscope lesson: aspects, depths, background, examples and tone each change the lesson as asked."""

import itertools
import re
from collections import Counter

import numpy as np
import pytest
from lesson_checks import LessonPage

from convscope.cli import main
from convscope.lesson import ASPECTS, DEPTHS, TONES, Request, build_lesson, plain, to_html, to_markdown
from convscope.lesson.facts import facts_in
from convscope.lesson.plan import Block, fit
from convscope.models import lenet5
from convscope.viz.lesson import lesson_html

MODEL = lenet5(rng=np.random.default_rng(0))
SHAPE = (1, 28, 28)
IMAGE = np.random.default_rng(2).standard_normal((1, 1, 28, 28)).astype(np.float32)
METRICS = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.6 + 0.05 * e, "val_loss": 1.1 / e,
            "val_acc": 0.55 + 0.06 * e, "seconds": 3.0} for e in (1, 2, 3)]


def lesson(**options):
    image, metrics = options.pop("image", None), options.pop("metrics", ())
    return build_lesson(MODEL, SHAPE, Request(**options), metrics=metrics, image=image)


def text(a_lesson):
    return plain(to_markdown(a_lesson))


# ----- aspects --------------------------------------------------------------------------
SUBSETS = [subset for k in (1, 2, 4) for subset in itertools.combinations(ASPECTS, k)]


@pytest.mark.parametrize("aspects", SUBSETS, ids=lambda a: "+".join(a))
def test_each_selected_aspect_has_its_section_and_no_other(aspects):
    for minutes in (2, 10):
        page = LessonPage(to_html(lesson(minutes=minutes, aspects=aspects, depth=DEPTHS)))
        chosen = [s for s in page.sections if s in ASPECTS]
        assert chosen == list(aspects)
        assert page.sections[0] == "intro"


def test_unknown_choices_say_what_is_allowed():
    with pytest.raises(ValueError, match="aspects must be a non-empty list from structure, processing"):
        lesson(aspects=("structure", "colour"))
    with pytest.raises(ValueError, match="tone must be one of conversational, academic, technical, got 'loud'"):
        lesson(tone="loud")
    with pytest.raises(ValueError, match="minutes must be between 1 and 120, got 0"):
        lesson(minutes=0)


# ----- depth ----------------------------------------------------------------------------
MATH_SIGNS = ("Σ_c Σ_u Σ_v", "p_k = exp(z_k)", "L = -log p_y", "∂L/∂z_k = p_k - [k = y]", "∂L/∂w[o, c, u, v]")


@pytest.mark.parametrize("depth", [d for k in (1, 2, 3) for d in itertools.combinations(DEPTHS, k)],
                         ids=lambda d: "+".join(d))
def test_depth_decides_what_is_written(depth):
    written = text(lesson(minutes=30, depth=depth))
    for sign in MATH_SIGNS:
        assert (sign in written) == ("math" in depth), sign
    assert ("(28 + 2*2 - 5)/1 + 1 = 28" in written) == bool({"technical", "math"} & set(depth))
    assert ("| layer | type | output | parameters | RF |" in written) == ("technical" in depth)
    assert ("Start with layer 0, a convolution." in written) == ("conceptual" in depth)


def test_math_uses_this_models_numbers():
    written = text(lesson(minutes=30, depth=("math",)))
    assert "o < 6,  c < 1,  u, v < 5,  i, j < 28" in written  # the first convolution's own ranges
    assert "16·(6·5·5) + 16 = 2,416" in written and "120·400 + 120 = 48,120" in written
    assert "y[c, i, j] = max_(u, v) x[c, 2·i + u, 2·j + v],   u, v < 2,  i, j < 14" in written


# ----- background and examples -------------------------------------------------------------
def test_background_decides_what_is_defined_first():
    none = text(lesson(minutes=5, background="none"))
    some = text(lesson(minutes=15, background="some-ml"))
    expert = text(lesson(minutes=15, background="practitioner"))
    definitions = ("A neuron takes some numbers", "A weight is just a number", "Training means finding good weights")
    assert all(d in none for d in definitions)
    assert not any(d in some or d in expert for d in definitions)
    assert none.index("A neuron") < none.index("How it sees an image")
    assert "You know neurons and gradient descent" in some and "3,687,936" in some
    assert "A word on notation" in expert


def test_examples_none_brief_full():
    for kind, count in (("none", 0), ("brief", 6), ("full", 6)):
        page = to_markdown(lesson(minutes=30, examples=kind))
        names = "Classification|Detection|Segmentation|Face recognition|Style transfer|Regression"
        found = re.findall(rf"\*\*({names})\*\*", page)
        assert len(found) == count, kind
    full = to_markdown(lesson(minutes=30, examples="full"))
    assert "--model unet --data digit-masks" in full and "--model locator --data digit-centres" in full
    assert "--model detector --data digit-scenes" in full and "being added" not in full
    brief = to_markdown(lesson(minutes=30, examples="brief"))
    assert "digit-masks" not in brief


# ----- tone -----------------------------------------------------------------------------
def sentences(prose):
    return [s for s in re.split(r"(?<=[.!?:;])\s+", prose) if len(s.split()) > 1]


def measures(a_lesson):
    """Mean sentence length, second-person words per 100 words, symbols per 100 words (prose only)."""
    pieces = [plain(p[1]) for b in a_lesson.blocks for p in b.chosen if p[0] == "p"]
    prose = " ".join(pieces)
    words = prose.split()
    you = sum(w.lower().strip(".,:;?!()") in ("you", "your", "you'll", "you've") for w in words)
    symbols = sum(prose.count(c) for c in "→×∑=≈⇒≠±√·∂")
    return (np.mean([len(s.split()) for s in sentences(prose)]), 100 * you / len(words), 100 * symbols / len(words))


def test_tones_differ_measurably_with_the_same_facts():
    made = {tone: lesson(minutes=120, tone=tone, depth=DEPTHS, examples="full", image=IMAGE, metrics=METRICS)
            for tone in TONES}
    kept = {tone: [b.key for b in made[tone].blocks] for tone in TONES}
    assert kept["conversational"] == kept["academic"] == kept["technical"]
    for key in kept["academic"]:
        facts = [Counter(f for p in next(b for b in made[t].blocks if b.key == key).chosen
                         for part in (p[1] if isinstance(p[1], list) else [p[1]])
                         for f in (facts_in(part) if isinstance(part, str) else
                                   [x for cell in part for x in facts_in(cell)])) for t in TONES]
        assert set(facts[0]) == set(facts[1]) == set(facts[2]), key
    length, you, symbols = zip(*(measures(made[t]) for t in TONES))  # conversational, academic, technical
    assert length[1] > 1.3 * length[0] and length[0] > length[2]
    assert you[0] > 2 and you[1] == 0 and you[2] == 0
    assert symbols[2] > 2 * symbols[0] and symbols[2] > 2 * symbols[1]


# ----- pictures -------------------------------------------------------------------------
def test_html_has_the_models_own_pictures_and_markdown_none():
    with_image = lesson(minutes=30, image=IMAGE, metrics=METRICS)
    page = LessonPage(lesson_html(with_image, MODEL, METRICS))
    assert page.figures == ["input", "filters:0", "features:1", "pooling", "curve", "prediction"]
    html_text = lesson_html(with_image, MODEL, METRICS)
    assert html_text.count("data:image/png;base64,") == 6
    assert "data:image" not in to_markdown(with_image) and "<img" not in to_markdown(with_image)
    without = LessonPage(lesson_html(lesson(minutes=30), MODEL))
    assert without.figures == ["filters:0"]  # no image, no run: only what the weights alone show


# ----- fitting --------------------------------------------------------------------------
def block(key, priority, words, brief=None, required=False):
    return Block("intro", key, priority, [("p", "w " * words)], [("p", "w " * brief)] if brief else None,
                 required=required)


def test_fit_condenses_then_drops_in_order_of_priority():
    blocks = [block("a", 0, 50, 10, required=True), block("b", 1, 40, 10), block("c", 5, 40), block("d", 8, 30)]
    assert [(b.key, b.words) for b in fit(blocks, 200)] == [("a", 50), ("b", 40), ("c", 40), ("d", 30)]
    assert [(b.key, b.words) for b in fit(blocks, 130)] == [("a", 50), ("b", 40), ("c", 40)]
    assert [(b.key, b.words) for b in fit(blocks, 100)] == [("a", 50), ("b", 40)]
    assert [(b.key, b.words) for b in fit(blocks, 60)] == [("a", 50), ("b", 10)]
    assert [(b.key, b.words) for b in fit(blocks, 5)] == [("a", 10)]  # required: kept, condensed


# ----- command line ---------------------------------------------------------------------
def test_cli_writes_markdown_and_html(tmp_path, capsys):
    md, page = tmp_path / "l.md", tmp_path / "l.html"
    assert main(["lesson", "lenet5", "--minutes", "3", "--aspects", "processing,predictions", "--depth",
                 "conceptual,math", "--tone", "academic", "--out", str(md)]) == 0
    written = md.read_text()
    assert "## Processing an image" in written and "## Making a prediction" in written
    assert "## Learning" not in written
    out = capsys.readouterr().out
    assert str(md) in out and re.search(r"\d+ words: about \d\.\d minutes at 200 words a minute", out)
    assert main(["lesson", "lenet5", "--minutes", "2", "--out", str(page)]) == 0
    assert page.read_text().startswith("<!DOCTYPE html>") and "data:image/png" in page.read_text()


@pytest.mark.parametrize("argv, message", [
    (["--aspects", "colour"], "aspects must be a non-empty list from structure, processing, learning, predictions"),
    (["--out", "lesson.pdf"], "--out must end in .html or .md, got lesson.pdf"),
    (["--minutes", "500"], "minutes must be between 1 and 120, got 500"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(["lesson", "lenet5"] + argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
