"""Digits as people photograph and scan them: printed digits on real-world backgrounds.

A model trained on MNIST sees white, centred, thick strokes on black. A user's image is a
phone photo or a scan: dark ink on grey paper, uneven light, noise, a shadow, a tilted
sheet with white corners, a transparent PNG, a JPEG stored sideways with an EXIF
orientation tag, a 16-bit PNG. :func:`write_photo` makes each of these from a digit drawn
in a font, so that the preparation of ``convscope predict`` can be tested and measured
(``benchmarks/predict_photos.py``) without anyone's private pictures.

>>> import numpy as np
>>> image, options = photo(7, "noise", np.random.default_rng(0))
>>> image.mode, image.size, options
('L', (320, 240), {})
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..files import write_atomic
from .preprocess import EXIF_ORIENTATION  # the tag the reader honours; 6 = "turn 90 degrees clockwise"

KINDS = ("clean", "grey_gradient", "noise", "shadow", "rotated_sheet", "transparent", "exif_rotated",
         "sixteen_bit")


def font_paths() -> list[str]:
    """TrueType fonts that ship with matplotlib (DejaVu Sans/Serif/Mono, in their weights),
    found on disk without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        raise ValueError("photo digits are drawn with the DejaVu fonts that come with matplotlib; install it")
    folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    return sorted(str(p) for p in folder.glob("DejaVu*.ttf") if "Display" not in p.name)


def digit_ink(digit: int, font: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in [0, 1], (H, W): ``digit`` in ``font``, 45-70% of the height, placed
    near the middle."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = size
    points = int(height * rng.uniform(0.45, 0.7))
    face = ImageFont.truetype(font, points)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=face)
    x = (width - (right - left)) / 2 - left + rng.uniform(-0.15, 0.15) * width
    y = (height - (bottom - top)) / 2 - top + rng.uniform(-0.1, 0.1) * height
    draw.text((x, y), str(digit), fill=255, font=face)
    return np.asarray(canvas, dtype=np.float64) / 255


def photo(digit: int, kind: str, rng: np.random.Generator, font: str | None = None,
          size: tuple[int, int] = (240, 320)) -> tuple[object, dict]:
    """(PIL image, extra ``save`` options) of ``digit`` photographed as ``kind`` (see KINDS)."""
    from PIL import Image

    if kind not in KINDS:
        raise ValueError(f"photo kind must be one of {', '.join(KINDS)}, got {kind!r}")
    font = font or font_paths()[0]
    ink = digit_ink(digit, font, size, rng)
    paper, pen = rng.uniform(185, 235), rng.uniform(10, 60)
    light = np.ones(size)
    if kind == "grey_gradient":  # light falling off across the page
        ramp = np.linspace(rng.uniform(0.45, 0.6), 1.0, size[1])
        light = ramp[None, :] if rng.random() < 0.5 else ramp[None, ::-1]
    if kind == "shadow":  # a hand or phone over part of the page
        edge = rng.uniform(0.3, 0.7) * size[1]
        light = 1 - 0.5 / (1 + np.exp(-(np.arange(size[1]) - edge) / 8))[None, :]
    grey = (paper * (1 - ink) + pen * ink) * light
    if kind == "noise":
        grey = grey + rng.normal(0, 18, size)
        specks = rng.random(size)
        grey[specks < 0.01], grey[specks > 0.99] = 0, 255
    image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    if kind == "rotated_sheet":  # a tilted scan: the corners outside the sheet are white
        image = image.rotate(rng.uniform(10, 25) * rng.choice([-1, 1]), resample=Image.BILINEAR,
                             expand=True, fillcolor=255)
    if kind == "transparent":  # a drawing app's export: colour only where there is ink
        rgba = np.zeros(size + (4,), np.uint8)
        rgba[..., :3] = 20
        rgba[..., 3] = np.round(ink * 255).astype(np.uint8)
        return Image.fromarray(rgba, "RGBA"), {}
    if kind == "exif_rotated":  # stored sideways; the EXIF tag says how to show it
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = 6
        return image.transpose(Image.Transpose.ROTATE_90), {"exif": exif}
    if kind == "sixteen_bit":
        return Image.fromarray(np.asarray(image, np.uint16) * 257), {}
    return image, {}


def write_photo(path: str | os.PathLike, digit: int, kind: str, rng: np.random.Generator,
                font: str | None = None) -> Path:
    """Save :func:`photo` to ``path`` (``.jpg`` for the EXIF case, else PNG); returns the Path."""
    image, options = photo(digit, kind, rng, font)
    path = Path(path).with_suffix(".jpg" if kind == "exif_rotated" else ".png")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if path.suffix == ".jpg" else "PNG", **options)
    return write_atomic(path, buffer.getvalue())  # atomically, replacing (never following) a link
