"""The repository's dagster.yaml really limits pool ``smartsync_mirror`` to one step at a time."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS, MIRROR_POOL
from smartsync_pipeline.mirror.snapshots import SnapshotStore
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, make_dagster_home, start_mirror_setup


@pytest.fixture
def setup(tmp_path):
    yield from start_mirror_setup(tmp_path, realms=1)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_instance_config_gives_the_mirror_pool_one_slot(tmp_path) -> None:
    with dg.DagsterInstance.from_config(str(make_dagster_home(tmp_path))) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert pools.pool_granularity.value == "op"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4


def test_a_mirror_step_waits_while_another_holds_the_pool_slot(setup: MirrorSetup) -> None:
    storage = setup.instance.event_log_storage
    assert storage.supports_global_concurrency_limits
    storage.initialize_concurrency_limit_to_default(MIRROR_POOL)
    assert storage.claim_concurrency_slot(MIRROR_POOL, "another-run", "qbo_mirrors").is_claimed

    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = setup.materialize(setup.realms[0], ["Term"])
        except BaseException as exc:  # reported by the assertions below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    _wait_for(lambda: storage.get_concurrency_info(MIRROR_POOL).pending_step_count == 1, 60, "a pending claim")
    info = storage.get_concurrency_info(MIRROR_POOL)
    assert info.slot_count == 1 and info.active_run_ids == {"another-run"}
    assert worker.is_alive()
    assert SnapshotStore(setup.home).current() is None  # the sync has not started
    assert setup.instance.get_latest_materialization_event(MIRROR_KEYS["Term"]) is None

    storage.free_concurrency_slots_for_run("another-run")
    worker.join(timeout=120)
    assert not worker.is_alive() and "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, dg.ExecuteInProcessResult) and result.success
    assert SnapshotStore(setup.home).current().state[setup.realms[0]]["Term"]["rows_active"] > 0
    assert storage.get_concurrency_info(MIRROR_POOL).active_slot_count == 0  # released after the step
