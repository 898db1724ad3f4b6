"""Reading files that may be hostile: every size is checked before it is read or allocated.

A data file can claim anything: an IDX header a shape of 10^12 values, a 4 MB gzip file
8 GB of zeros, an .npz member a 10^12-element array, a FIFO a name ending in ".png".
The readers here refuse such files with a ValueError naming the file, saying what it
declared and what is accepted, before they read the payload or build an array:

    MAX_ARRAY_BYTES   2 GiB   one array from a file (EMNIST's largest image file is 0.55 GB)
    MAX_IMAGE_PIXELS  16.8 M  one image (4096 x 4096), checked from its header before decoding
    MAX_IMAGE_BYTES   256 MiB one image file (read whole before it is decoded)
    MAX_CLASSES       10,000  class labels 0..9999 (a label of 10^9 is a corrupt file, not
                              a billion classes to name)
    MAX_NPZ_MEMBERS   64      arrays in one .npz archive

Compressed data (a gzip stream, a zip member) is decompressed a bounded piece at a time, up
to the size its header declared, never "all of it first".
"""

from __future__ import annotations

import math
import os
import stat
import struct
import zipfile
import zlib
from typing import BinaryIO

import numpy as np

MAX_ARRAY_BYTES = 2 * 2**30
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_BYTES = 256 * 2**20
MAX_CLASSES = 10_000
MAX_NPZ_MEMBERS = 64
NPY_MAGIC = b"\x93NUMPY"
CHUNK_BYTES = 2**20  # how much is read (or inflated) at a time

# what the zip module raises on a damaged archive or member (zlib and struct errors are not OSErrors)
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, ValueError,
              NotImplementedError, RuntimeError)


class MissingFileError(FileNotFoundError, ValueError):
    """A file that is not there: a FileNotFoundError, and a ValueError like every other refusal."""

    def __str__(self) -> str:
        return str(self.args[0])


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((name for test, name in kinds if test(mode)), "of an unknown kind")


