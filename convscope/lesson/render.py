"""A :class:`~convscope.lesson.plan.Lesson` as Markdown or as one HTML page.

Markdown shows the text only. HTML wraps every section in ``<section data-section="...">``,
every number in ``<span class="fact" data-kind=".." data-layer=".." data-value="..">``
(see :mod:`convscope.lesson.facts`), and places after each block the pictures it asked for,
when given: ``pictures`` maps a picture's name to ``(image source, caption)`` (a data URI
made by :mod:`convscope.viz.lesson`; this module draws nothing).

>>> from convscope.lesson.plan import Block, Lesson, Request
>>> from convscope.lesson.facts import mark
>>> lesson = Lesson("T", Request(), [Block("intro", "i", 0, [("p", "maps " + mark("out", "0", "6x28x28"))])],
...                 {"intro": "Intro"})
>>> to_markdown(lesson).splitlines()[-1]
'maps 6x28x28'
>>> 'data-value="6x28x28"' in to_html(lesson)
True
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from .facts import MARK, plain
from .plan import Lesson, Piece

STYLE = """body{font-family:Georgia,serif;max-width:46em;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1,h2,h3{font-family:sans-serif}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
figure{margin:1em 0;text-align:center}figure img{max-width:100%;image-rendering:pixelated}
figcaption{font-size:.85em;color:#555}.note{color:#a33}.meta{color:#666;font-size:.9em}"""


# ----- Markdown -----------------------------------------------------------------------
def md_piece(piece: Piece) -> str:
    kind, body = piece
    if kind == "pre":
        return f"```\n{plain(body)}\n```"
    if kind == "ul":
        return "\n".join(f"- {plain(item)}" for item in body)
    if kind == "h3":
        return f"### {plain(body)}"
    if kind == "table":
        header, *rows = [[plain(c).replace("|", "\\|") for c in row] for row in body]
        lines = [header, ["---"] * len(header)] + rows
        return "\n".join("| " + " | ".join(row) + " |" for row in lines)
    return plain(body)


def to_markdown(lesson: Lesson) -> str:
    """The lesson as Markdown, without pictures."""
    parts = [f"# {plain(lesson.title)}"] + [f"> {note}" for note in lesson.notes]
    for section in lesson.sections():
        parts.append(f"## {lesson.headings[section]}")
        parts += [md_piece(p) for b in lesson.blocks if b.section == section for p in (b.chosen or b.full)]
    return "\n\n".join(parts) + "\n"


# ----- HTML ---------------------------------------------------------------------------
def _span(match: re.Match) -> str:
    kind, layer, value, shown = match.groups()
    return (f'<span class="fact" data-kind="{kind}" data-layer="{layer}" data-value="{value}">{shown}</span>')


def inline(text: str) -> str:
    """Escaped text with its marks as spans, `code`, **bold** and *emphasis*."""
    out = MARK.sub(_span, html.escape(text, quote=False))
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<em>\1</em>", out)


def html_piece(piece: Piece) -> str:
    kind, body = piece
    if kind == "pre":
        return f"<pre>{MARK.sub(_span, html.escape(body, quote=False))}</pre>"
    if kind == "ul":
        return "<ul>" + "".join(f"<li>{inline(item)}</li>" for item in body) + "</ul>"
    if kind == "h3":
        return f"<h3>{inline(body)}</h3>"
    if kind == "table":
        header, *rows = body
        head = "".join(f"<th>{inline(c)}</th>" for c in header)
        cells = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{cells}</table>"
    return f"<p>{inline(body)}</p>"


def figure(name: str, source: str, caption: str) -> str:
    return (f'<figure data-picture="{html.escape(name)}"><img src="{source}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def to_html(lesson: Lesson, pictures: Mapping[str, tuple[str, str]] | None = None) -> str:
    """The lesson as one HTML page; each block's pictures follow it where ``pictures`` has them
    (each picture once, after the first block that asks for it)."""
    pictures, shown, body = dict(pictures or {}), set(), []
    for section in lesson.sections():
        inner = []
        for b in (b for b in lesson.blocks if b.section == section):
            pieces = "".join(html_piece(p) for p in (b.chosen or b.full))
            inner.append(f'<div class="block" data-key="{b.key}">{pieces}')
            for name in b.pictures:
                if name in pictures and name not in shown:
                    shown.add(name)
                    inner.append(figure(name, *pictures[name]))
            inner.append("</div>")
        body.append(f'<section data-section="{section}" id="{section}"><h2>{html.escape(lesson.headings[section])}'
                    f"</h2>{''.join(inner)}</section>")
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in lesson.notes)
    title = html.escape(plain(lesson.title))
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title><style>{STYLE}</style>"
            f"</head>\n<body><h1>{inline(lesson.title)}</h1>{notes}\n" + "\n".join(body) + "\n</body></html>\n")
