"""Readers for the file formats image datasets ship in.

Each reader checks what it reads (magic numbers, counts, sizes) and fails with a
ValueError that names the file, says what it expected and what it found. A truncated
download or a file of another format never turns into a silently wrong array.

    IDX       MNIST, Fashion-MNIST, EMNIST, KMNIST; raw or gzip-compressed
    CIFAR-10  the "binary version" batches: records of 1 label byte + 3072 pixel bytes
    folder    one subfolder of PNG / JPEG images per class
    .npz      a NumPy archive with arrays (x, y) or (images, labels); never unpickled
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .bounded import NpzArchive, check_bytes, open_regular, read_exactly
from .dataset import validate_arrays
from .images import eight_bit, is_sixteen_bit, open_image

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code (third byte of the file) -> NumPy dtype of one element, big-endian.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then R, G and B planes of 32x32

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed, into an array.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, each dimension as a big-endian
    uint32, then the values, big-endian, in C order. The payload must be exactly
    product(dims) * itemsize bytes: shorter means truncated, longer means trailing bytes.
    The magic bytes decide whether it is gzip, not the extension. The header is read first
    and its size checked (against MAX_ARRAY_BYTES, and against the file for a raw file);
    then only that many bytes are decompressed.

    Shape:
        an image file (N, H, W), a label file (N,); dtype as the type code says, native order.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> read_idx(path)
        array([7, 2, 1], dtype=uint8)
    """
    with open_regular(path, "an IDX file") as raw:
        size = os.fstat(raw.fileno()).st_size
        if raw.read(2) != GZIP_MAGIC:
            raw.seek(0)
            return _read_idx_stream(path, raw, size)
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw) as stream:
                return _read_idx_stream(path, stream, None)
        except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"{path}: starts like a gzip file but cannot be decompressed ({err}); "
                             f"the file is probably truncated or corrupt") from None


def _read_idx_stream(path, stream, size: int | None) -> np.ndarray:
    """The IDX array in ``stream``; ``size``: the file's length when it is not compressed."""
    head = stream.read(4)
    if len(head) < 4 or head[:2] != b"\0\0":
        raise ValueError(f"{path}: not an IDX file: expected it to start with bytes 00 00, "
                         f"got {head.hex(' ') or 'an empty file'}")
    type_code, ndim = head[2], head[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{type_code:02X}, expected one of {known}")
    header_bytes = 4 + 4 * ndim
    dims_bytes = stream.read(4 * ndim)
    if ndim == 0 or len(dims_bytes) < 4 * ndim:
        raise ValueError(f"{path}: IDX header truncated: {ndim} dimensions need a "
                         f"{header_bytes}-byte header, got {4 + len(dims_bytes)} bytes in all")
    dims = struct.unpack(f">{ndim}I", dims_bytes)
    dtype = np.dtype(IDX_DTYPES[type_code])
    expected = math.prod(dims) * dtype.itemsize
    check_bytes(path, f"its IDX header (shape {dims} of {dtype.name})", expected)
    if size is not None and size - header_bytes != expected:
        _idx_size_error(path, dims, dtype, expected, size - header_bytes)
    data = read_exactly(stream, expected)
    if len(data) < expected or stream.read(1):
        _idx_size_error(path, dims, dtype, expected, len(data) + (len(data) == expected))
    values = np.frombuffer(data, dtype=dtype).reshape(dims)
    return values.astype(dtype.newbyteorder("="), copy=False)  # native byte order, writable


def _idx_size_error(path, dims, dtype, expected, got):
    problem = "is truncated" if got < expected else "has trailing bytes"
    raise ValueError(f"{path}: IDX file {problem}: header says shape {dims} of {dtype.name}, "
                     f"expected {expected} payload bytes, got {got}{'' if got < expected else ' or more'}")


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch (data_batch_1.bin ... test_batch.bin).

    Each record is 3073 bytes: the label (0..9), then 1024 red, 1024 green and 1024 blue
    pixel values, each plane row by row. A standard batch holds 10000 records; any whole
    number of records is accepted, a partial record is not.

    Shape:
        images (N, 3, 32, 32) uint8, labels (N,) int64.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "batch.bin"
        >>> _ = path.write_bytes(bytes([3]) + bytes(3072))
        >>> images, labels = read_cifar10_batch(path)
        >>> images.shape, labels
        ((1, 3, 32, 32), array([3]))
    """
    path = Path(path)
    with open_regular(path, "a CIFAR-10 batch file") as f:
        size = os.fstat(f.fileno()).st_size  # checked before anything is read
        if size == 0 or size % CIFAR10_RECORD_BYTES:
            raise ValueError(
                f"{path}: expected a whole number of {CIFAR10_RECORD_BYTES}-byte CIFAR-10 records "
                f"(1 label byte + 3072 pixel bytes; a standard batch is 10000 records = "
                f"{10000 * CIFAR10_RECORD_BYTES} bytes), got {size} bytes "
                f"({size / CIFAR10_RECORD_BYTES:.3f} records)")
        check_bytes(path, "the file", size)
        data = read_exactly(f, size)
    if len(data) != size:
        raise ValueError(f"{path}: shrank while being read ({size} bytes, then {len(data)})")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise ValueError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, expected 0..9 "
                         f"({bad.size} records out of range; not a CIFAR-10 batch?)")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def read_image_folder(root: str | os.PathLike, size: tuple[int, int] = (28, 28),
                      mode: str = "L") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a folder with one subfolder of images per class.

    Class names are the subfolder names in sorted order; a class's label is its position
    in that order. Images (.png, .jpg, .jpeg, read with Pillow, in sorted file-name order)
    are converted to grayscale ("L") or colour ("RGB") and resized to `size` (bilinear).

    Args:
        root: the folder, e.g. root/cat/001.png, root/dog/002.jpg.
        size: (H, W) every image is resized to. Default (28, 28).
        mode: "L" for 1 channel or "RGB" for 3. Default "L".

    Shape:
        images (N, C, H, W) uint8 with C = 1 for "L" and 3 for "RGB"; labels (N,) int64.

    Returns:
        (images, labels, class_names).
    """
    root = Path(root)
    size = _check_size(size)
    if mode not in ("L", "RGB"):
        raise ValueError(f"read_image_folder: expected mode 'L' or 'RGB', got {mode!r}")
    if not root.is_dir():
        raise ValueError(f"{root}: expected a folder with one subfolder per class, "
                         f"got {'a file' if root.exists() else 'nothing (it does not exist)'}")
    class_dirs = class_folders(root)
    if not class_dirs:
        raise ValueError(f"{root}: expected one subfolder per class (e.g. {root}/cat/1.png), "
                         f"found no subfolders")
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = image_files(class_dir)
        if not files:
            raise ValueError(f"{class_dir}: class folder holds no {'/'.join(IMAGE_SUFFIXES)} images")
        images += [_read_image(file, size, mode) for file in files]
        labels += [label] * len(files)
    return np.stack(images), np.array(labels, dtype=np.int64), [p.name for p in class_dirs]


def class_folders(root: Path) -> list[Path]:
    """The class subfolders of an image folder, in label order (hidden ones left out)."""
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))


