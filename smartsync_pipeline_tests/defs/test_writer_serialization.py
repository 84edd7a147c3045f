"""Mirror writers never write the database at the same time: two runs materializing the same company
at once both succeed, one after the other, through the sync engine's own locks (no Dagster pool, whose
slot a SIGKILLed run would keep forever)."""

from __future__ import annotations

import os
import subprocess

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup
from smartsync_pipeline_tests.reliability.sync_runner import REPO_ROOT, sync_command


@pytest.fixture
def setup(tmp_path):
    yield from start_mirror_setup(tmp_path, realms=1)


def test_the_repository_instance_has_no_pool_that_a_dead_run_could_keep(tmp_path) -> None:
    from smartsync_pipeline_tests.defs.conftest import make_dagster_home

    with dg.DagsterInstance.from_config(str(make_dagster_home(tmp_path))) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    from smartsync_pipeline.definitions import defs

    assert defs.resolve_assets_def(MIRROR_KEYS["Bill"]).op.pool is None


def test_two_runs_of_one_company_at_once_both_succeed_one_after_the_other(setup: MirrorSetup) -> None:
    """Two real `dagster asset materialize` processes started together for the same company."""
    realm = setup.realms[0]
    env = {**os.environ, "SMARTSYNC_HOME": str(setup.home.root), "DAGSTER_HOME": str(setup.dagster_home)}
    procs = [
        subprocess.Popen(sync_command("dagster", realm), env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-1500:] for e in errors]
    runs = setup.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
    assert len(runs) == 2
    created = []
    for run in runs:
        records = setup.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=MIRROR_KEYS["Bill"], asset_partitions=[realm]), limit=10
        ).records
        created += [r.asset_materialization.metadata["created"].value for r in records if r.run_id == run.run_id]
    # One run did the backfill; the other waited for the engine's lock and then found nothing new.
    assert sorted(created)[0] == 0 and sorted(created)[1] > 100, created
    with MirrorDatabase(setup.home).inspect() as con:
        assert change_log.verify(con).ok
        assert con.execute("SELECT count(*) FROM change_log WHERE entity = 'Bill'").fetchall()[0][0] == max(created)
