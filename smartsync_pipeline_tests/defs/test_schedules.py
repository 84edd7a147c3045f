"""Schedules: one run request per connected realm; the daily one is a full sync with reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.schedules import cdc_sweep, change_log_audit_hourly, daily_full_reconciliation
from smartsync_pipeline_tests.defs.conftest import (
    MirrorSetup,
    duckdb_files_hidden,
    make_dagster_home,
    start_mirror_setup,
)

TICK = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    yield from start_mirror_setup(tmp_path_factory.mktemp("schedules"))  # schedule contexts need a persistent instance


def _context(instance: dg.DagsterInstance, resources: dict | None = None) -> dg.ScheduleEvaluationContext:
    return dg.build_schedule_context(instance=instance, scheduled_execution_time=TICK, resources=resources)


def _mode(request: dg.RunRequest) -> str:
    return request.run_config["ops"]["qbo_mirrors"]["config"]["mode"]


def test_schedules_skip_without_companies(tmp_path) -> None:
    with dg.DagsterInstance.from_config(str(make_dagster_home(tmp_path))) as instance:
        for schedule in (cdc_sweep, daily_full_reconciliation):
            [skip] = list(schedule(_context(instance)))
            assert isinstance(skip, dg.SkipReason) and "no company" in skip.skip_message


def test_cdc_sweep_requests_every_entity_of_every_realm_and_skips_realms_in_flight(setup: MirrorSetup) -> None:
    requests = list(cdc_sweep(_context(setup.instance)))
    assert sorted(r.partition_key for r in requests) == sorted(setup.realms)
    for r in requests:
        assert list(r.asset_selection) == list(MIRROR_KEYS.values())
        assert _mode(r) == "auto" and r.tags["smartsync/trigger"] == "schedule"
        assert r.run_key == f"cdc_sweep:{r.partition_key}:{TICK.isoformat()}"
        assert {k.name for k in r.asset_check_keys} == {"freshness", "unique_ids"}

    busy = setup.realms[0]
    run = setup.instance.create_run_for_job(
        job_def=setup.definitions().resolve_job_def("mirror_sync"),
        status=dg.DagsterRunStatus.STARTED,
        tags={"dagster/partition": busy},
        asset_selection=frozenset([MIRROR_KEYS["Bill"]]),
    )
    try:
        assert [r.partition_key for r in cdc_sweep(_context(setup.instance))] == [setup.realms[1]]
        # The daily full sync is never skipped: it queues behind the running sync (the engine's writer lock).
        assert len(list(daily_full_reconciliation(_context(setup.instance)))) == 2
    finally:
        setup.instance.report_run_failed(run)


def test_change_log_audit_waits_for_a_first_sync(setup: MirrorSetup) -> None:
    skip = change_log_audit_hourly(_context(setup.instance, setup.resources))
    assert isinstance(skip, dg.SkipReason) and "nothing has been synced" in skip.skip_message


def test_daily_request_runs_a_full_sync_and_reconciles_counts(setup: MirrorSetup) -> None:
    realm = setup.realms[0]
    [request] = [r for r in daily_full_reconciliation(_context(setup.instance)) if r.partition_key == realm]
    assert _mode(request) == "full"
    assert request.run_config["ops"]["qbo_mirrors"]["config"]["verify_content"] is True  # the content check
    assert {k.name for k in request.asset_check_keys} == {"freshness", "unique_ids", "reconciliation"}
    result = setup.run_request(request)
    assert result.success
    meta = {
        e.materialization.asset_key.path[-1]: e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert len(meta) == len(MIRROR_KEYS)
    assert {m["mode"].value for m in meta.values()} == {"full"}
    assert {m["trigger"].value for m in meta.values()} == {"schedule"}
    reconciliation = [e for e in result.get_asset_check_evaluations() if e.check_name == "reconciliation"]
    assert len(reconciliation) == len(MIRROR_KEYS)
    # The run reconciles its own company only (just synced: equal to QBO); the other one is left to its
    # own daily run and the weekly all-company sweep.
    other = setup.realms[1]
    for e in reconciliation:
        assert e.passed, e.description
        assert "mirror equals QBO in 1 realm(s)" in e.description and other not in e.description

    with duckdb_files_hidden(setup.home):  # schedules decide from JSON state and the run history only
        audit = change_log_audit_hourly(_context(setup.instance, setup.resources))
        assert [r.partition_key for r in cdc_sweep(_context(setup.instance))] == setup.realms
    assert isinstance(audit, dg.RunRequest) and audit.run_key == f"change_log_audit:{TICK.isoformat()}"
    assert setup.run_request(audit, job_name="change_log_audit").success
