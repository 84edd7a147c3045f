"""Issue 12 section 4: a backfill pages concurrently within QBO's limits, applies each entity while
later ones are still being paged, pages the heaviest listings first, never stops at a stale count, and
a backfill that fails halfway leaves nothing behind (the next one converges)."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

import pytest

from smartsync_pipeline.entities import iter_entities
from smartsync_pipeline.garbage_collection import YOUNG_THRESHOLD
from smartsync_pipeline.json_text import canonical_json
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.errors import QBOError, ReauthorizationRequired
from smartsync_pipeline.sync.engine import DEFAULT_PAGE_WORKERS
from smartsync_pipeline.sync.errors import SyncError
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.mirror_equality import mirror_differences

PAGE = 50  # small pages: the `small` sandbox then has several per large entity


def real_client(company: ConnectedCompany, **kwargs: Any) -> QBOClient:
    store = CompanyStore(company.home)
    return QBOClient(store.load(company.realm_id), store.tokens(company.realm_id), home=company.home, **kwargs)


class Wrapped:
    """The real client with one method replaced by the test (everything else passes through)."""

    def __init__(self, client: QBOClient, **overrides: Any) -> None:
        self.client, self.overrides = client, overrides

    def __getattr__(self, name: str) -> Any:
        return self.overrides.get(name) or getattr(self.client, name)


def test_pages_are_fetched_concurrently_within_qbos_limits(connected_company: ConnectedCompany) -> None:
    company = connected_company
    company.sandbox.control("faults", {"latency_ms": 40})
    company.sandbox.control("stats", {})
    report = company.engine(page_size=PAGE).sync()
    seen = company.sandbox.control("stats", method="GET")

    assert 2 <= seen["max_concurrent_seen"] <= DEFAULT_PAGE_WORKERS, seen["max_concurrent_seen"]
    assert seen["throttled_429"] == 0
    # One COUNT per entity plus ceil((n + 1) / PAGE) pages each: no page asked twice.
    expected_pages = sum(e.fetched // PAGE + 1 for e in report.entities.values())
    assert report.api_calls == len(report.entities) + expected_pages
    assert all(e.mode == "full" for e in report.entities.values())
    assert mirror_differences(company) == {}


def test_each_entity_is_applied_while_later_ones_are_still_paged(
    connected_company: ConnectedCompany, caplog: pytest.LogCaptureFixture
) -> None:
    """The last entity's pages are held until the first entity has been applied: a backfill that
    fetched everything before applying anything would time out here."""
    company = connected_company
    specs = list(iter_entities())
    first, last = specs[0].name, specs[-1].name
    first_applied = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith(f"applied {first} "):
                first_applied.set()

    handler = Watch(level=logging.DEBUG)
    logger = logging.getLogger("smartsync.sync")
    logger.addHandler(handler)
    caplog.set_level(logging.DEBUG, logger="smartsync.sync")
    client = real_client(company)

    def page(name: str, start: int, **kwargs: Any) -> list[dict[str, Any]]:
        if name == last and not first_applied.wait(timeout=60):
            raise AssertionError(f"{first} was not applied while {last} was still being paged")
        return client.page(name, start, **kwargs)

    try:
        report = company.engine(page_size=PAGE, client_factory=lambda _: Wrapped(client, page=page)).sync()
    finally:
        logger.removeHandler(handler)
        client.close()
    assert first_applied.is_set()
    assert report.entities[last].fetched >= 1
    assert mirror_differences(company) == {}


def test_the_rest_of_the_big_listings_is_paged_heaviest_first(connected_company: ConnectedCompany) -> None:
    """First pages of every listing, then the other pages of the multi-page ones, the heaviest listing
    (its objects times the bytes of an object on its first page) first: what is left to apply after the
    last page is the lightest listing, not the one that merely has the most objects."""
    company = connected_company
    client = real_client(company)
    asked: list[tuple[str, int]] = []
    per_object: dict[str, float] = {}  # canonical bytes of an object on the listing's first page

    def page(name: str, start: int, **kwargs: Any) -> list[dict[str, Any]]:
        items = client.page(name, start, **kwargs)
        asked.append((name, start))
        if start == 1 and items:
            per_object[name] = sum(len(canonical_json(o).encode()) for o in items) / len(items)
        return items

    try:  # one page worker: pages are asked in exactly the order they were submitted
        report = company.engine(
            page_size=PAGE, page_workers=1, client_factory=lambda _: Wrapped(client, page=page)
        ).sync()
    finally:
        client.close()
    assert mirror_differences(company) == {}
    paged = {name for name, start in asked if start > 1}
    firsts = [n for n, (name, start) in enumerate(asked) if start == 1 and name in paged]
    rest = [name for name, start in asked if start > 1]
    assert len(paged) >= 3 and max(firsts) < len(asked) - len(rest)  # every first page before any other
    weight = {name: per_object[name] * report.entities[name].fetched for name in paged}
    order = list(dict.fromkeys(rest))
    assert order == sorted(paged, key=lambda name: -weight[name]), weight
    by_count = sorted(paged, key=lambda name: -report.entities[name].fetched)
    assert order != by_count, "the small sandbox no longer tells weight from count: pick other entities"


def test_a_count_that_is_too_low_does_not_cut_the_listing(connected_company: ConnectedCompany) -> None:
    """Objects created between the COUNT and the last page: paging goes on until a short page."""
    company = connected_company
    client = real_client(company)
    truth = len(company.sandbox_objects("Bill")["active"])
    assert truth > 3 * PAGE

    def count(name: str, *args: Any, **kwargs: Any) -> int:
        n = client.count(name, *args, **kwargs)
        return n - 3 * PAGE if name == "Bill" else n

    try:
        report = company.engine(page_size=PAGE, client_factory=lambda _: Wrapped(client, count=count)).sync()
    finally:
        client.close()
    assert report.entities["Bill"].fetched == truth
    assert report.entities["Bill"].created == truth
    assert mirror_differences(company) == {}


def test_a_count_that_is_too_high_ends_the_listing_at_the_objects_there_are(
    connected_company: ConnectedCompany,
) -> None:
    """Objects deleted between the COUNT and the pages: the first page of a "big" listing comes back
    short and the rest empty; the listing ends (nothing waits for the weighing) with what QBO has."""
    company = connected_company
    client = real_client(company)
    terms = len(company.sandbox_objects("Term")["active"])
    assert terms < PAGE

    def count(name: str, *args: Any, **kwargs: Any) -> int:
        n = client.count(name, *args, **kwargs)
        return n + 3 * PAGE if name == "Term" else n

    try:
        report = company.engine(page_size=PAGE, client_factory=lambda _: Wrapped(client, count=count)).sync()
    finally:
        client.close()
    assert (
        report.entities["Term"].created
        == report.entities["Term"].fetched
        == len(company.sandbox_objects("Term")["active"])
    )
    assert mirror_differences(company) == {}


def test_a_first_page_that_fails_stops_the_backfill_before_any_other_page(connected_company: ConnectedCompany) -> None:
    """A big listing's first page fails: the weighing never completes, and nothing waits for it."""
    company = connected_company
    client = real_client(company, max_attempts=1)
    asked: list[tuple[str, int]] = []

    def page(name: str, start: int, **kwargs: Any) -> list[dict[str, Any]]:
        asked.append((name, start))
        if name == "Bill" and start == 1:
            raise QBOError("QBO is down for this page")
        return client.page(name, start, **kwargs)

    with pytest.raises(QBOError, match="down for this page"):
        company.engine(page_size=PAGE, page_workers=1, client_factory=lambda _: Wrapped(client, page=page)).sync()
    client.close()
    assert ("Bill", 1) in asked
    assert all(start == 1 for _, start in asked)  # the rest of the big listings was never asked


