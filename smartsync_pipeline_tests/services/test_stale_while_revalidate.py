"""Stale-while-revalidate does bounded background work: a burst of concurrent stale reads of one
company answers at once (flagged stale) and starts ONE background refresh, which brings the mirror up
to date; the background threads end when the reader is closed.

The refresh is made slow (sandbox latency) so the whole burst lands while it runs. Before the bound,
every stale read started its own thread: N reads, N threads, N-1 of them queueing on the refresh lock."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest

from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline.services import for_business
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.services.conftest import SEED, ZERO, sandbox_objects_exact

BURST = 12
MAX_AGE = 60.0  # seconds the reads allow; the reader's clock runs 10 minutes ahead, so the mirror is stale
LATENCY_MS = 1500


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    sandbox = SandboxProcess.start(scale="small", seed=SEED)
    try:
        connected = ConnectedCompany(tmp_path_factory.mktemp("swr_home"), sandbox)
        connected.engine().sync(connected.realm_id, ["Bill"], mode="full")
        yield connected
    finally:
        sandbox.stop()


def _wait_for(condition, timeout: float, what: str) -> None:
    """Poll a condition with a deadline (a bound on waiting, not a sleep that makes a race pass)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_a_burst_of_stale_reads_starts_one_background_refresh_and_its_threads_end(company) -> None:
    reader = company.reader(stale_while_revalidate=True, record_in_dagster=False)
    ahead = timedelta(minutes=10)
    reader.with_clock(lambda: datetime.now(UTC) + ahead)
    bills = for_business(reader, company.realm_id, today=date.today()).bills
    truth = sandbox_objects_exact(company, "Bill")["active"]
    expected_total = sum((o["Balance"] for o in truth if o["Balance"] > 0), ZERO)
    baseline_threads = threading.active_count()
    company.sandbox.control("stats/reset")
    company.sandbox.control("faults", {"latency_ms": LATENCY_MS})
    try:
        start = threading.Barrier(BURST)

        def stale_read():
            start.wait()
            return bills.open_documents(max_age=MAX_AGE)

        with ThreadPoolExecutor(BURST) as pool:
            answers = list(pool.map(lambda _: stale_read(), range(BURST)))
        # Every read answered from the mirror at once, flagged stale, with the right numbers.
        assert all(a.provenance.stale and "stale-while-revalidate" in a.provenance.reason for a in answers)
        assert all(a.total_balance == expected_total for a in answers)
        assert reader.stats.get("stale_while_revalidate") == BURST
        # The burst's own threads are gone; what is left is the background work, bounded to one refresh.
        extra = threading.active_count() - baseline_threads
        assert extra <= 1, f"{extra} background threads for one company's refresh"
        _wait_for(lambda: reader.stats.get("refresh", 0) >= 1, 60, "the background refresh")
        _wait_for(
            lambda: bills.open_documents(max_age=1e6).provenance.as_of > answers[0].provenance.as_of,
            60, "the refreshed mirror",
        )  # fmt: skip
    finally:
        company.sandbox.control("faults", {"reset": True})
    stats = reader.stats
    assert stats.get("refresh") == 1 and stats.get("refresh_reused", 0) == 0, stats
    assert company.sandbox.control("stats", method="GET")["requests"].get("cdc") == 1
    close = getattr(reader, "close", None)
    if close is not None:
        close()
    _wait_for(lambda: threading.active_count() <= baseline_threads, 30, "the background threads to end")
