"""On-demand refreshes are recorded in Dagster by the reader's trail without the read waiting for
Dagster's storage: every refresh ends up as one materialization of its company partition, whether
the reader is closed or the process just ends, and the writer thread goes away with the reader."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import dagster as dg
import pytest

from smartsync_pipeline_tests.defs.conftest import make_dagster_home


def on_demand_sync_ids(dagster_home, realm_id: str) -> list[str]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["qbo", "bill"]), asset_partitions=[realm_id]), limit=1000
        ).records
    return sorted(
        r.asset_materialization.metadata["sync_id"].value
        for r in records
        if r.asset_materialization.tags.get("smartsync/trigger") == "on_demand"
    )


@pytest.fixture
def recorded_company(connected_company, tmp_path, monkeypatch):
    dagster_home = make_dagster_home(tmp_path / "dagster")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    connected_company.engine().sync()
    return connected_company, dagster_home


def test_every_refresh_is_recorded_once_and_closing_the_reader_stops_the_writer(recorded_company):
    company, dagster_home = recorded_company
    threads_before = threading.active_count()
    reader = company.reader()
    sync_ids = []
    for seed in range(3):
        company.simulate(5, seed=30 + seed)
        result = reader.read("Bill", company.realm_id, max_age=0)
        assert result.provenance.source == "api"
        sync_ids.append(result.provenance.sync_id)
    reader.close()  # flushes what the writer thread has not stored yet
    assert on_demand_sync_ids(dagster_home, company.realm_id) == sorted(sync_ids)
    assert threading.active_count() == threads_before


def test_a_process_that_ends_without_closing_its_reader_still_records_its_refreshes(recorded_company):
    company, dagster_home = recorded_company
    company.simulate(5, seed=7)
    code = textwrap.dedent(
        f"""
        from smartsync_pipeline.smart.reader import SmartReader
        # As ConnectedCompany.reader: a loaded machine's slow refresh must not turn into a stale answer.
        reader = SmartReader({str(company.home.root)!r}, stale_answer_after_seconds=30.0)
        print(reader.read("Bill", {company.realm_id!r}, max_age=0).provenance.sync_id)
        """
    )
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "SMARTSYNC_HOME": str(company.home.root)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    sync_id = done.stdout.split()[-1]
    assert on_demand_sync_ids(dagster_home, company.realm_id) == [sync_id]
