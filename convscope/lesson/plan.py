"""What a lesson holds, in which order, and how it fits the minutes asked for.

A request names the minutes, the reader's background, the aspects, the depths, the examples
and the tone. The lesson is written as :class:`Block` s, each in one section, each with a
priority (0 = most important), a full text and, for most, a condensed one.

**Length.** The budget is ``minutes * WORDS_PER_MINUTE`` words (200 a minute, a common figure
for reading technical text). Words are the whitespace-separated tokens of everything written:
paragraphs, lists, tables and equations (picture captions are not counted). :func:`fit` goes
through the blocks in order of priority and takes each one's full text if it still fits the
budget, else its condensed text if that fits, else leaves it out; a *required* block (the
introduction, and the first block of every selected aspect at every selected depth, so each
of them keeps its section) is always taken, condensed if need be. So the order of priority,
most kept first, is:

====  ==========================================================================
0     the introduction
1     each selected aspect's plain-language account (conceptual depth); for a
      reader with no background, the primer (what a neuron, a weight, training are)
2     each selected aspect's technical account (shapes, parameters)
3     each selected aspect's equations (math depth)
4     the primer for a reader with some machine learning
5     the examples (real-world uses); then (5.5-5.7) the worked examples with the
      traced image's numbers: one convolution output, one pooling window, the
      softmax of the scores, the winning score's sum, the loss
6     the layer-by-layer details, earlier layers first, and the further material
      (the stack in one list, why depth, the design in numbers, memory, the cost
      of each layer, ReLU's zeros, other paddings and strides, the weights, the
      run's settings, course and schedule, the backward pass layer by layer)
7     "what to remember"
8     "check yourself": questions answered with this model's numbers
====  ==========================================================================

Blocks of equal priority are taken in the order they were written. When the selection has
less to say than the minutes ask for, or its required blocks alone are longer, the lesson
says so in ``Lesson.notes``.

>>> fit([Block("intro", "a", 0, [("p", "one two three")], required=True)], 10)[0].words
3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .facts import plain
from .writing import TONES

WORDS_PER_MINUTE = 200
ASPECTS = ("structure", "processing", "learning", "predictions")
DEPTHS = ("conceptual", "technical", "math")
BACKGROUNDS = ("none", "some-ml", "practitioner")
EXAMPLES = ("none", "brief", "full")
SECTIONS = ("intro", "background") + ASPECTS + ("examples", "close")
MINUTES = (1, 120)  # the range accepted


@dataclass(frozen=True)
class Request:
    """What the reader asked for; :meth:`checked` says what is wrong with a bad one."""

    minutes: float = 10
    background: str = "some-ml"
    aspects: tuple[str, ...] = ASPECTS
    depth: tuple[str, ...] = ("conceptual", "technical")
    examples: str = "brief"
    tone: str = "conversational"

    def checked(self) -> Request:
        """The request with aspects and depths in their canonical order; ValueError if any value is unknown."""
        for name, value, allowed in (("background", self.background, BACKGROUNDS),
                                     ("examples", self.examples, EXAMPLES), ("tone", self.tone, TONES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        for name, values, allowed in (("aspects", self.aspects, ASPECTS), ("depth", self.depth, DEPTHS)):
            unknown = [v for v in values if v not in allowed]
            if unknown or not values:
                raise ValueError(f"{name} must be a non-empty list from {', '.join(allowed)}, got "
                                 f"{','.join(values) or 'nothing'}")
        if not MINUTES[0] <= self.minutes <= MINUTES[1]:
            raise ValueError(f"minutes must be between {MINUTES[0]} and {MINUTES[1]}, got {self.minutes:g}")
        return replace(self, aspects=tuple(a for a in ASPECTS if a in self.aspects),
                       depth=tuple(d for d in DEPTHS if d in self.depth))

    @property
    def words(self) -> int:
        """The budget: minutes at WORDS_PER_MINUTE."""
        return round(self.minutes * WORDS_PER_MINUTE)


Piece = tuple  # ("p", text) | ("pre", text) | ("ul", [texts]) | ("h3", text) | ("table", [header, *rows])


def piece_words(piece: Piece) -> int:
    """Words in one piece: tokens of its text (a list's items, a table's cells)."""
    kind, body = piece
    if kind in ("ul", "table"):
        cells = [c for item in body for c in (item if isinstance(item, (list, tuple)) else [item])]
        return sum(len(plain(c).split()) for c in cells)
    return len(plain(body).split())


@dataclass
class Block:
    """One unit of a lesson: a ``section``, a unique ``key``, a ``priority`` (0 most
    important), the ``full`` pieces, optional ``brief`` ones, the ``pictures`` it wants
    shown after it (names a picture maker understands: "filters:0", "features:1", "pooling",
    "curve", "prediction", "boxes"), and whether it is ``required``."""

    section: str
    key: str
    priority: int
    full: list[Piece]
    brief: list[Piece] | None = None
    pictures: tuple[str, ...] = ()
    required: bool = False
    chosen: list[Piece] = field(default_factory=list)

    @property
    def words(self) -> int:
        return sum(piece_words(p) for p in (self.chosen or self.full))


def words_of(pieces: Sequence[Piece] | None) -> int:
    return sum(piece_words(p) for p in pieces) if pieces else 0


def fit(blocks: Sequence[Block], budget: int) -> list[Block]:
    """The blocks kept for ``budget`` words, in their written order, each with ``chosen`` set
    (see the module's docstring for the rule)."""
    order = sorted(range(len(blocks)), key=lambda i: blocks[i].priority)
    kept, used = {}, sum(min(words_of(b.full), words_of(b.brief) or words_of(b.full))
                         for b in blocks if b.required)
    for i in order:
        b = blocks[i]
        full, brief = words_of(b.full), words_of(b.brief)
        floor = min(full, brief or full) if b.required else 0
        if used - floor + full <= budget:
            kept[i], used = b.full, used - floor + full
        elif b.brief and used - floor + brief <= budget:
            kept[i], used = b.brief, used - floor + brief
        elif b.required:
            kept[i] = b.brief if b.brief and brief < full else b.full
    return [replace(blocks[i], chosen=list(kept[i])) for i in range(len(blocks)) if i in kept]


@dataclass
class Lesson:
    """A written lesson: its title, the request, the kept blocks (in document order) with
    their section headings, notes for the reader (e.g. the selection was short), the
    trace of its image (None without one) and, for a detector, what it found there."""

    title: str
    request: Request
    blocks: list[Block]
    headings: dict[str, str]
    notes: list[str] = field(default_factory=list)
    trace: object = None  # the convscope.trace.Trace of the lesson's image, if it has one
    found: dict | None = None  # a detector's boxes, scores and labels for that image

    @property
    def words(self) -> int:
        """Words of the lesson's text, headings and notes included."""
        heads = sum(len(plain(self.headings[s]).split()) for s in self.sections())
        return sum(b.words for b in self.blocks) + heads + len(plain(self.title).split())

    def sections(self) -> list[str]:
        """The sections that hold at least one kept block, in document order."""
        present = {b.section for b in self.blocks}
        return [s for s in SECTIONS if s in present]

    def pictures(self) -> list[str]:
        """Every picture the kept blocks ask for, in order, once each."""
        return list(dict.fromkeys(p for b in self.blocks for p in b.pictures))
