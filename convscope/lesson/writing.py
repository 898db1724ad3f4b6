"""The tone of a lesson: the same facts in three registers.

* ``conversational``: second person, short sentences ("You slide 6 filters over the image.");
* ``academic``: a textbook's register, third person, longer sentences joined by reasons;
* ``technical``: terse, with symbols (→, ×, ∑, =) in place of words.

Every sentence of a lesson is written three times, once per tone, with the same marked
numbers in each (a test checks that the three carry the same facts); :class:`Voice` picks
the one of the lesson's tone.

>>> Voice("technical")("You get maps.", "Maps are produced.", "→ maps")
'→ maps'
"""

from __future__ import annotations

from collections.abc import Sequence

TONES = ("conversational", "academic", "technical")


class Voice:
    """Picks one of three phrasings by the lesson's ``tone``."""

    def __init__(self, tone: str) -> None:
        if tone not in TONES:
            raise ValueError(f"tone must be one of {', '.join(TONES)}, got {tone!r}")
        self.tone = tone

    def __call__(self, conversational: str, academic: str, technical: str) -> str:
        return {"conversational": conversational, "academic": academic, "technical": technical}[self.tone]

    def join(self, items: Sequence[str]) -> str:
        """``a, b and c`` (``a, b, c`` in the technical tone)."""
        items = list(items)
        if len(items) < 2 or self.tone == "technical":
            return ", ".join(items)
        return ", ".join(items[:-1]) + " and " + items[-1]


def plural(count: int, one: str, many: str | None = None) -> str:
    """``one`` for a count of 1, else ``many`` (default ``one + "s"``); the count itself is not written.

    >>> plural(2, "filter"), plural(1, "map")
    ('filters', 'map')
    """
    return one if count == 1 else (many or one + "s")


ROLE_WORDS = {"conv": "convolution", "pool": "pooling", "activation": "activation", "linear": "fully connected",
              "flatten": "flatten", "normalization": "batch normalisation", "dropout": "dropout",
              "conv_transpose": "transposed convolution", "upsample": "upsampling",
              "adaptive_pool": "adaptive pooling"}


def role_word(role: str | None, kind: str) -> str:
    """A layer's kind in words: ``convolution`` for a Conv2d; its class name when there is no word."""
    return ROLE_WORDS.get(role, kind)
