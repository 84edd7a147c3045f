"""The shared request budget: sliding (not fixed) window, concurrency slots, across real processes."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from pathlib import Path

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.rate_limit import RealmRateLimiter


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_waits_only_until_the_oldest_request_leaves_the_window(tmp_path: Path) -> None:
    clock = FakeClock()
    limiter = RealmRateLimiter(
        "r1", home=Home(tmp_path), per_window=3, window_seconds=60, guard_seconds=0.5, clock=clock
    )
    assert limiter._try_record() == 0.0  # t=0
    clock.now += 40
    assert limiter._try_record() == 0.0  # t=40
    assert limiter._try_record() == 0.0  # t=40
    clock.now += 5  # t=45: full; the oldest (t=0) leaves at 60 (+ guard), not at a window edge
    assert abs(limiter._try_record() - (15 + 0.5)) < 1e-6
    clock.now += 15.6  # t=60.6: one free
    assert limiter._try_record() == 0.0
    assert limiter.in_window() == 3


def test_retry_after_blocks_every_sharer(tmp_path: Path) -> None:
    clock = FakeClock()
    a = RealmRateLimiter("r1", home=Home(tmp_path), per_window=100, clock=clock)
    b = RealmRateLimiter("r1", home=Home(tmp_path), per_window=100, clock=clock)
    a.block_for(7)
    assert abs(b._try_record() - 7) < 1e-6
    clock.now += 7.01
    assert b._try_record() == 0.0


def test_sliding_window_in_real_time(tmp_path: Path) -> None:
    limiter = RealmRateLimiter("r1", home=Home(tmp_path), per_window=4, window_seconds=0.6, guard_seconds=0.05)
    with limiter.slot():
        pass
    first = time.monotonic()
    time.sleep(0.3)  # a moment later: three more, filling the window
    for _ in range(3):
        with limiter.slot():
            pass
    mid = time.monotonic()
    with limiter.slot() as ticket:  # waits for the first to age out: ~0.65 s after it, not 0.6 after mid
        done = time.monotonic()
    assert 0.55 <= done - first <= 1.2
    assert done - mid < 0.9
    assert ticket.waited_for_window > 0.2
    assert limiter.wait_seconds >= ticket.waited


# The workers stamp their sends after the limiter recorded them, as a server stamps arrivals a little
# late; guard_seconds is what absorbs that difference (the production default is 0.2 s).
def _worker(root: str, realm: str, n: int, per_window: int, window: float, hold: float, out, live, peak) -> None:
    limiter = RealmRateLimiter(
        realm, home=Home(Path(root)), per_window=per_window, window_seconds=window, max_concurrent=3, guard_seconds=0.05
    )

    def one() -> None:
        with limiter.slot():
            with live.get_lock():
                live.value += 1
                peak.value = max(peak.value, live.value)
            out.put(time.time())
            time.sleep(hold)  # the "request" in flight
            with live.get_lock():
                live.value -= 1

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _run_processes(
    tmp_path: Path, per_process: int, per_window: int, window: float, hold: float
) -> tuple[list[float], int]:
    ctx = mp.get_context("spawn")
    out, live, peak = ctx.Queue(), ctx.Value("i", 0), ctx.Value("i", 0)
    procs = [
        ctx.Process(target=_worker, args=(str(tmp_path), "r9", per_process, per_window, window, hold, out, live, peak))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    times = [out.get(timeout=60) for _ in range(3 * per_process)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return sorted(times), peak.value


def test_concurrency_is_shared_by_processes_and_threads(tmp_path: Path) -> None:
    times, peak = _run_processes(tmp_path, per_process=6, per_window=1000, window=60, hold=0.1)
    assert len(times) == 18
    assert peak <= 3
    assert peak == 3  # and the budget is actually used


def test_window_is_shared_by_processes(tmp_path: Path) -> None:
    window, per_window = 1.0, 5
    times, _ = _run_processes(tmp_path, per_process=4, per_window=per_window, window=window, hold=0.0)
    assert len(times) == 12
    for i, start in enumerate(times):  # no sliding window holds more than per_window sends
        inside = [t for t in times[i:] if t < start + window]
        assert len(inside) <= per_window, (i, inside)
    # 12 sends at 5 per second need a little over 2 windows, not more (no fixed-window sleeping)
    assert 2.0 <= times[-1] - times[0] < 3.5
