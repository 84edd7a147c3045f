"""Idle database sessions kept for the next company lock of this process.

A company lock is held on a session of its own (``advisory_lock.py``); opening one costs a connection
(~8 ms here, more across a network), and a sync takes two or three locks. A session whose lock was
released cleanly holds nothing, so it is kept (a few per process) for the next lock instead of closed.
A session that might still hold something (its unlock failed) is closed, which releases everything.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import psycopg2

from smartsync_pipeline.coordination.postgres import connect

MAX_IDLE = 4
_idle: dict[tuple[str, int], list[Any]] = {}
_lock = threading.Lock()


def borrow(url: str) -> Any:
    """An idle session of this process for ``url``, or a new one."""
    with _lock:
        idle = _idle.get((url, os.getpid()))
        conn = idle.pop() if idle else None
    return conn if conn is not None and not conn.closed else connect(url)


def give_back(url: str, conn: Any, *, holds_nothing: bool) -> None:
    """Keep ``conn`` for the next lock when it holds nothing, else close it (ending its session)."""
    if holds_nothing and not conn.closed:
        with _lock:
            idle = _idle.setdefault((url, os.getpid()), [])
            if len(idle) < MAX_IDLE:
                idle.append(conn)
                return
    with contextlib.suppress(psycopg2.Error):
        conn.close()


def idle_count(url: str) -> int:
    with _lock:
        return len(_idle.get((url, os.getpid()), []))
