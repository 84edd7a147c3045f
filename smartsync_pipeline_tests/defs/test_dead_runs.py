"""A run whose process is killed with SIGKILL ends as failed (issue 10 item 8) instead of staying STARTED
forever: the ``dead_run_reaper`` sensor finds that the worker pid the run recorded is gone. Real
processes: a `dagster asset materialize` run of a real sync, killed mid-run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from smartsync_pipeline.defs.partitions import REALMS_PARTITIONS_NAME
from smartsync_pipeline.defs.sensors.dead_runs import dead_run_reaper, worker_gone
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.reliability.sync_runner import REPO_ROOT, sync_command

pytestmark = pytest.mark.slow


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)  # poll interval; the deadline decides


def _reap(instance: dg.DagsterInstance) -> str:
    result = dead_run_reaper(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason)
    return result.skip_message or ""


def test_a_sigkilled_run_ends_as_failed(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory()
    company = ConnectedCompany(tmp_path / "home", sandbox)
    sandbox.control("faults", {"latency_ms": 300})  # keep the run busy long enough to be killed mid-run
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root), "DAGSTER_HOME": str(dagster_home)}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_dynamic_partitions(REALMS_PARTITIONS_NAME, [company.realm_id])
        worker = subprocess.Popen(
            sync_command("dagster", company.realm_id), env=env, cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:

            def started() -> list[dg.DagsterRun]:
                return instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))

            _wait(started, 180, "the run to start")
            [run] = started()
            # While its worker lives, the run is left alone.
            assert _reap(instance) == "every STARTED run has a live worker"
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)

        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # what Dagster alone does
        assert run.run_id in _reap(instance)
        ended = instance.get_run_by_id(run.run_id)
        assert ended.status == dg.DagsterRunStatus.FAILURE
        [failure] = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        assert f"worker process {worker.pid}" in failure.event_log_entry.dagster_event.message
        assert _reap(instance) == "every STARTED run has a live worker"  # nothing left to end


def test_a_reused_pid_is_not_mistaken_for_the_worker() -> None:
    me = os.getpid()
    assert worker_gone(me, time.time()) is None  # alive, started before the run: still the worker
    assert "newer process" in (worker_gone(me, 0.0) or "")  # this process started long after "the run"
