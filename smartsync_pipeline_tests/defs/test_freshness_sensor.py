"""Per-realm freshness enforcement: the pure decision with a controlled clock, and the sensor on a real
instance with two realms (one synced, one never synced), including the in-flight guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.sensors.freshness_enforcer import freshness_run_requests, mirror_freshness_enforcer
from smartsync_pipeline.defs.sensors.webhook_inbox import webhook_inbox
from smartsync_pipeline.defs.staleness import Staleness, entity_ages, stale_entities
from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.qbo.webhooks import WebhookEvent
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, duckdb_files_hidden, start_mirror_setup

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TRANSACTIONS = [s.name for s in ENTITIES if s.freshness.warn == timedelta(minutes=15)]  # Bill, Account, ...
PARTIES = [s.name for s in ENTITIES if s.freshness.warn == timedelta(minutes=60)]  # Vendor, Customer, ...
REFERENCE = [s.name for s in ENTITIES if s.freshness.warn == timedelta(hours=12)]  # Item, Term, ...


def _state(realm: str, synced_at: datetime) -> dict:
    return {realm: {spec.name: {"last_sync_at": synced_at.isoformat()} for spec in ENTITIES}}


def test_stale_entities_follows_each_entitys_warn_window() -> None:
    state = _state("r1", T0)
    assert stale_entities(state, "r1", T0 + timedelta(minutes=14)) == []
    assert stale_entities(state, "r1", T0 + timedelta(minutes=16)) == [
        n for n in (s.name for s in ENTITIES) if n in TRANSACTIONS
    ]
    assert set(stale_entities(state, "r1", T0 + timedelta(minutes=61))) == set(TRANSACTIONS + PARTIES)
    assert set(stale_entities(state, "r1", T0 + timedelta(hours=13))) == {s.name for s in ENTITIES}


def test_never_synced_realm_and_missing_state_are_stale() -> None:
    everything = [s.name for s in ENTITIES]
    assert stale_entities(_state("r1", T0), "r2", T0) == everything
    assert stale_entities(None, "r1", T0) == everything
    half = {"r1": {"Bill": {"last_sync_at": T0.isoformat()}}}
    assert "Bill" not in stale_entities(half, "r1", T0 + timedelta(minutes=1))
    assert "Invoice" in stale_entities(half, "r1", T0 + timedelta(minutes=1))


def test_ages_distinguish_warn_from_fail() -> None:
    ages = {a.entity: a for a in entity_ages(_state("r1", T0), "r1", T0 + timedelta(minutes=45))}
    assert ages["Bill"].status is Staleness.FAIL  # fail window 30 min
    assert ages["Vendor"].status is Staleness.FRESH  # warn window 60 min
    assert ages["Bill"].describe() == "realm r1: Bill is 45m 00s old (> fail window 30m 00s)"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    env = start_mirror_setup(tmp_path_factory.mktemp("freshness_sensor"), ephemeral=True)
    mirror = next(env)
    mirror.materialize(mirror.realms[0])  # realm 0 fresh, realm 1 never synced
    yield mirror
    env.close()


def _evaluate(setup: MirrorSetup) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(instance=setup.instance, resources=setup.resources)
    return mirror_freshness_enforcer(context)


def test_sensor_requests_one_run_for_the_stale_realm_only(setup: MirrorSetup) -> None:
    fresh, stale = setup.realms
    result = _evaluate(setup)
    assert isinstance(result, dg.SensorResult)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.partition_key == stale
    assert list(request.asset_selection) == [MIRROR_KEYS[s.name] for s in ENTITIES]
    assert request.tags["smartsync/trigger"] == "sensor"
    assert {k.name for k in request.asset_check_keys} == {"freshness", "unique_ids"}
    assert fresh not in {r.partition_key for r in result.run_requests}


def test_pure_decision_with_a_later_clock_requests_only_transactions_of_the_synced_realm(setup: MirrorSetup) -> None:
    fresh, stale = setup.realms
    later = datetime.now(UTC) + timedelta(minutes=20)
    found = setup.resources["mirror_sync"].fleet_state().stale(later)  # what the sensor asks, 20 min later
    requests, quiet = freshness_run_requests(found, busy={stale})
    assert [r.partition_key for r in requests] == [fresh]
    assert {k.path[-1] for k in requests[0].asset_selection} == {s.table for s in ENTITIES if s.name in TRANSACTIONS}
    assert {"account", "bill", "bill_payment", "invoice", "payment", "purchase"} <= {
        k.path[-1] for k in requests[0].asset_selection
    }
    assert "already queued or running" in quiet[stale]


def test_no_second_request_while_a_run_for_the_realm_is_in_flight_then_the_run_makes_it_fresh(
    setup: MirrorSetup,
) -> None:
    fresh, stale = setup.realms
    request = _evaluate(setup).run_requests[0]
    job = setup.definitions().resolve_job_def("mirror_sync")
    # A run for the stale realm is in progress (QUEUED needs a remote origin; the guard treats
    # QUEUED, NOT_STARTED, STARTING and STARTED alike).
    in_flight = setup.instance.create_run_for_job(
        job_def=job,
        status=dg.DagsterRunStatus.STARTED,
        tags={**request.tags, "dagster/partition": stale},
        asset_selection=frozenset(request.asset_selection),
    )
    skipped = _evaluate(setup)
    assert isinstance(skipped, dg.SkipReason)
    assert f"realm {stale}: stale" in skipped.skip_message and "already queued or running" in skipped.skip_message
    assert fresh not in skipped.skip_message and skipped.skip_message.endswith("the others are fresh")

    setup.instance.report_run_failed(in_flight)  # it failed: the realm is still stale, ask again
    again = _evaluate(setup)
    assert isinstance(again, dg.SensorResult) and [r.partition_key for r in again.run_requests] == [stale]

    result = setup.run_request(again.run_requests[0])  # what the daemon would launch
    assert result.success
    trigger = {e.materialization.metadata["trigger"].value for e in result.get_asset_materialization_events()}
    assert trigger == {"sensor"}
    settled = _evaluate(setup)
    assert isinstance(settled, dg.SkipReason)
    assert settled.skip_message == "every connected company is fresh"


def test_sensors_need_no_duckdb_file(setup: MirrorSetup) -> None:
    """The freshness and webhook sensors run in the daemon next to syncs: JSON state and SQLite only."""
    with WebhookInbox(setup.home.inbox_path) as inbox:
        inbox.add([WebhookEvent(setup.realms[0], "Bill", "1", "Update", T0)])
    with duckdb_files_hidden(setup.home) as moved:
        assert any(p.name == "mirror.duckdb" for p in moved) and any(p.parent.name == "snapshots" for p in moved)
        fresh = _evaluate(setup)
        assert isinstance(fresh, dg.SkipReason) and "fresh" in fresh.skip_message
        context = dg.build_sensor_context(instance=setup.instance, resources=setup.resources)
        hooks = webhook_inbox(context)
        assert [(r.partition_key, [k.path[-1] for k in r.asset_selection]) for r in hooks.run_requests] == [
            (setup.realms[0], ["bill"])
        ]


def test_a_tick_looks_at_the_stale_companies_only(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """500 fresh companies and 2 stale ones (one of them not a realm partition): the tick asks the
    fleet state index for the stale pairs and the instance about those 2 companies, never reads the
    whole fleet's state or partition list, and requests exactly one run."""
    from smartsync_pipeline.defs.partitions import REALMS_PARTITIONS_NAME
    from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
    from smartsync_pipeline.home import Home
    from smartsync_pipeline.mirror.fleet_state import FleetState

    home = Home(tmp_path / "home")
    now = datetime.now(UTC)
    fresh = [f"f{i:04d}" for i in range(500)]
    index = FleetState(home)
    index.record_many([(realm, _state(realm, now)[realm]) for realm in fresh])
    index.record_many([("s1", {}), ("gone", {})])  # never synced: due now
    asked: list[str] = []
    monkeypatch.setattr(FleetState, "view", lambda self: pytest.fail("read the whole fleet state"))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(REALMS_PARTITIONS_NAME, [*fresh, "s1"])
        real = instance.has_dynamic_partition
        monkeypatch.setattr(instance, "has_dynamic_partition", lambda name, key: asked.append(key) or real(name, key))
        monkeypatch.setattr(instance, "get_dynamic_partitions", lambda *a, **k: pytest.fail("listed every partition"))
        context = dg.build_sensor_context(
            instance=instance, resources={"mirror_sync": MirrorSyncResource(smartsync_home=str(home.root))}
        )
        result = mirror_freshness_enforcer(context)
    assert isinstance(result, dg.SensorResult)
    assert [r.partition_key for r in result.run_requests] == ["s1"]
    assert sorted(asked) == ["gone", "s1"]
