"""Full listings of many entities at once: several pages in flight, within QBO's limits.

A first sync pages every object of every entity. Paged one after another, a backfill spends its time
waiting for QBO (hundreds of milliseconds a page on the real service) while QBO would take 10
requests at once and 500 a minute. Here one pool of ``workers`` threads (the engine's
``page_workers``, 6 by default; the client's limiter keeps both of QBO's limits) fetches:

1. the COUNT of every entity, then
2. every page the counts promise, as independent STARTPOSITION requests, each written straight to its
   own Parquet file (memory stays at ``workers`` pages whatever the company's size), and
3. past the count, one page at a time until a short page, in case objects were created meanwhile.

Tasks run in submission order. Pages are submitted once every entity is counted: the entities of one
page first (a first sync's many small ones, applied while the big ones are paged) with the first page
of every other one, then, once those first pages are in, the rest of the others from the heaviest
down (objects times the bytes of an object on its first page: an invoice with its lines weighs
several payments), so that what is left to apply when the last page arrives is the lightest of
them. The engine applies each entity as soon as its listing is complete (ARCHITECTURE.md,
"Backfill"). Objects that slip
between pages while others are deleted are caught like before when the mirror holds them: the engine
asks QBO for ids a listing missed before calling them deleted. (A first sync has no ids to miss: an
object that slips while another is deleted mid-listing arrives with the next full reconciliation.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from smartsync_pipeline.entities import EntitySpec
from smartsync_pipeline.garbage_collection import fewer_collections
from smartsync_pipeline.mirror.apply import stage
from smartsync_pipeline.sync.fetch import FullFetch, Progress, StagingArea

log = logging.getLogger("smartsync.sync")


@dataclass
class _Listing:
    """One entity's listing while its pages come in."""

    spec: EntitySpec
    directory: Path
    started_server_time: datetime | None = None
    total: int = 0
    fetched: int = 0
    pending: int = 0  # page requests submitted and not finished
    last_start: int = 0  # the highest STARTPOSITION asked so far
    files: dict[int, Path] = field(default_factory=dict)
    weight: float = 0.0  # estimated bytes of the whole listing, from its first page (``_weigh``)
    done: threading.Event = field(default_factory=threading.Event)
    result: FullFetch | None = None


class ListingFailed(RuntimeError):
    """Raised by ``result`` for listings that stopped because another one failed first."""


