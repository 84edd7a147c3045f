"""A long-lived reader process (a code server, a worker, the HTTP API) stays bounded: descriptors,
threads and memory are flat after warm-up however many refreshes and reads it serves.

Before: every refresh built a QBOClient that was never closed, with its own rate limiter holding
descriptors only its close() released: +2 descriptors per refresh; stale-while-revalidate started one
thread per stale read. The number of refreshes is SMARTSYNC_LONG_LIVED_REFRESHES (default 150 in the
default suite, where each refresh costs ~0.3 s here; README gives the 1,000-refresh run).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from smartsync_pipeline.qbo.limiter_registry import shared_limiter_count
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.process_footprint import Footprint

REFRESHES = int(os.environ.get("SMARTSYNC_LONG_LIVED_REFRESHES", "150"))
FRESH_READS = 1_000


@pytest.fixture
def company(connected_company: ConnectedCompany) -> ConnectedCompany:
    connected_company.engine().sync(connected_company.realm_id, ["Term", "Bill"])
    return connected_company


def test_refreshes_and_fresh_reads_leave_descriptors_threads_and_memory_flat(company: ConnectedCompany) -> None:
    reader = company.reader(record_in_dagster=False)
    realm = company.realm_id
    for _ in range(10):  # warm-up: the snapshot connection, the limiter, the refresh threads, imports
        assert reader.read("Term", realm, columns="id", max_age=0).provenance.source == "api"
    before = Footprint.now()
    started = time.monotonic()
    for _ in range(REFRESHES):
        p = reader.read("Term", realm, columns="id", max_age=0).provenance
        assert p.source == "api" and not p.stale
    after_refreshes = Footprint.now()
    for _ in range(FRESH_READS):
        p = reader.read("Bill", realm, columns="id, balance").provenance
        assert p.source == "mirror" and not p.stale
    after_reads = Footprint.now()
    print(
        f"{REFRESHES} refreshes in {time.monotonic() - started:.0f} s: {before} -> {after_refreshes}; "
        f"+{FRESH_READS} fresh reads -> {after_reads}"
    )
    grew = after_refreshes.growth_since(before)
    assert grew.fds <= 2, f"descriptors grew by {grew.fds} over {REFRESHES} refreshes"
    assert grew.threads <= 0, f"threads grew by {grew.threads}"
    assert grew.rss_mb <= 40, f"RSS grew by {grew.rss_mb} MB"
    grew = after_reads.growth_since(after_refreshes)
    assert grew.fds <= 0 and grew.threads <= 0 and grew.rss_mb <= 20, grew
    assert shared_limiter_count() >= 1
    reader.close()
    assert Footprint.now().fds <= before.fds  # close() gives the snapshot connection back


def test_stale_while_revalidate_uses_a_bounded_pool(company: ConnectedCompany) -> None:
    """200 stale reads answered at once: at most ``background_refreshes`` threads refresh, one per
    (company, entity) at a time (before: a new thread per stale read)."""
    reader = company.reader(stale_while_revalidate=True, background_refreshes=2, record_in_dagster=False)
    reader.with_clock(lambda: datetime.now(UTC) + timedelta(hours=2))  # every read finds the mirror stale
    base = Footprint.now()
    peak = 0
    for _ in range(200):
        p = reader.read("Bill", company.realm_id, columns="id").provenance
        assert p.stale and "stale-while-revalidate" in p.reason
        peak = max(peak, Footprint.now().threads - base.threads)
    assert peak <= 2, f"{peak} extra threads"
    reader.close()  # waits for the background refreshes
    assert Footprint.now().threads <= base.threads
