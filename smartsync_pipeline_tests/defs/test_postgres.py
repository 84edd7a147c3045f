"""The same materialization with the instance on real PostgreSQL (written by `smartsync instance init`)."""

from __future__ import annotations

import psycopg2
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline_tests.defs.conftest import start_mirror_setup

pytestmark = pytest.mark.postgres


def test_materialization_on_a_postgres_instance(tmp_path, postgres_url: str) -> None:
    env = start_mirror_setup(tmp_path, realms=1, postgres_url=postgres_url)
    setup = next(env)
    try:
        assert type(setup.instance.run_storage).__name__ == "PostgresRunStorage"
        assert setup.instance.get_dynamic_partitions("realms") == setup.realms  # registered on connect
        assert setup.instance.event_log_storage.supports_global_concurrency_limits

        result = setup.materialize(setup.realms[0])
        assert result.success
        created = {
            e.materialization.asset_key.path[-1]: e.materialization.metadata["created"].value
            for e in result.get_asset_materialization_events()
        }
        assert set(created) == {s.table for s in ENTITIES} and all(n > 0 for n in created.values())
        again = setup.materialize(setup.realms[0])
        assert {e.materialization.metadata["created"].value for e in again.get_asset_materialization_events()} == {0}

        latest = setup.instance.get_latest_materialization_event(MIRROR_KEYS["Bill"])
        assert latest.run_id == again.run_id and latest.asset_materialization.partition == setup.realms[0]
    finally:
        env.close()

    # The events are in that database, not in a file under DAGSTER_HOME.
    with psycopg2.connect(postgres_url.replace("+psycopg2", "")) as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cur.fetchone()[0] == 2 * len(ENTITIES)
    assert not list((tmp_path / "dagster_home").rglob("*.db"))
