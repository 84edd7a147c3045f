"""Asset checks fail with messages that name the realm and what is wrong."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from smartsync_pipeline.defs.checks.freshness import mirror_freshness
from smartsync_pipeline.defs.checks.reconciliation import mirror_reconciliation
from smartsync_pipeline.defs.checks.unique_ids import mirror_unique_ids
from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.mirror.snapshots import CURRENT, SnapshotStore
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    env = start_mirror_setup(tmp_path_factory.mktemp("checks"), ephemeral=True)
    mirror = next(env)
    for realm in mirror.realms:
        mirror.materialize(realm)
    yield mirror
    env.close()


def _by_asset(evaluations: list) -> dict[str, object]:
    return {e.asset_key.path[-1]: e for e in evaluations}


def test_all_checks_pass_right_after_syncing_both_realms(setup: MirrorSetup) -> None:
    evaluations = setup.check(mirror_freshness, mirror_unique_ids, mirror_reconciliation)
    assert len(evaluations) == 3 * len(ENTITIES)
    failed = [e.description for e in evaluations if not e.passed]
    assert not failed, failed
    recon = next(e for e in evaluations if e.check_name == "reconciliation" and e.asset_key.path[-1] == "bill")
    counts = {r.data["realm"]: (r.data["qbo"], r.data["mirror"]) for r in recon.metadata["counts"].records}
    assert set(counts) == set(setup.realms) and all(q == m > 0 for q, m in counts.values())


def _freshness_at(setup: MirrorSetup, moment: datetime) -> dict[str, object]:
    config = {"ops": {"mirror_freshness": {"config": {"as_of": moment.isoformat()}}}}
    return _by_asset(setup.check(mirror_freshness, run_config=config))


def test_freshness_warns_past_the_warn_window_and_errors_past_the_fail_window(setup: MirrorSetup) -> None:
    a, b = setup.realms
    now = datetime.now(UTC)
    warn = _freshness_at(setup, now + timedelta(minutes=20))  # transactions: warn 15 min, fail 30 min
    bill = warn["bill"]
    assert not bill.passed and bill.severity == dg.AssetCheckSeverity.WARN
    assert f"realm {a}: Bill is 20m" in bill.description and f"realm {b}: Bill is 20m" in bill.description
    assert "> warn window 15m 00s" in bill.description
    assert bill.metadata["stale_realms"].value == ", ".join(sorted([a, b]))
    assert warn["vendor"].passed  # parties warn after 60 min

    error = _freshness_at(setup, now + timedelta(minutes=45))
    assert not error["bill"].passed and error["bill"].severity == dg.AssetCheckSeverity.ERROR
    assert "> fail window 30m 00s" in error["bill"].description
    assert {r.data["status"] for r in error["bill"].metadata["ages"].records} == {"fail"}


def test_reconciliation_fails_for_the_realm_that_changed_in_qbo_without_a_sync(setup: MirrorSetup) -> None:
    changed, untouched = setup.realms
    changes = setup.companies[0].simulate(40, seed=11)
    created = {c["entity"] for c in changes if c["op"] == "create"}
    assert created
    results = _by_asset(setup.check(mirror_reconciliation))
    failing = {name for name, e in results.items() if not e.passed}
    assert failing
    for name in failing:
        e = results[name]
        assert e.severity == dg.AssetCheckSeverity.ERROR
        assert f"realm {changed}:" in e.description and f"realm {untouched}" not in e.description
        assert "QBO " in e.description and " vs mirror " in e.description
    # A sync of that realm makes the mirror equal again.
    setup.materialize(changed)
    assert all(e.passed for e in setup.check(mirror_reconciliation))


def test_unique_ids_names_the_realm_and_id_stored_twice(setup: MirrorSetup) -> None:
    store = SnapshotStore(setup.home, setup.realms[0])
    info = store.current()
    forged_name = f"mirror-{info.generation + 1:08d}.duckdb"
    forged = store.dir / forged_name
    shutil.copyfile(info.path, forged)
    os.chmod(forged, 0o644)
    con = duckdb.connect(str(forged))
    try:
        realm, qbo_id = con.execute("SELECT realm_id, id FROM vendor ORDER BY id_key LIMIT 1").fetchall()[0]
        con.execute("INSERT INTO vendor SELECT * FROM vendor WHERE realm_id = ? AND id = ?", [realm, qbo_id])
    finally:
        con.close()
    doc = json.loads((store.dir / CURRENT).read_text())
    doc.update(generation=info.generation + 1, file=forged_name)
    (store.dir / CURRENT).write_text(json.dumps(doc))

    results = _by_asset(setup.check(mirror_unique_ids))
    vendor = results["vendor"]
    assert not vendor.passed
    assert f"in realm(s) {realm}: {realm}/{qbo_id} x2" in vendor.description
    assert vendor.metadata["duplicate_ids"].value == 1
    assert vendor.metadata["snapshot_generations"].value[realm] == info.generation + 1
    assert results["bill"].passed
