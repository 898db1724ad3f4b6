"""Writing a file so that it is either all there or not there at all.

:func:`write_atomic` writes under a temporary name in the same folder and renames the
result into place (``os.replace`` is atomic on one file system), so an interrupted or failed
write never leaves a half file under the real name, and never harms the file it replaces.
Every file convscope writes (model files, checkpoints, metrics, datasets, pictures, reports)
goes through it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a Path.

    Args:
        path: the file to write; its folder is created if needed.
        data (bytes): the whole content.
        durable (bool): flush it to the disk (fsync) before the rename, so that a power cut
            after the call cannot lose it. Default True.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; follow the umask like open()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
