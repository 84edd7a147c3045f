"""Checks attached to a sync run check that run's company only (issue 10 item 6): the QBO requests one
company's daily full-sync run makes (sync + freshness, unique ids and reconciliation checks) are the
same with 1 and with 5 connected companies, counted at the sandbox. Every company is checked at once
by the separate all-company sweep."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.run_requests import FULL_SYNC_CHECKS, sync_run_request
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.defs.conftest import MirrorSetup

REALMS = 5
pytestmark = pytest.mark.slow


def _setup(root: Path, sandbox: SandboxProcess, companies: int, instance: dg.DagsterInstance) -> MirrorSetup:
    """A fresh SMARTSYNC_HOME with the sandbox's first ``companies`` realms connected and registered."""
    connected = [ConnectedCompany(root / "smartsync_home", sandbox, i) for i in range(companies)]
    instance.add_dynamic_partitions("realms", [c.realm_id for c in connected])
    return MirrorSetup(instance, root / "dagster_home", connected[0].home, sandbox, connected)


def _daily_run_requests(setup: MirrorSetup) -> tuple[dg.ExecuteInProcessResult, dict[str, int]]:
    """The daily full sync of the first company, with its checks; the QBO requests it made, by kind."""
    request = sync_run_request(setup.realms[0], None, trigger="schedule", mode="full", checks=FULL_SYNC_CHECKS)
    setup.sandbox.control("stats/reset")
    result = setup.run_request(request)
    return result, setup.sandbox.control("stats", method="GET")["requests"]


def test_one_sync_runs_checks_cost_the_same_with_1_and_5_companies(tmp_path: Path) -> None:
    # Two identical sandboxes (same seed, five companies each): connecting a company rotates its
    # refresh token, so each set-up gets its own.
    one_sandbox = SandboxProcess.start(scale="small", seed=7, realms=REALMS)
    five_sandbox = SandboxProcess.start(scale="small", seed=7, realms=REALMS)
    try:
        with dg.DagsterInstance.ephemeral() as one_instance, dg.DagsterInstance.ephemeral() as five_instance:
            one = _setup(tmp_path / "one", one_sandbox, 1, one_instance)
            five = _setup(tmp_path / "five", five_sandbox, REALMS, five_instance)
            assert one.realms[0] == five.realms[0]
            one_result, one_requests = _daily_run_requests(one)
            five_result, five_requests = _daily_run_requests(five)
    finally:
        one_sandbox.stop()
        five_sandbox.stop()
    assert one_result.success and five_result.success
    assert one_requests == five_requests, (one_requests, five_requests)
    assert one_requests.get("token", 0) == 1  # the other companies' credentials were never used

    realm = five.realms[0]
    evaluations = five_result.get_asset_check_evaluations()
    assert len(evaluations) == len(FULL_SYNC_CHECKS) * len(MIRROR_KEYS)
    for e in evaluations:
        assert e.passed, e.description  # the run's company was just synced; the four unsynced do not fail it
    reconciliation = [e for e in evaluations if e.check_name == "reconciliation"]
    assert all({r.data["realm"] for r in e.metadata["counts"].records} == {realm} for e in reconciliation)
    # Freshness still shows every company at a glance, without the others deciding the result.
    bill = next(e for e in evaluations if e.check_name == "freshness" and e.asset_key == MIRROR_KEYS["Bill"])
    assert "Other companies (checked in their own runs)" in bill.description
    assert {r.data["realm"] for r in bill.metadata["ages"].records} == set(five.realms)


def test_the_sweep_checks_every_company_in_one_run(mirror_setup: MirrorSetup) -> None:
    a, b = mirror_setup.realms
    mirror_setup.materialize(a)
    job = mirror_setup.definitions().resolve_job_def("company_checks_sweep")
    result = job.execute_in_process(instance=mirror_setup.instance)
    reconciliation = [e for e in result.get_asset_check_evaluations() if e.check_name == "reconciliation"]
    assert len(reconciliation) == len(MIRROR_KEYS)
    for e in reconciliation:
        assert {r.data["realm"] for r in e.metadata["counts"].records} == {a, b}
        assert not e.passed and f"realm {b}:" in e.description and f"realm {a}:" not in e.description
