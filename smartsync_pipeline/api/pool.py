"""Blocking work (DuckDB queries, QBO refreshes, SQLite, token exchanges) runs in one bounded pool of
threads, never on the event loop. Requests beyond the pool's size wait their turn in the loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class BlockingPool:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smartsync-api")
        self.in_flight = 0

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        self.in_flight += 1
        try:
            return await loop.run_in_executor(self._executor, call)
        finally:
            self.in_flight -= 1

    def shutdown(self) -> None:
        """Wait for running work to finish (graceful shutdown), then stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=False)
