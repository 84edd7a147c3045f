"""Right after ``smartsync connect`` the mirror assets' freshness checks are evaluated (issue 14 item 5):
the UI shows each company's state at once instead of "Not Evaluated" until the first sync run, on a
real instance in a temporary DAGSTER_HOME."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.checks.freshness import FRESHNESS_CHECK
from smartsync_pipeline.defs.company_status import record_freshness_checks
from smartsync_pipeline.home import Home
from smartsync_pipeline.sync.engine import SyncEngine

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECK_KEYS = [dg.AssetCheckKey(key, FRESHNESS_CHECK) for key in MIRROR_KEYS.values()]


def _latest(dagster_home: Path) -> dict[dg.AssetCheckKey, object]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return instance.event_log_storage.get_latest_asset_check_execution_by_key(CHECK_KEYS)


def test_connect_evaluates_the_freshness_checks(
    sandbox_factory, smartsync_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    sandbox = sandbox_factory(seed=31)
    line = tmp_path / "sandbox.json"
    line.write_text(json.dumps(sandbox.info) + "\n")

    result = CliRunner().invoke(cli, ["connect", "--from-sandbox", str(line)], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    latest = _latest(dagster_home)
    assert set(latest) == set(CHECK_KEYS), "every mirror asset's freshness check is evaluated"
    for record in latest.values():
        evaluation = record.event.dagster_event.event_specific_data
        assert record.status.value == "FAILED"
        assert f"realm {sandbox.realm_id}: " in evaluation.description and "never synced" in evaluation.description

    # After a sync, the same evaluation says fresh, with the company's age.
    SyncEngine(Home(smartsync_home)).sync(sandbox.realm_id)
    assert record_freshness_checks(Home(smartsync_home)) == len(CHECK_KEYS)
    for record in _latest(dagster_home).values():
        evaluation = record.event.dagster_event.event_specific_data
        assert record.status.value == "SUCCEEDED", evaluation.description
        assert evaluation.description.startswith("fresh in 1 realm(s); oldest realm ")
