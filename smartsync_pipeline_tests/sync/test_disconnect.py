"""``smartsync disconnect --realm R [--purge]``: the company stops being synced (credentials, fleet
index, analyst entry point and Dagster partitions no longer name it); ``--purge`` deletes its data and
credentials; every other company's chain still verifies and keeps syncing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from smartsync_pipeline.cli.company_commands import connect_company
from smartsync_pipeline.mirror import analyst, change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.fleet_state import FleetState
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.defs.conftest import make_dagster_home


def cli(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SMARTSYNC_HOME": str(home.root)}
    argv = [sys.executable, "-m", "smartsync_pipeline.cli.main", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)


def test_disconnect_then_purge_leave_every_other_company_intact(
    sandbox_factory, smartsync_home, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_home = make_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    sandbox = sandbox_factory(realms=3)
    a, b, c = (ConnectedCompany(smartsync_home, sandbox, i) for i in range(3))
    home = a.home
    engine = a.engine()
    for company in (a, b, c):
        engine.sync(company.realm_id)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert sorted(instance.get_dynamic_partitions("realms")) == sorted([a.realm_id, b.realm_id, c.realm_id])

    out = cli(home, "disconnect", "--realm", b.realm_id)
    assert out.returncode == 0, out.stderr
    assert "disconnected" in out.stdout and "Dagster" in out.stdout
    shard_b = home.realm(b.realm_id)
    assert b.realm_id not in CompanyStore(home).realms()
    assert shard_b.mirror_path.exists() and shard_b.disconnected_marker.exists()  # data kept
    assert sorted(p.name for p in shard_b.parked_credentials_dir.iterdir()) == [
        f"{b.realm_id}.json",
        f"{b.realm_id}.tokens.json",
    ]
    refused = cli(home, "sync", "--realm", b.realm_id)
    assert refused.returncode == 1 and "disconnected" in refused.stderr
    far_future = datetime.now(UTC) + timedelta(days=30)
    assert b.realm_id not in FleetState(home).stale(far_future)
    assert sorted(FleetState(home).stale(far_future)) == sorted([a.realm_id, c.realm_id])
    assert b.realm_id not in home.analyst_script_path.read_text()
    con = analyst.connect(home)
    assert analyst.attached_realms(con) == sorted([a.realm_id, c.realm_id])
    con.close()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert sorted(instance.get_dynamic_partitions("realms")) == sorted([a.realm_id, c.realm_id])

    purged = cli(home, "disconnect", "--realm", c.realm_id, "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not home.realm(c.realm_id).root.exists()
    store = CompanyStore(home)
    assert not store.connection_path(c.realm_id).exists() and not store.tokens_path(c.realm_id).exists()
    assert store.realms() == [a.realm_id]
    assert c.realm_id not in FleetState(home).realms()
    # The one company left with a published snapshot gets its one-company link back.
    assert home.analyst_path.resolve() == home.realm(a.realm_id).current_link.resolve()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_dynamic_partitions("realms") == [a.realm_id]

    # Every other company: chain intact, still syncing.
    audit = cli(home, "audit", "verify")
    assert audit.returncode == 0, audit.stderr
    assert f"company {a.realm_id}: change log intact" in audit.stdout
    assert f"company {b.realm_id}: change log intact" in audit.stdout  # disconnected, data kept
    a.simulate(20, seed=2)
    assert a.engine().sync(a.realm_id).changed > 0
    for realm in (a.realm_id, b.realm_id):
        with MirrorDatabase(home, realm).inspect() as con:
            assert change_log.verify(con).ok

    # Connecting B again brings it back where it was: indexed, in the analyst entry point.
    info = sandbox.info
    connect_company(
        home, realm_id=b.realm_id, api_base=info["api_base"], token_url=info["token_url"],
        client_id=info["client_id"], client_secret=info["client_secret"], refresh_token="fresh-token",
        verify=False,
    )  # fmt: skip
    assert not shard_b.disconnected_marker.exists() and not shard_b.parked_credentials_dir.exists()
    assert b.realm_id in FleetState(home).realms()
    assert b.realm_id in home.analyst_script_path.read_text()


def test_disconnecting_an_unknown_company_is_a_clear_error(connected_company) -> None:
    out = cli(connected_company.home, "disconnect", "--realm", "123456789")
    assert out.returncode == 1
    assert "123456789" in out.stderr and "neither connected" in out.stderr
    assert "Traceback" not in out.stderr


def test_purge_then_connect_again_starts_a_new_trail_that_verifies(
    sandbox_factory, smartsync_home, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purged company's chain is gone with its shard; connected again, it starts a new chain at 1.
    Dagster's event log still holds the old chain's heads: neither ``audit verify`` nor the change-log
    asset may call the new chain a rewritten one."""
    from smartsync_pipeline.defs.assets.change_log import ANCHORS, CHANGE_LOG_KEY
    from smartsync_pipeline.defs.assets.change_log import change_log as change_log_asset
    from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource

    dagster_home = make_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    sandbox = sandbox_factory()
    a = ConnectedCompany(smartsync_home, sandbox)
    home = a.home
    resources = {"mirror_sync": MirrorSyncResource(smartsync_home=str(home.root))}
    old = a.engine().sync(a.realm_id)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert dg.materialize([change_log_asset], instance=instance, resources=resources).success

    live = CompanyStore(home).tokens(a.realm_id).load().refresh_token  # the sandbox rotated the first one
    purged = cli(home, "disconnect", "--realm", a.realm_id, "--purge")
    assert purged.returncode == 0, purged.stderr
    info = sandbox.info
    connect_company(
        home, realm_id=a.realm_id, api_base=info["api_base"], token_url=info["token_url"],
        client_id=info["client_id"], client_secret=info["client_secret"], refresh_token=live, verify=False,
    )  # fmt: skip
    new = a.engine().sync(a.realm_id)
    assert new.change_id_first == 1 and new.chain_head_hash != old.chain_head_hash

    audit = cli(home, "audit", "verify")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "change log intact" in audit.stdout and "head matches the anchor" in audit.stdout
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert dg.materialize([change_log_asset], instance=instance, resources=resources).success
        latest = instance.get_latest_materialization_event(CHANGE_LOG_KEY).asset_materialization
        anchor = latest.metadata[ANCHORS].value[a.realm_id]
    assert (anchor["head_change_id"], anchor["head_row_hash"]) == (new.change_id_last, new.chain_head_hash)
