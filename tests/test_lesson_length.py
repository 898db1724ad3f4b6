"""A lesson's length follows the minutes asked for, at 200 words a minute, within 20%;
where the model has too little (or the selection too much) to say, the lesson says so."""

import itertools
import re

import numpy as np
import pytest

from convscope.lesson import ASPECTS, DEPTHS, WORDS_PER_MINUTE, Request, build_lesson, to_markdown
from convscope.models import lenet5

MODEL = lenet5(rng=np.random.default_rng(0))
IMAGE = np.random.default_rng(4).standard_normal((1, 1, 28, 28)).astype(np.float32)
METRICS = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.6 + 0.05 * e, "val_loss": 1.1 / e,
            "val_acc": 0.55 + 0.06 * e, "seconds": 3.0} for e in range(1, 6)]
CONFIG = {"optimizer": "sgd", "lr": 0.01, "batch_size": 64, "weight_decay": 0.0001, "schedule": "cosine"}
MARKUP = {"#", "##", "###", "|", "---", "-", "```", ">"}


def lesson(**options):
    return build_lesson(MODEL, (1, 28, 28), Request(**options), config=CONFIG, metrics=METRICS, image=IMAGE)


def markdown_words(text):
    """Words of the Markdown as a reader sees them: tokens, without the markup."""
    return len([t for t in re.sub(r"[*`]", "", text).split() if t not in MARKUP])


GRID = list(itertools.product((3, 4, 5), (ASPECTS, ("processing", "learning"), ("structure", "predictions")),
                              (("conceptual",), ("technical",), ("conceptual", "math"), DEPTHS),
                              ("conversational", "academic")))


@pytest.mark.parametrize("minutes, aspects, depth, tone", GRID,
                         ids=lambda v: "+".join(v) if isinstance(v, tuple) else str(v))
def test_length_is_within_20_percent(minutes, aspects, depth, tone):
    made = lesson(minutes=minutes, aspects=aspects, depth=depth, tone=tone)
    target = minutes * WORDS_PER_MINUTE
    counted = markdown_words(to_markdown(made))
    assert 0.8 * target <= counted <= 1.2 * target, (counted, target)
    assert abs(counted - made.words) <= 0.03 * target  # the lesson's own count agrees
    assert made.notes == []


@pytest.mark.parametrize("minutes", [2, 3])
def test_technical_tone_fits_too(minutes):
    made = lesson(minutes=minutes, tone="technical", depth=("technical", "math"))
    assert 0.8 <= markdown_words(to_markdown(made)) / (minutes * WORDS_PER_MINUTE) <= 1.2


def test_longer_requests_say_more():
    lengths = [lesson(minutes=m, depth=DEPTHS).words for m in (2, 4, 8, 14)]
    assert lengths == sorted(lengths) and lengths[-1] > 5 * lengths[0]


def test_too_little_to_say_is_said():
    made = lesson(minutes=30, aspects=("predictions",), depth=("conceptual",))
    assert made.words < 0.8 * 30 * WORDS_PER_MINUTE
    assert made.notes and "add aspects, depths or examples" in made.notes[0]
    assert re.search(rf"gives {made.words - 2}|gives {made.words - 1}|gives \d+ words", made.notes[0])
    assert made.notes[0] in to_markdown(made)


def test_too_much_for_the_minutes_is_said():
    made = lesson(minutes=1, depth=DEPTHS, examples="full")
    assert made.words > 1.2 * WORDS_PER_MINUTE and "choose fewer" in made.notes[0]
    assert {b.section for b in made.blocks} >= set(ASPECTS)  # still every aspect asked for
