"""Getting dataset files onto disk safely: the cache folder, checksums, downloads, archives.

Every downloaded file is checked against a SHA-256 sum written into the code, and every
file is written under a temporary name and renamed into place (os.replace) only when it
is complete (:func:`convscope.files.write_atomic`), so an interrupted download never leaves
a half file under the real name.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from ..files import write_atomic

CACHE_ENV = "CONVSCOPE_DATA"


def default_cache_dir() -> Path:
    """The cache folder: $CONVSCOPE_DATA if set, else ~/.cache/convscope."""
    folder = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "convscope"
    return Path(folder).expanduser()


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file as 64 hex digits, read in chunks (no whole-file copy in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str) -> None:
    """Raise ValueError unless the file's SHA-256 equals `expected` (hex, any case).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty"
        >>> _ = path.write_bytes(b"")
        >>> verify_sha256(path, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    """
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ValueError(f"{path}: SHA-256 mismatch: expected {expected.lower()}, got {actual}; "
                         f"the file is corrupt or not the expected one; delete it and try again")


def _fresh(path: Path):
    """``path`` opened for writing as a new file: whatever stands there (a file or a symbolic
    link left behind) is removed first, and O_EXCL / O_NOFOLLOW refuse to write through a link."""
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o644), "wb")


def download(urls: Iterable[str], destination: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch a file from the first of `urls` that works, verify its SHA-256, move it into place.

    Args:
        urls: mirrors to try in order.
        destination: final path of the file; its folder is created if needed.
        sha256: the expected SHA-256 (hex).
        timeout: seconds to wait for a server to answer.

    Returns:
        `destination`. Raises OSError listing every URL tried and why it failed.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        partial = destination.with_name(destination.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, _fresh(partial) as out:
                shutil.copyfileobj(response, out)
            verify_sha256(partial, sha256)
        except (OSError, ValueError) as err:  # URLError and timeouts are OSErrors
            partial.unlink(missing_ok=True)
            failures.append(f"{url}: {err}")
            continue
        os.replace(partial, destination)
        return destination
    raise OSError(f"could not download {destination.name}:\n  " + "\n  ".join(failures))


def extract_members(archive: str | os.PathLike, members: Iterable[str], folder: str | os.PathLike) -> None:
    """Copy the named members of a .tar.gz archive into `folder`, keeping only their file names.

    Only the listed names are read (never archive-supplied paths), so a hostile archive
    cannot write outside `folder`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for name in members:
            try:
                source = tar.extractfile(tar.getmember(name))
            except KeyError:
                raise ValueError(f"{archive}: expected a member named {name!r}, not found") from None
            if source is None:
                raise ValueError(f"{archive}: member {name!r} is not a regular file")
            with source:
                write_atomic(folder / Path(name).name, source.read())