def open_regular(path: str | os.PathLike, expected: str = "a data file") -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file; refuse anything else at once.

    The file is opened without blocking, so a FIFO named ``x.png`` is refused instead of
    waiting forever for a writer. Raises ValueError naming the file and what it is.

    Example:
        >>> import tempfile
        >>> open_regular(tempfile.gettempdir())
        Traceback (most recent call last):
        ...
        ValueError: ...: not a regular file (a folder), expected a data file
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file, expected {expected}") from None
    except PermissionError:
        raise ValueError(f"{path}: permission denied") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot be opened ({error.strerror or error})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ValueError(f"{path}: not a regular file ({_kind(mode)}), expected {expected}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_bytes(path: object, what: str, nbytes: int, limit: int | None = None) -> None:
    """Refuse ``what`` of ``path`` when it declares more than ``limit`` bytes (default
    MAX_ARRAY_BYTES, read when called), before any of it is read."""
    limit = MAX_ARRAY_BYTES if limit is None else limit
    if nbytes > limit:
        raise ValueError(f"{path}: {what} declares {nbytes:,} bytes, more than the {limit:,} bytes "
                         f"convscope reads from one file (bounded to stop corrupt or hostile files)")


def read_exactly(stream: BinaryIO, nbytes: int) -> bytearray:
    """Up to ``nbytes`` from ``stream``, read in bounded pieces (shorter only at its end).

    Memory grows with what the stream really holds, not with what a header declared: a
    100-byte file claiming 2 GB costs 100 bytes."""
    buffer = bytearray()
    while len(buffer) < nbytes:
        piece = stream.read(min(CHUNK_BYTES, nbytes - len(buffer)))
        if not piece:
            break
        buffer += piece
    return buffer


def check_labels(labels: np.ndarray, source: object) -> np.ndarray:
    """Integer class labels (N,) as int64, each in 0..MAX_CLASSES-1; float labels are refused
    (never truncated) and uint64 values are checked before conversion (never wrapped).

    Example:
        >>> check_labels(np.array([2, 0], np.uint8), "labels")
        array([2, 0])
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{source}: expected labels as a 1-D integer array, got shape {labels.shape} "
                         f"dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= MAX_CLASSES):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(f"{source}: expected class labels 0..{MAX_CLASSES - 1}, got {int(bad)} "
                         "(a corrupt label file, or not labels at all)")
    return labels.astype(np.int64)


class NpzArchive:
    """A NumPy .npz archive opened for bounded reading, never unpickling.

    ``names`` lists its arrays; ``array(name)`` reads one after checking its member: stored
    or deflated (as ``numpy.savez`` writes), not encrypted, its .npy header well formed, the
    declared shape within MAX_ARRAY_BYTES and equal to the bytes the member holds, and no
    Python objects in it. Every problem is a ValueError naming the file and the array.

    Example:
        >>> import io
        >>> buffer = io.BytesIO(); np.savez(buffer, x=np.arange(3))
        >>> with NpzArchive(buffer) as archive:
        ...     archive.names, archive.array("x")
        (['x'], array([0, 1, 2]))
    """

    def __init__(self, path: str | os.PathLike | BinaryIO) -> None:
        self.path = path if isinstance(path, (str, os.PathLike)) else "the archive"
        self._file = open_regular(path, "an .npz file") if isinstance(path, (str, os.PathLike)) else path
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except ZIP_ERRORS as error:
            self._file.seek(0)
            start = self._file.read(len(NPY_MAGIC))
            self.close()
            if start == NPY_MAGIC:
                raise ValueError(f"{self.path}: is a single .npy array, expected an .npz archive of "
                                 "named arrays (numpy.savez)") from None
            raise ValueError(f"{self.path}: not a readable .npz (zip) archive ({error})") from None
        if len(infos) > MAX_NPZ_MEMBERS:
            self.close()
            raise ValueError(f"{self.path}: holds {len(infos)} members, expected at most {MAX_NPZ_MEMBERS} arrays")
        self.names = [i.filename[:-4] for i in infos if i.filename.endswith(".npy")]

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_zip", None) is not None:
            self._zip.close()
        if isinstance(self.path, str) or isinstance(self.path, os.PathLike):
            self._file.close()

    def array(self, name: str) -> np.ndarray:
        """The array ``name`` (shape and dtype as stored, native byte order, writable)."""
        where = f"{self.path}: array {name!r}"
        if name not in self.names:
            raise ValueError(f"{self.path}: has no array {name!r}; it holds {self.names}")
        info = self._zip.getinfo(name + ".npy")
        if info.flag_bits & 0x1:
            raise ValueError(f"{where} is encrypted; expected a plain archive as numpy.savez writes")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{where} is compressed with zip method {info.compress_type}; expected stored (0) "
                             "or deflate (8), as numpy.savez and savez_compressed write")
        check_bytes(self.path, f"array {name!r}", info.file_size, MAX_ARRAY_BYTES + 2**16)  # + its .npy header
        try:
            with self._zip.open(info) as member:
                return _read_npy(member, info.file_size, where)
        except ZIP_ERRORS as error:
            if isinstance(error, ValueError) and str(error).startswith(str(self.path)):
                raise  # already ours
            raise ValueError(f"{where} is corrupt ({type(error).__name__}: {error})") from None


def _read_npy(member: BinaryIO, size: int, where: str) -> np.ndarray:
    """One .npy member: header checked against ``size`` before its data is read."""
    try:
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"unsupported .npy version {version}")
        shape, fortran, dtype = read_header[version](member)
    except (ValueError, SyntaxError, TypeError, struct.error, EOFError) as error:
        raise ValueError(f"{where}: corrupt .npy header ({error}); expected one written by numpy.save") from None
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects ({dtype}), which cannot be read without pickle; "
                         "expected a plain numeric array")
    if dtype.itemsize == 0:
        raise ValueError(f"{where}: corrupt header: dtype {dtype} has no size")
    nbytes = math.prod(shape) * dtype.itemsize
    check_bytes(where, f"a shape of {shape} {dtype}, which", nbytes)
    held = size - member.tell()
    if held != nbytes:
        raise ValueError(f"{where}: corrupt header: shape {shape} of {dtype} needs {nbytes:,} bytes, "
                         f"the member holds {held:,}")
    data = read_exactly(member, nbytes)
    if len(data) != nbytes or member.read(1):  # reading to the end checks the member's CRC
        raise ValueError(f"{where}: truncated: expected {nbytes:,} bytes of data, got {len(data):,}")
    array = np.frombuffer(data, dtype=dtype)
    array = array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False) if dtype.byteorder not in "=|" else array