def test_a_backfill_that_fails_halfway_leaves_nothing_and_the_next_one_converges(
    connected_company: ConnectedCompany,
) -> None:
    company = connected_company
    client = real_client(company, max_attempts=1)
    pages_seen = 0
    lock = threading.Lock()
    threads_before = threading.active_count()

    def page(name: str, start: int, **kwargs: Any) -> list[dict[str, Any]]:
        nonlocal pages_seen
        with lock:
            pages_seen += 1
            if pages_seen == 25:  # QBO goes down in the middle of the backfill
                company.sandbox.control("faults", {"down": True})
        return client.page(name, start, **kwargs)

    with pytest.raises(QBOError):
        company.engine(page_size=PAGE, client_factory=lambda _: Wrapped(client, page=page)).sync()
    client.close()
    assert threading.active_count() == threads_before  # the page pool stopped with the sync
    db = MirrorDatabase(company.home, company.realm_id)
    if db.path.exists():
        with db.inspect() as con:
            assert con.execute("SELECT count(*) FROM change_log").fetchone()[0] == 0
            assert con.execute("SELECT count(*) FROM sync_state").fetchone()[0] == 0

    company.sandbox.control("faults", {"down": False})
    report = company.engine(page_size=PAGE).sync()
    assert all(e.mode == "full" for e in report.entities.values())
    assert mirror_differences(company) == {}


def test_a_refused_refresh_token_is_asked_and_logged_once_not_per_page_thread(
    connected_company: ConnectedCompany, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    company = connected_company
    # Another home connected with the same refresh token uses it first: QBO rotates it away.
    other = ConnectedCompany(tmp_path / "other-home", company.sandbox)
    other.engine().sync(entities=["Term"])
    company.sandbox.control("stats", {})
    caplog.set_level(logging.INFO, logger="smartsync.qbo")

    with pytest.raises(ReauthorizationRequired):
        company.engine().sync()
    refused = [r for r in caplog.records if "reconnection required" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert company.sandbox.control("stats", method="GET")["token_refreshes"]["failed"] == 1


def test_page_workers_come_from_the_environment_within_qbos_limit(
    connected_company: ConnectedCompany, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = connected_company
    for bad in ("0", "11", "many"):
        monkeypatch.setenv("SMARTSYNC_PAGE_WORKERS", bad)
        with pytest.raises(SyncError, match="SMARTSYNC_PAGE_WORKERS must be a whole number from 1 to 10"):
            company.engine()
    monkeypatch.setenv("SMARTSYNC_PAGE_WORKERS", "3")
    company.sandbox.control("faults", {"latency_ms": 40})
    company.sandbox.control("stats", {})
    company.engine(page_size=PAGE).sync()
    assert 2 <= company.sandbox.control("stats", method="GET")["max_concurrent_seen"] <= 3
    assert mirror_differences(company) == {}


def test_a_backfill_pages_with_fewer_collections_and_restores_the_threshold(
    connected_company: ConnectedCompany,
) -> None:
    """Decoded pages are acyclic: young collections are rarer while pages are decoded (garbage_collection.py)."""
    company = connected_company
    client = real_client(company)
    before = gc.get_threshold()
    seen: list[int] = []

    def page(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        seen.append(gc.get_threshold()[0])
        return client.page(*args, **kwargs)

    try:
        report = company.engine(page_size=PAGE, client_factory=lambda _: Wrapped(client, page=page)).sync()
    finally:
        client.close()
    assert report.mode == "full" and seen and min(seen) >= YOUNG_THRESHOLD
    assert gc.get_threshold() == before
