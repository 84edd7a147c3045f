"""One trail: `smartsync sync` from a shell is recorded in Dagster like a scheduled sync, so Dagster's
view of a company partition and the mirror agree whoever synced (fails before: the CLI recorded
nothing, the instance had no materialization for the partition)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg

from smartsync_pipeline.entities import entity
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.defs.conftest import make_dagster_home

SMARTSYNC = str(Path(sys.executable).with_name("smartsync"))


def _latest(instance: dg.DagsterInstance, name: str, realm: str) -> dg.AssetMaterialization | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["qbo", entity(name).table]), asset_partitions=[realm]),
        limit=1,
        ascending=False,
    ).records
    return records[0].asset_materialization if records else None


def test_a_cli_sync_is_a_materialization_of_the_company_partition(
    connected_company: ConnectedCompany, tmp_path: Path
) -> None:
    company = connected_company
    dagster_home = make_dagster_home(tmp_path / "dagster_home")
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root), "DAGSTER_HOME": str(dagster_home)}
    names = ["Term", "Vendor"]
    for full in (True, False):  # the first (full) sync, then an incremental one
        args = [SMARTSYNC, "sync", "--json", *[a for n in names for a in ("--entity", n)]] + (["--full"] * full)
        out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=True)
        report = json.loads(out.stdout)
        info = SnapshotReader(company.home).current(company.realm_id)
        assert info is not None
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            for name in names:
                mat = _latest(instance, name, company.realm_id)
                assert mat is not None, f"no materialization of {name} for the company partition"
                meta = {k: v.value for k, v in mat.metadata.items()}
                state = info.entity_state(company.realm_id, name)
                assert meta["sync_id"] == report["sync_id"]
                assert meta["trigger"] == "manual"
                assert meta["requested_mode"] == ("full" if full else "auto")
                assert meta["mode"] == state["last_mode"]
                assert meta["rows_active"] == state["rows_active"]
                assert meta["snapshot_generation"] == info.generation
                watermark = datetime.fromisoformat(state["watermark"])
                assert abs(meta["watermark_after"] - watermark.timestamp()) < 0.001
