"""Decoding one image file with Pillow, bounded and with one kind of error.

:func:`open_image` opens a regular file only (a FIFO named ``x.png`` is refused, not waited
on), reads the size from the header and refuses more than MAX_IMAGE_PIXELS before decoding,
and turns whatever Pillow raises on a damaged file (an OSError, a SyntaxError for a broken
PNG chunk, DecompressionBombError, a zlib or struct error) into a ValueError naming the file.
:func:`eight_bit` scales a 16-bit image to 0..255 (65535 -> 255) instead of clipping it.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np

from .bounded import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, check_bytes, open_regular, read_exactly

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I;16S")


def open_image(source: str | os.PathLike | bytes, name: object = None):
    """A decoded (loaded) PIL image from a file path or the bytes of a file.

    ``name`` names the image in errors (default: the path, or "the image" for bytes).

    Example:
        >>> open_image(b"not an image")
        Traceback (most recent call last):
        ...
        ValueError: the image: not a readable image (UnidentifiedImageError: ...)
    """
    from PIL import Image

    name = name or (source if not isinstance(source, bytes) else "the image")
    stream = io.BytesIO(source if isinstance(source, bytes) else _file_bytes(source))
    try:
        with stream, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in one line
            with Image.open(stream) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ValueError(f"{name}: is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS:,} pixels "
                                     f"(4096x4096) are read")
                image.load()
                return image
    except ValueError as error:
        if str(error).startswith(str(name)):
            raise
        raise ValueError(f"{name}: not a readable image ({type(error).__name__}: {error})") from None
    except MemoryError:
        raise  # not a damaged file: a limit above is missing (the fuzz suite looks for this)
    except Exception as error:  # noqa: BLE001 - Pillow's decoders raise many kinds on damaged data
        if isinstance(error, Image.DecompressionBombError):
            raise ValueError(f"{name}: too large to open safely ({error})") from None
        raise ValueError(f"{name}: not a readable image ({type(error).__name__}: {error})") from None


def _file_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an image file, at most MAX_IMAGE_BYTES. Pillow reads from memory: a chunk
    declaring 2 GB then costs what the file holds (a file's read(n) reserves n bytes first)."""
    with open_regular(path, "an image file") as f:
        size = os.fstat(f.fileno()).st_size
        check_bytes(path, "the image file", size, MAX_IMAGE_BYTES)
        return bytes(read_exactly(f, size))


def is_sixteen_bit(image) -> bool:
    """Whether a PIL image holds 16-bit (or wider integer) grey values."""
    return image.mode in SIXTEEN_BIT or image.mode == "I"


def eight_bit(image) -> np.ndarray:
    """(H, W) float64 in [0, 255] from a 16-bit grey PIL image: scaled by 255/65535, not clipped.

    A 32-bit "I" image whose values all fit in 0..255 is taken as already 8-bit.

    Example:
        >>> from PIL import Image
        >>> eight_bit(Image.fromarray(np.array([[0, 65535]], np.uint16))).tolist()
        [[0.0, 255.0]]
    """
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "I" and values.size and 0 <= values.min() and values.max() <= 255:
        return values
    return np.clip(values * (255.0 / 65535), 0, 255)
