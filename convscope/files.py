"""Writing a file so that it is either all there or not there at all.

:func:`write_atomic` writes under a temporary name in the same folder (``.NAME.XXXXXXXX.tmp``)
and renames the result into place (``os.replace`` is atomic on one file system), so an
interrupted or failed write never leaves a half file under the real name, and never harms
the file it replaces. Every file convscope writes (model files, checkpoints, metrics,
datasets, pictures, reports) goes through it.

Symbolic links: the rename replaces a link that stands at ``path`` by the new file; the
file the link pointed to is never opened, so a link planted in a run folder cannot make
convscope overwrite a file outside it.

Failures: an error while writing (a full disk, a read-only folder) removes the temporary
file and is raised again as the same kind of ``OSError`` naming ``path`` itself, e.g.
``[Errno 28] No space left on device: 'runs/a/checkpoint.safetensors'``. A process killed
outright (SIGKILL, power cut) cannot clean up: :func:`remove_temporaries` deletes what such
a write left, and the training runs call it on their folder before they write again.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")  # what write_atomic names its temporary files


def write_atomic(path: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a Path.

    Args:
        path: the file to write; its folder is created if needed. A symbolic link at
            ``path`` is replaced, not followed.
        data (bytes): the whole content.
        durable (bool): flush the file and its folder to the disk (fsync) so that a power cut
            after the call cannot lose it. Default True.

    Raises:
        OSError: the file could not be written (its ``filename`` is ``path``); nothing at
            ``path`` changed and no temporary file is left.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "a.txt", b"hello").read_bytes()
    b'hello'
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; follow the umask like open()
        os.replace(temporary, path)
        temporary = None
        if durable:
            _sync_folder(path.parent)
    except OSError as error:
        raise _naming(error, path) from error
    finally:
        if temporary is not None:  # the write failed or was interrupted (KeyboardInterrupt too)
            Path(temporary).unlink(missing_ok=True)
    return path


def _naming(error: OSError, path: Path) -> OSError:
    """The same kind of error naming ``path``, where it named a temporary file or nothing
    (an error naming something else, such as a folder that cannot be made, is kept)."""
    named = error.filename is not None and not TEMPORARY.fullmatch(Path(error.filename).name)
    if error.errno is None or named:
        return error
    return OSError(error.errno, error.strerror, str(path))  # OSError(errno, ...) picks the subclass


def _sync_folder(folder: Path) -> None:
    """fsync ``folder`` so the rename itself survives a power cut (skipped where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not sync folders; the rename is still atomic
    finally:
        os.close(fd)


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files :func:`write_atomic` left in ``folder`` when its process
    was killed; returns them. Call it only while nobody else writes there (a run folder's
    lock is held). Other files, and links, are left alone.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".model.safetensors.a1b2c3d4.tmp").write_bytes(b"half")
    >>> [p.name for p in remove_temporaries(folder)], sorted(folder.iterdir())
    (['.model.safetensors.a1b2c3d4.tmp'], [])
    """
    removed = []
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if TEMPORARY.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
