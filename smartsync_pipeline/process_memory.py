"""Keeping a backfilling process's memory flat while many threads decode pages at once.

A full listing decodes several pages at a time on pool threads (sync/full_listings.py). Two
allocators then keep far more than they use: glibc gives each new thread its own malloc arena (up to
8 per core) and each arena keeps its high-water mark, and pyarrow's default mimalloc pool keeps per-
thread heaps. On a `medium` backfill that was ~140 MB of peak RSS for nothing
(bench/bench_backfill.py). Both are process-wide settings that only work when made before the first
thread and the first Arrow allocation, so the package applies them when it is imported
(``smartsync_pipeline/__init__.py``). Neither changes any result; ``ARROW_DEFAULT_MEMORY_POOL`` set
by the user wins.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2


def keep_thread_memory_flat() -> None:
    """Cap glibc's malloc arenas and give pyarrow the system allocator (call before pyarrow's import)."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if "MALLOC_ARENA_MAX" in os.environ:
        return  # glibc read it at start-up
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on: no search, no subprocess
    except OSError:
        return
    if hasattr(libc, "mallopt"):  # glibc; other C libraries keep their own policy
        libc.mallopt(M_ARENA_MAX, ARENAS)


def keep_blas_threads_out() -> None:
    """No OpenBLAS thread pool: numpy (imported by pyarrow) starts one thread per core at import, and
    they spin waiting for matrix work this process never does: ~0.1 CPU-s of every CLI start, taken
    from the server on a busy machine. ``OPENBLAS_NUM_THREADS`` set by the user wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
