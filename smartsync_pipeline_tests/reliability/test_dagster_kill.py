"""A mirror materialization killed with SIGKILL mid-run does not block the next one.

The dead run stays STARTED until the ``dead_run_reaper`` sensor ends it (``defs/test_dead_runs.py``;
no daemon runs here), but it holds nothing that later syncs need: mirror writers are serialized by
the sync engine's file locks, which the kernel releases with the process, not by a Dagster
concurrency pool (whose slot a dead run would keep forever in Dagster 1.13 — the bug this test first
caught)."""

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
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.reliability.sync_runner import REPO_ROOT, sync_command


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)  # poll interval; the deadline decides


@pytest.mark.slow
def test_a_killed_materialization_does_not_block_the_next_one(sandbox_factory, tmp_path: Path) -> None:
    company = ConnectedCompany(tmp_path / "home", sandbox_factory())
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root), "DAGSTER_HOME": str(dagster_home)}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_dynamic_partitions(REALMS_PARTITIONS_NAME, [company.realm_id])

        first = subprocess.Popen(
            sync_command("dagster", company.realm_id), env=env, cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def started() -> bool:
            return bool(instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])))

        _wait(started, 180, "the first run to start")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        dead_run = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))[0].run_id

        second = subprocess.run(
            sync_command("dagster", company.realm_id), env=env, cwd=REPO_ROOT,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr[-2000:]
        finished = [
            r
            for r in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
            if r.run_id != dead_run
        ]
        assert len(finished) == 1
        assert instance.get_latest_materialization_event(dg.AssetKey(["qbo", "bill"])).run_id == finished[0].run_id
