"""The client's limiter against the sandbox's enforcement: a burst stays within both limits, no 429."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.rate_limit import RealmRateLimiter
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.qbo.conftest import count_terms_together, run_in_processes, save_company

PER_WINDOW, WINDOW, CONCURRENT = 15, 1.0, 10


def _limited_sandbox(factory: Callable[..., SandboxProcess]) -> SandboxProcess:
    sandbox = factory(per_window=PER_WINDOW, window_seconds=WINDOW, max_concurrent=CONCURRENT)
    sandbox.control("faults", {"latency_ms": 80})  # requests overlap, so concurrency is really tested
    return sandbox


def _client(home: Home, realm: str) -> QBOClient:
    store = CompanyStore(home)
    limiter = RealmRateLimiter(
        realm, home=home, per_window=PER_WINDOW, window_seconds=WINDOW, max_concurrent=CONCURRENT
    )
    return QBOClient(
        store.load(realm), store.tokens(realm), home=home, limiter=limiter, max_attempts=1, throttle_budget=0
    )


def _burst(client: QBOClient, threads: int, calls: int) -> list[Any]:
    return count_terms_together([client] * threads, calls, timeout=120)


def test_a_burst_stays_within_the_limits(sandbox_factory: Callable[..., SandboxProcess], home: Home) -> None:
    sandbox = _limited_sandbox(sandbox_factory)
    conn, _ = save_company(sandbox.info, home)
    client = _client(home, conn.realm_id)
    started = time.monotonic()
    results = _burst(client, threads=12, calls=3)  # 36 requests at 15 per second, 10 at once
    elapsed = time.monotonic() - started
    assert results == [4] * 36  # no retries at all: a single 429 would have surfaced as an error
    seen = sandbox.control("stats", method="GET")
    assert seen["throttled_429"] == 0
    assert seen["requests"]["query"] == 36
    # The concurrency budget is never exceeded, and it is really used (how fully depends on scheduling).
    assert CONCURRENT - 4 <= seen["max_concurrent_seen"] <= CONCURRENT
    # 36 requests need 3 windows' worth of budget (15 each): at least 2 windows of waiting, and
    # with a sliding window hardly more (no sleeping to a fixed edge).
    assert 2 * WINDOW <= elapsed < 2 * WINDOW + 3.0
    assert client.stats.wait_seconds > 0


def _burst_in_process(root: str, realm: str, barrier: Any, out: Any) -> None:
    client = _client(Home(Path(root)), realm)
    barrier.wait(timeout=30)
    results = _burst(client, threads=6, calls=3)
    out.put([r if isinstance(r, int) else f"{type(r).__name__}: {r}" for r in results])


def test_processes_share_one_budget(sandbox_factory: Callable[..., SandboxProcess], home: Home) -> None:
    sandbox = _limited_sandbox(sandbox_factory)
    conn, _ = save_company(sandbox.info, home)
    results = run_in_processes(_burst_in_process, str(home.root), conn.realm_id, timeout=120)
    assert results == [[4] * 18, [4] * 18]
    seen = sandbox.control("stats", method="GET")
    assert seen["throttled_429"] == 0
    assert seen["requests"]["query"] == 36
    assert seen["max_concurrent_seen"] <= CONCURRENT
