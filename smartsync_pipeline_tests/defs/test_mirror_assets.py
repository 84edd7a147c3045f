"""Materializing mirror partitions: one engine sync per run, mirror equal to the sandbox, metadata trail."""

from __future__ import annotations

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.sync.reconcile import reconcile
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    yield from start_mirror_setup(tmp_path_factory.mktemp("mirror_assets"))


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    out = {}
    for event in result.get_asset_materialization_events():
        m = event.materialization
        out[m.asset_key.path[-1]] = {k: v.value for k, v in m.metadata.items()}
    return out


def test_connect_registered_both_realms_as_partitions(setup: MirrorSetup) -> None:
    assert sorted(setup.instance.get_dynamic_partitions("realms")) == sorted(setup.realms)


def test_first_materialization_syncs_the_realm_and_records_metadata(setup: MirrorSetup) -> None:
    realm = setup.realms[0]
    result = setup.materialize(realm)
    assert result.success
    meta = _metadata(result)
    assert set(meta) == {spec.table for spec in ENTITIES}

    engine = setup.companies[0].engine()
    counts = reconcile(engine.client(realm), SnapshotReader(setup.home), realm, compare_ids=True)
    assert counts.equal, {n: e.describe() for n, e in counts.entities.items() if not e.equal}

    first_ids = {m["change_id_first"] for m in meta.values()}
    last_ids = {m["change_id_last"] for m in meta.values()}
    api_calls = {m["api_calls"] for m in meta.values()}
    assert first_ids == {1} and len(last_ids) == 1 and len(api_calls) == 1  # ONE sync for all entities
    total_created = 0
    for spec in ENTITIES:
        m = meta[spec.table]
        qbo = counts.entities[spec.name].qbo_count
        assert qbo > 0
        assert m["created"] == qbo and m["rows_active"] == qbo and m["dagster/row_count"] == qbo
        assert m["updated"] == 0 and m["deleted"] == 0 and m["unchanged"] == 0
        assert m["fetched"] == qbo
        assert m["realm"] == realm and m["mode"] == "full" and m["requested_mode"] == "auto"
        assert m["trigger"] == "manual"
        assert m["watermark_before"] == "never" and isinstance(m["watermark_after"], float)
        assert m["fallback_reason"] == "first sync"
        assert m["snapshot_generation"] == 1
        assert len(m["chain_head_hash"]) == 64
        assert isinstance(m["duration_seconds"], float)
        changed = m["changed_ids"]
        assert isinstance(changed, dg.TableMetadataValue)
        assert len(changed.records) == min(50, qbo)
        assert {r.data["op"] for r in changed.records} == {"create"}
        total_created += qbo
    assert last_ids == {total_created}  # one change row per created object, numbered from 1

    # Every change row names this Dagster run and its trigger.
    with SnapshotReader(setup.home).cursor(realm_id=realm) as (cur, _):
        assert cur.execute("SELECT DISTINCT run_id, trigger FROM change_log").fetchall() == [(result.run_id, "manual")]

    # The run recorded a materialization for exactly this partition of every mirror asset.
    for key in MIRROR_KEYS.values():
        event = setup.instance.get_latest_materialization_event(key)
        assert event is not None and event.asset_materialization.partition == realm


def test_second_materialization_is_incremental_and_changes_nothing(setup: MirrorSetup) -> None:
    realm = setup.realms[0]
    result = setup.materialize(realm, tags={"smartsync/trigger": "schedule"})
    meta = _metadata(result)
    for spec in ENTITIES:
        m = meta[spec.table]
        assert (m["created"], m["updated"], m["deleted"]) == (0, 0, 0), spec.name
        # Entities outside QBO's CDC were listed by the first run: the sweep leaves them until due.
        assert m["mode"] == ("incremental" if spec.in_cdc else "not_due") and m["trigger"] == "schedule"
        assert m["change_id_last"] == "none"
        assert m["watermark_before"] != "never"
        assert m["watermark_after"] >= m["watermark_before"]
    assert {m["api_calls"] for m in meta.values()} == {1}  # one CDC request for all 33 entities


def test_subset_syncs_only_selected_entities_of_the_other_realm(setup: MirrorSetup) -> None:
    realm = setup.realms[1]
    result = setup.materialize(realm, ["Bill", "Vendor"], mode="full")
    meta = _metadata(result)
    assert set(meta) == {"bill", "vendor"}
    assert {m["realm"] for m in meta.values()} == {realm}
    assert {m["mode"] for m in meta.values()} == {"full"}
    reader = SnapshotReader(setup.home)
    state = reader.current(realm).state
    assert sorted(state[realm]) == ["Bill", "Vendor"]
    assert state[realm]["Bill"]["rows_active"] == meta["bill"]["rows_active"] > 0
    # The first realm is untouched by the second realm's sync: its own shard, its own state.
    assert sorted(state) == [realm]
    assert len(reader.current(setup.realms[0]).state[setup.realms[0]]) == len(ENTITIES)


def test_trigger_comes_from_dagster_system_tags(setup: MirrorSetup) -> None:
    result = setup.materialize(setup.realms[0], ["Term"], tags={"dagster/backfill": "abc"})
    assert _metadata(result)["term"]["trigger"] == "backfill"


def test_invalid_mode_fails_the_run_with_the_allowed_modes(setup: MirrorSetup) -> None:
    result = setup.materialize(setup.realms[0], ["Term"], mode="sideways", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.step_failure_data.error)
    assert "sideways" in message and "auto, full, incremental" in message


def test_snapshot_checks_run_with_the_sync(setup: MirrorSetup) -> None:
    result = setup.materialize(setup.realms[0], ["Bill", "Invoice"], checks=True)
    evaluations = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {(t, c) for t in ("bill", "invoice") for c in ("freshness", "unique_ids")}
    assert evaluations[("bill", "unique_ids")].passed
    # The run checks its own company (just synced: fresh); the second realm never synced Invoice, which
    # the description shows beside it without failing this company's run.
    invoice = evaluations[("invoice", "freshness")]
    assert invoice.passed, invoice.description
    assert f"Other companies (checked in their own runs): realm {setup.realms[1]}: never synced" in (
        invoice.description
    )