class FullListings:
    """Full listings of ``specs`` fetched concurrently; ``result(name)`` waits for one of them.

    Use as a context manager: leaving it stops the pool (pending pages are dropped) and joins its
    threads, whether the sync succeeded or not."""

    def __init__(
        self,
        client: Any,
        specs: Sequence[EntitySpec],
        staging: StagingArea,
        *,
        page_size: int = 1000,
        workers: int = 10,
        progress: Progress | None = None,
    ) -> None:
        if page_size < 1 or workers < 1:
            raise ValueError("page_size and workers must be positive")
        self.client = client
        self.page_size = page_size
        self.progress = progress
        self._lock = threading.Lock()
        self._finishing = threading.Condition()
        self._finished = 0
        self._error: BaseException | None = None
        self._stopped = False
        self._listings = {s.name: _Listing(s, staging.entity_dir(s.name)) for s in specs}
        self._uncounted = len(self._listings)
        self._unweighed = 0  # multi-page listings whose first page is not in yet
        self._until_closed = ExitStack()
        self._until_closed.enter_context(fewer_collections())  # pages are acyclic: see garbage_collection.py
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smartsync-page")
        for listing in self._listings.values():
            self._submit(self._count, listing)

    def __enter__(self) -> FullListings:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._until_closed.close()  # idempotent

    def stop(self) -> None:
        """No more pages; whoever waits in ``result`` for an unfinished listing gets ListingFailed."""
        with self._lock:
            self._stopped = True
        self._finish(*self._listings.values())

    def result(self, name: str) -> FullFetch:
        """The finished listing of ``name`` (waits for it); raises the first error of any listing."""
        listing = self._listings[name]
        listing.done.wait()
        if listing.result is None:
            raise self._error if self._error is not None else ListingFailed(f"the listing of {name} was stopped")
        return listing.result

    def fetched(self, name: str) -> int:
        """Objects of ``name`` staged so far (all of them once it is ``listed``)."""
        with self._lock:
            return self._listings[name].fetched

    def listed(self, name: str) -> bool:
        """The listing of ``name`` has finished (or stopped): ``result`` returns without waiting."""
        return self._listings[name].done.is_set()

    @property
    def finished(self) -> int:
        """How many times listings finished so far (for ``wait_finished``)."""
        with self._finishing:
            return self._finished

    def wait_finished(self, seen: int) -> None:
        """Wait until a listing finishes after ``finished`` was ``seen``."""
        with self._finishing:
            self._finishing.wait_for(lambda: self._finished > seen)

    def _finish(self, *listings: _Listing) -> None:
        for listing in listings:
            listing.done.set()
        with self._finishing:
            self._finished += 1
            self._finishing.notify_all()

    def wait_all(self) -> dict[str, FullFetch]:
        return {name: self.result(name) for name in self._listings}

    # -- tasks (pool threads) -----------------------------------------------------------------

    def _submit(self, task: Any, *args: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            self._pool.submit(self._guarded, task, *args)

    def _guarded(self, task: Any, *args: Any) -> None:
        if self._stopped:
            return
        try:
            task(*args)
        except BaseException as exc:  # handed to the thread waiting in result()
            with self._lock:
                if self._error is None:
                    self._error = exc
                self._stopped = True
            self._finish(*self._listings.values())

    def _count(self, listing: _Listing) -> None:
        spec = listing.spec
        listing.started_server_time = self.client.server_time
        total = self.client.count(spec.name, include_inactive=True if spec.name_list else None)
        # Pages 1 .. the one just past the count: the last must come back short to end the listing.
        pages = total // self.page_size + 1
        with self._lock:
            listing.total = total
            listing.last_start = 1 + (pages - 1) * self.page_size
            listing.pending = pages  # all at once: an early page must not find the listing finished
            self._uncounted -= 1
            counted = self._uncounted == 0
        self._report(listing)
        if counted:
            self._submit_pages()

    def _submit_pages(self) -> None:
        """The first page of every counted listing, small ones first (the module docstring says why);
        ``_weigh`` submits the rest."""
        order = sorted(self._listings.values(), key=lambda lst: (self._paged(lst), -lst.total))
        with self._lock:
            self._unweighed = sum(self._paged(lst) for lst in order)
        for listing in order:
            self._submit(self._page, listing, 1)

    def _paged(self, listing: _Listing) -> bool:
        """Counted to more than one page (the one just past the count included)."""
        return listing.total >= self.page_size

    def _weigh(self, listing: _Listing, first_page_bytes: int, objects: int) -> None:
        """A multi-page listing's first page is in: its weight is known; once every one is weighed, the
        rest of their pages go, the heaviest listing's first."""
        with self._lock:
            listing.weight = first_page_bytes / objects * listing.total if objects else 0.0
            self._unweighed -= 1
            if self._unweighed:
                return
            paged = sorted((lst for lst in self._listings.values() if self._paged(lst)), key=lambda lst: -lst.weight)
            rest = [
                (lst, start) for lst in paged for start in range(1 + self.page_size, lst.last_start + 1, self.page_size)
            ]
        for page in rest:
            self._submit(self._page, *page)

    def _page(self, listing: _Listing, start: int) -> None:
        spec = listing.spec
        items = self.client.page(
            spec.name, start, page_size=self.page_size, include_inactive=True if spec.name_list else None
        )
        count = len(items)
        raw_bytes = 0
        if count:
            path = listing.directory / f"page-{start:010d}.parquet"
            table = stage(items, first_seq=start - 1)
            raw_bytes = table.column("raw").nbytes
            del items  # the decoded page is the bulk of a page's memory: gone before the file is written
            # Read back whole by DuckDB, never filtered: no dictionaries or statistics (30 % less to write).
            pq.write_table(table, path, use_dictionary=False, write_statistics=False)
            del table
        more = False
        with self._lock:
            if count:
                listing.files[start] = path
                listing.fetched += count
            if start == listing.last_start and count == self.page_size:
                listing.last_start += self.page_size  # the company grew since the count: keep going
                listing.pending += 1
                more = True
            listing.pending -= 1
            finished = listing.pending == 0
            if finished:
                files = [listing.files[k] for k in sorted(listing.files)]
                listing.result = FullFetch(spec.name, files, listing.fetched, listing.started_server_time)
        self._report(listing)
        if start == 1 and self._paged(listing):
            self._weigh(listing, raw_bytes, count)
        if more:
            self._submit(self._page, listing, start + self.page_size)
        if finished:
            log.debug("listed %s: %d objects in %d pages", spec.name, listing.fetched, len(listing.files))
            self._finish(listing)

    def _report(self, listing: _Listing) -> None:
        if self.progress is not None:
            with self._lock:
                fetched, total = listing.fetched, max(listing.total, listing.fetched)
                self.progress(listing.spec.name, fetched, total)
