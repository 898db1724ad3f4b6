"""Process settings that make NumPy training fast on a small, possibly shared, CPU.

* One BLAS thread (unless ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` says otherwise): a
  CNN step is many small matrix products, and OpenBLAS's extra threads busy-wait; on the
  2-core machines this project is measured on, 2 BLAS threads made a LeNet-5 step 4-12x
  slower whenever another process was busy.
* Keep freed memory in the process (glibc ``mallopt``): each step allocates and frees the
  same large arrays; by default glibc returns them to the OS and takes them back, about
  4,000 page faults per step. Kept, a batch-64 LeNet-5 step took 4.4 ms instead of 8.5 ms.
* SIGTERM stops the command like Ctrl-C (:func:`stop_on_sigterm`): it raises
  :class:`Terminated`, a KeyboardInterrupt, where the process is, so the same clean-up runs
  (a file being written is removed, the run folder keeps its last finished epoch) and the
  command ends with one line and exit status 143 (128 + 15; Ctrl-C: 130).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import threading
from collections.abc import Iterator

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Ask glibc to keep up to 1 GiB of freed memory and serve arrays under 32 MiB from its
    heap; returns False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) and libc.mallopt(M_MMAP_THRESHOLD, 32 << 20))
    except (OSError, AttributeError, TypeError):
        return False


def limit_blas_threads() -> int | None:
    """One BLAS thread unless the user chose a number; returns the limit in force (or None)."""
    chosen = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if chosen:
        return None
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    return 1


def configure() -> dict[str, int | bool | None]:
    """Apply both settings; called once by the ``convscope`` command before any work."""
    return {"blas_threads": limit_blas_threads(), "freed_memory_kept": keep_freed_memory()}


class Terminated(KeyboardInterrupt):
    """The process was sent SIGTERM; raised where it was, so it stops as after Ctrl-C."""

    exit_status = 128 + signal.SIGTERM


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not break the clean-up
    raise Terminated(f"stopped by signal {signum}")


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (outside the main thread, where
    Python cannot take signals, nothing changes); the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
