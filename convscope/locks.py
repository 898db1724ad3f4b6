"""One process trains a run folder at a time.

:class:`FolderLock` takes an exclusive advisory lock (``flock``) on ``FOLDER/training.lock``
for as long as a run trains; the operating system drops it when the process ends, even when
it is killed, so a lock is never left stale. A second ``convscope train --resume`` (or the
explorer) on the same folder is refused while the first trains. Where ``flock`` does not
exist (Windows), nothing is locked. A symbolic link in place of the lock file is refused,
never followed.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # not a POSIX system
    fcntl = None

LOCK_FILE = "training.lock"


class FolderBusy(ValueError):
    """The folder's run is being trained by another process (or another run in this one)."""


class FolderLock:
    """Hold ``folder``'s lock until :meth:`release` (or the process ends); raises
    :class:`FolderBusy` at once when someone else holds it."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._file = _open_lock(self.path)
        if fcntl is None:
            return
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "?"
            self._file.close()
            raise FolderBusy(f"{folder} is being trained right now (by process {holder}); wait for it to "
                             "finish, or stop it, before training it again") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            self._file.close()  # closing the file drops the lock


def _open_lock(path: Path):
    """The lock file, opened for reading and writing without following a symbolic link (one
    planted there would have us overwrite the file it points to, perhaps outside the folder)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as error:
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link (to {os.readlink(path)}); convscope writes only plain "
                             "files in a run folder: remove the link and try again") from None
        raise OSError(error.errno, error.strerror, str(path)) from None
    return os.fdopen(fd, "a+")


def is_locked(folder: str | os.PathLike) -> bool:
    """Whether a run in ``folder`` is being trained now (its lock is held)."""
    path = Path(folder) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return False
    try:
        with open(path) as probe:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when closed
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False