def image_files(folder: Path) -> list[Path]:
    """A class folder's image files, in file-name order."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _check_size(size) -> tuple[int, int]:
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and s > 0 for s in size)):
        raise ValueError(f"read_image_folder: expected size=(H, W) of two positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _read_image(path: Path, size: tuple[int, int], mode: str) -> np.ndarray:
    """One image file -> (C, H, W) uint8; a 16-bit image is scaled to 0..255, not clipped."""
    from PIL import Image  # imported here: only this reader needs Pillow

    image = open_image(path)
    if is_sixteen_bit(image):
        image = Image.fromarray(np.rint(eight_bit(image)).astype(np.uint8))
    image = image.convert(mode).resize((size[1], size[0]), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if mode == "L" else pixels.transpose(2, 0, 1)


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read images and labels from a NumPy .npz archive, without ever unpickling.

    The archive must hold arrays named ("x", "y") or ("images", "labels"); other arrays
    are ignored. Images must be uint8, (N, C, H, W) or (N, H, W) (a channel axis is added);
    labels a 1-D integer array with one entry per image, each 0..MAX_CLASSES-1. Arrays of
    Python objects are refused: loading them would run pickle. Sizes are checked before
    anything is decompressed (:class:`~convscope.data.bounded.NpzArchive`).

    Shape:
        images (N, C, H, W) uint8, labels (N,) int64.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.npz"
        >>> np.savez(path, x=np.zeros((2, 8, 8), np.uint8), y=np.array([0, 1]))
        >>> [a.shape for a in read_npz(path)]
        [(2, 1, 8, 8), (2,)]
    """
    path = Path(path)
    with NpzArchive(path) as archive:
        image_key, label_key = _npz_keys(path, archive.names)
        images = archive.array(image_key)
        labels = archive.array(label_key)
    images, labels = validate_arrays(images, labels, str(path))
    if images.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 images (0..255), got dtype {images.dtype}; "
                         f"convert with (x * 255).round().astype(np.uint8)")
    return images, labels


def _npz_keys(path: Path, keys: list[str]) -> tuple[str, str]:
    for pair in (("x", "y"), ("images", "labels")):
        if set(pair) <= set(keys):
            return pair
    raise ValueError(f"{path}: expected arrays named ('x', 'y') or ('images', 'labels'), got {keys}")
