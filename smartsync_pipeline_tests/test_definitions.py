"""The code location loads (in process and with Dagster's own CLI), without touching any state, and
declares what the design says: one partitioned multi-asset with freshness policies from the
registry, the change log, checks, jobs, schedules and sensors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from smartsync_pipeline.definitions import defs
from smartsync_pipeline.defs.assets.mirrors import qbo_mirrors
from smartsync_pipeline.entities import ENTITIES

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_definitions_are_loadable() -> None:
    dg.Definitions.validate_loadable(defs)


def test_dagster_cli_validates_the_module_without_creating_any_state(tmp_path: Path) -> None:
    smartsync_home = tmp_path / "never_created"
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {**os.environ, "SMARTSYNC_HOME": str(smartsync_home), "DAGSTER_HOME": str(dagster_home)}
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "smartsync_pipeline.definitions"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr
    assert not smartsync_home.exists()  # loading opened no mirror, snapshot, inbox or company file


def test_one_mirror_asset_per_registry_entity_with_its_freshness_windows() -> None:
    graph = defs.resolve_asset_graph()
    for spec in ENTITIES:
        node = graph.get(dg.AssetKey(["qbo", spec.table]))
        assert node.group_name == "mirrors"
        assert node.partitions_def == dg.DynamicPartitionsDefinition(name="realms")
        policy = node.freshness_policy
        assert policy.fail_window.to_timedelta() == spec.freshness.fail
        assert policy.warn_window.to_timedelta() == spec.freshness.warn
    # Subsettable (one engine call per run) and no Dagster pool: the engine's file locks serialize writers.
    assert qbo_mirrors.can_subset and qbo_mirrors.op.pool is None
    assert len(qbo_mirrors.keys) == len(ENTITIES)  # ONE multi-asset materializes them all


def test_change_log_depends_on_every_mirror_and_is_audited() -> None:
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["qbo", "change_log"]))
    assert node.group_name == "audit" and not node.is_partitioned
    assert node.parent_keys == {dg.AssetKey(["qbo", spec.table]) for spec in ENTITIES}
    checks = {(k.asset_key.path[-1], k.name) for k in graph.asset_check_keys}
    assert ("change_log", "chain_intact") in checks
    for spec in ENTITIES:
        for name in ("freshness", "reconciliation", "unique_ids"):
            assert (spec.table, name) in checks


def test_schedules_sensors_and_jobs() -> None:
    running = dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_schedule_def("cdc_sweep").cron_schedule == "*/15 * * * *"
    daily = defs.resolve_schedule_def("daily_full_reconciliation")
    assert daily.cron_schedule == "0 3 * * *" and daily.execution_timezone == "UTC"
    assert {defs.resolve_schedule_def(n).default_status for n in ("cdc_sweep", "daily_full_reconciliation")} == {
        running
    }
    for name in ("mirror_freshness_enforcer", "webhook_inbox"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    job = defs.resolve_job_def("mirror_sync")
    assert job.partitions_def == dg.DynamicPartitionsDefinition(name="realms")
    assert set(job.asset_layer.selected_asset_keys) == {dg.AssetKey(["qbo", s.table]) for s in ENTITIES}


def test_the_all_company_check_sweep_is_its_own_rarer_schedule() -> None:
    sweep = defs.resolve_schedule_def("weekly_company_checks_sweep")
    assert sweep.cron_schedule == "0 4 * * 0" and sweep.job_name == "company_checks_sweep"
    job = defs.resolve_job_def("company_checks_sweep")
    assert job.partitions_def is None  # no partition: the checks look at every company
    assert {k.name for k in job.asset_layer.asset_graph.asset_check_keys} >= {"freshness", "reconciliation"}


def test_loading_the_code_location_prints_no_dagster_warning(tmp_path: Path) -> None:
    """The demo and `make ui` used to print a BetaWarning about a sensor's `owners` that no sensor here sets
    (Dagster's own resource binding passes it); a fresh process that loads the repository warns about nothing."""
    env = {**os.environ, "SMARTSYNC_HOME": str(tmp_path / "s"), "DAGSTER_HOME": str(tmp_path / "d")}
    code = "from smartsync_pipeline.definitions import defs; defs.get_repository_def()"
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
