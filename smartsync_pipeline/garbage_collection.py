"""Fewer garbage-collector passes while a backfill decodes pages.

Decoding a 1,000-object page allocates tens of thousands of dicts and lists; with CPython's default
threshold (a young collection every 700 container allocations) the collector runs dozens of times
per page and, every tenth young pass, walks every object the process holds. Decoded JSON has no
reference cycles (reference counting frees it), so those passes find nothing: on a `medium` backfill
they were ~20 % of the page threads' CPU (bench/bench_backfill.py). While any backfill runs in the
process the young threshold is raised; the last one to finish restores the previous setting.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000  # container allocations between young collections while a backfill runs

_lock = threading.Lock()
_active = 0
_saved: tuple[int, ...] = ()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the young-generation threshold for the block (nested and concurrent blocks share it)."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(YOUNG_THRESHOLD, _saved[0]), *_saved[1:])
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
