"""The fleet scheduler: the fleet policy's ticks as Dagster runs of several companies each.

First its decisions from hand-built sync state and inbox records (no processes), then the sensor, the
``fleet_sync`` job and the ``fleet/freshness`` summary against real sandbox companies.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.fleet_freshness import FLEET_FRESHNESS_KEY
from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.fleet_plan import fleet_plan
from smartsync_pipeline.defs.fleet_sync import FAILED_REALMS_TAG, FLEET_SYNC_OP, fleet_run_request, realms_of_run
from smartsync_pipeline.defs.sensors.fleet_scheduler import (
    FleetCursor,
    failed_fleet_realms,
    fleet_scheduler,
    plan_fleet_tick,
    sweep_offset,
)
from smartsync_pipeline.entities import ENTITIES, entity_names
from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox.store import InboxRecord, WebhookInbox
from smartsync_pipeline.mirror.fleet_state import FleetState
from smartsync_pipeline.qbo.webhooks import WebhookEvent
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup
from smartsync_pipeline_tests.time_travel import age_mirror

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
ALL = entity_names()


def synced(realms: list[str], at: datetime) -> dict:
    """A published sync state with every entity of ``realms`` last synced at ``at``."""
    return {r: {name: {"last_sync_at": at.isoformat()} for name in ALL} for r in realms}


def record(seq: int, realm: str, entity: str, changed: datetime, received: datetime) -> InboxRecord:
    return InboxRecord(seq, realm, entity, f"id{seq}", "Update", changed, None, received, f"k{seq}")


class CountingIndex(FleetState):
    """The real fleet state index (SQLite in a temporary home) holding ``state`` for ``realms`` (never
    synced ones registered, as a connect does), counting the companies the scheduler loads one by one."""

    def __init__(self, home: Home, state: dict, realms: list[str]) -> None:
        super().__init__(home)
        self.record_many([(realm, state.get(realm, {})) for realm in realms])
        self.loaded: list[str] = []

    def of(self, realm_id: str):
        self.loaded.append(realm_id)
        return super().of(realm_id)


def tick(now: datetime, realms: list[str], state: dict, records=(), cursor=None, busy=(), free=4, failed=None):
    with tempfile.TemporaryDirectory(prefix="fleet-index-") as folder:
        index = CountingIndex(Home(folder), state, realms)
        result = plan_fleet_tick(
            now,
            plan=fleet_plan(len(realms)),
            realms=realms,
            index=index,
            records=list(records),
            cursor=cursor or FleetCursor(),
            busy=set(busy),
            free_workers=free,
            failed=failed,
        )
    return result, index


def test_never_synced_companies_are_all_synced_at_once_in_a_few_runs() -> None:
    realms = [f"9{i:03d}" for i in range(120)]
    result, _ = tick(NOW, realms, {})
    assert sorted(c for b in result.batches for c in b.companies) == realms
    assert len(result.batches) == 4 and all(len(b.orders) <= 50 for b in result.batches)
    assert {o.reason for b in result.batches for o in b.orders} == {"initial"}
    assert all(sorted(o.entities) == sorted(ALL) for b in result.batches for o in b.orders)


def test_a_webhook_is_held_then_synced_with_exactly_its_entity_and_the_tick_reads_only_those_companies() -> None:
    realms = [f"9{i:03d}" for i in range(1000)]
    state = synced(realms, NOW - timedelta(minutes=5))
    events = [record(7, "9042", "Invoice", NOW - timedelta(minutes=4), NOW - timedelta(seconds=30))]
    first, index = tick(NOW, realms, state, events)
    assert first.batches == [] and index.loaded == ["9042"]  # held for 10 min; one company loaded
    assert first.cursor.seq == 7 and set(first.cursor.held["9042"]) == {"Invoice"}
    later, index = tick(NOW + timedelta(minutes=10), realms, state, cursor=first.cursor)
    [batch] = later.batches
    [order] = batch.orders
    assert (order.company, order.entities, order.reason) == ("9042", ("Invoice",), "webhook")
    assert later.cursor.held == {} and index.loaded == ["9042"]
    request = fleet_run_request(batch, "k")
    syncs = request.run_config["ops"][FLEET_SYNC_OP]["config"]["syncs"]
    assert syncs == [{"realm_id": "9042", "entities": ["Invoice"], "trigger": "webhook", "mode": "auto"}]
    assert request.tags["dagster/max_runtime"] == "3600" and request.tags["smartsync/trigger"] == "sensor"


def test_a_sweep_is_due_only_past_the_budget_plans_interval() -> None:
    realms = ["9001", "9002"]
    plan = fleet_plan(2)
    bill = plan.timing("Bill").sweep
    state = synced(realms, NOW - timedelta(seconds=bill - 120))
    state["9002"]["Bill"]["last_sync_at"] = (NOW - timedelta(seconds=bill + 1)).isoformat()
    result, index = tick(NOW, realms, state)
    assert [b.companies for b in result.batches] == [("9002",)]
    # A sweep past the one-day cap is the daily safety one.
    assert result.batches[0].orders[0].reason == ("safety" if bill >= 86_400 else "sweep")
    # The index is asked with the budget plan's offset above the warn window: a superset of the due
    # companies (here 9001 is not past it: its entities' sweeps are all 2 minutes or more away).
    assert sweep_offset(plan) > 0 and "9002" in index.loaded and set(index.loaded) <= set(realms)


def test_busy_companies_wait_and_keep_their_events() -> None:
    realms = ["9001"]
    state = synced(realms, NOW - timedelta(minutes=5))
    events = [record(3, "9001", "Bill", NOW - timedelta(minutes=2), NOW - timedelta(minutes=1))]
    result, _ = tick(NOW + timedelta(minutes=10), realms, state, events, busy={"9001"})
    assert result.batches == [] and "Bill" in result.cursor.held["9001"]
    result, _ = tick(NOW + timedelta(minutes=11), realms, state, cursor=result.cursor)
    assert [o.entities for b in result.batches for o in b.orders] == [("Bill",)]


def test_a_failed_company_backs_off_then_retries_its_entities() -> None:
    realms = ["9001", "9002"]
    state = synced(realms, NOW - timedelta(minutes=5))
    result, _ = tick(NOW, realms, state, failed={"9001": ["Bill", "Vendor"]})
    assert result.batches == [] and result.cursor.backoff["9001"] == pytest.approx(NOW.timestamp() + 300)
    result, _ = tick(NOW + timedelta(minutes=5), realms, state, cursor=result.cursor)
    [order] = [o for b in result.batches for o in b.orders]
    assert (order.company, order.entities) == ("9001", ("Vendor", "Bill"))
    assert result.cursor.backoff == {}


def test_events_for_unknown_companies_and_entities_are_skipped_and_named() -> None:
    result, _ = tick(
        NOW,
        ["9001"],
        synced(["9001"], NOW),
        [record(1, "7777", "Bill", NOW, NOW), record(2, "9001", "Widget", NOW, NOW)],
    )
    assert result.skipped == ["1 event(s) for Widget, which smartsync does not mirror",
                              "1 event(s) for company 7777, which is not connected"]  # fmt: skip
    assert result.cursor.seq == 2 and result.cursor.held == {}


def test_the_spend_ledger_survives_in_the_cursor_and_the_budget_guard_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTSYNC_MONTHLY_CALL_BUDGET", "3000")  # 1 company: 80 calls a day
    realms = ["9001"]
    state = synced(realms, NOW - timedelta(minutes=35))
    cursor = FleetCursor(spend=[[NOW.timestamp() - 3600, 80]])
    events = [record(1, "9001", "Bill", NOW - timedelta(minutes=29), NOW - timedelta(minutes=20))]
    result, _ = tick(NOW, realms, state, events, cursor=cursor)
    assert result.batches == []  # the day's allowance is spent: even the webhook sync waits
    assert result.cursor.spend == [[NOW.timestamp() - 3600, 80]] and "Bill" in result.cursor.held["9001"]
    result, _ = tick(NOW + timedelta(hours=23), realms, state, cursor=result.cursor)
    assert [o.reason for b in result.batches for o in b.orders] == ["webhook"]
    assert FleetCursor.parse(result.cursor.dumps()) == result.cursor
    assert FleetCursor.parse("not json") == FleetCursor()


# -- against real sandbox companies -------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    yield from start_mirror_setup(tmp_path_factory.mktemp("fleet_scheduler"), ephemeral=True)


def _evaluate(setup: MirrorSetup, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(instance=setup.instance, resources=setup.resources, cursor=cursor)
    return fleet_scheduler(context)


def _run(setup: MirrorSetup, request: dg.RunRequest, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    job = setup.definitions().resolve_job_def(request.job_name)
    return job.execute_in_process(
        instance=setup.instance, run_config=request.run_config, tags=request.tags, raise_on_error=raise_on_error
    )


def age_every_mirror(setup: MirrorSetup, seconds: float) -> None:
    """``age_mirror`` for every company (each has its own mirror)."""
    for realm in setup.realms:
        age_mirror(setup.home, seconds, realm_id=realm)


def _partitions(setup: MirrorSetup, entity: str) -> list[tuple[str, str]]:
    records = setup.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=MIRROR_KEYS[entity]), limit=100
    ).records
    return [
        (r.event_log_entry.dagster_event.partition, r.asset_materialization.metadata["trigger"].value) for r in records
    ]


def test_the_sensor_syncs_the_fleet_in_one_run_then_only_what_webhooks_name(setup: MirrorSetup) -> None:
    a, b = setup.realms
    first = _evaluate(setup, None)
    assert isinstance(first, dg.SensorResult)
    [sync, summary] = first.run_requests
    assert sync.job_name == "fleet_sync" and summary.job_name == "fleet_freshness"
    syncs = sync.run_config["ops"][FLEET_SYNC_OP]["config"]["syncs"]
    assert sorted(s["realm_id"] for s in syncs) == sorted([a, b])  # both companies, ONE run
    assert all(sorted(s["entities"]) == sorted(ALL) for s in syncs)
    result = _run(setup, sync)
    assert result.success
    for spec in ENTITIES:  # one materialization per (entity, company) partition, from one run
        assert sorted(p for p, _ in _partitions(setup, spec.name)) == sorted([a, b])
    assert realms_of_run(result.dagster_run) == [s["realm_id"] for s in syncs]

    # The summary: every company within every window.
    summary_run = _run(setup, summary)
    [mat] = summary_run.asset_materializations_for_node("fleet__freshness")
    assert mat.asset_key == FLEET_FRESHNESS_KEY
    assert mat.metadata["companies"].value == 2 and mat.metadata["companies_all_within_window"].value == 2
    rows = {r.data["entity"]: r.data for r in mat.metadata["by_entity"].value.records}
    assert set(rows) == set(ALL) and all(r["within_window"] == 2 and r["overdue"] == 0 for r in rows.values())

    # Nothing is due right after: no run. Then, with the last syncs 45 minutes back, a webhook for one
    # Bill of company a changed 40 minutes ago (its deadline has passed) becomes a run of exactly that
    # (entity, company): no other entity is anywhere near its sweep.
    second = _evaluate(setup, first.cursor)
    assert isinstance(second, dg.SensorResult) and second.run_requests == []
    age_every_mirror(setup, 45 * 60)
    changes = [c for c in setup.companies[0].simulate(20, seed=3) if c["entity"] == "Bill"]
    assert changes, "the simulator changed no Bill"
    with WebhookInbox(setup.home.inbox_path) as inbox:
        changed = datetime.now(UTC) - timedelta(minutes=40)
        inbox.add([WebhookEvent(a, "Bill", changes[0]["id"], "Update", changed)])
    third = _evaluate(setup, second.cursor)
    assert isinstance(third, dg.SensorResult)
    [webhook_run] = third.run_requests
    assert webhook_run.run_config["ops"][FLEET_SYNC_OP]["config"]["syncs"] == [
        {"realm_id": a, "entities": ["Bill"], "trigger": "webhook", "mode": "auto"}
    ]
    assert _run(setup, webhook_run).success
    assert _partitions(setup, "Bill").count((a, "webhook")) == 1
    assert json.loads(third.cursor)["held"] == {}


def test_a_company_that_fails_does_not_stop_the_others_and_is_backed_off(setup: MirrorSetup) -> None:
    a, _ = setup.realms
    config = {"syncs": [{"realm_id": "123456789", "entities": ["Term"]}, {"realm_id": a, "entities": ["Term"]}]}
    request = dg.RunRequest(job_name="fleet_sync", run_config={"ops": {FLEET_SYNC_OP: {"config": config}}})
    before = datetime.now(UTC).timestamp() - 1
    result = _run(setup, request, raise_on_error=False)
    assert not result.success
    assert (
        result.dagster_run.run_id and setup.instance.get_run_by_id(result.run_id).tags[FAILED_REALMS_TAG] == "123456789"
    )
    assert (a, "sensor") in _partitions(setup, "Term")  # the good company was synced and recorded
    assert failed_fleet_realms(setup.instance, before) == {"123456789": ["Term"]}


def test_the_definitions_declare_the_fleet_scheduler_stopped_beside_todays_schedules() -> None:
    from smartsync_pipeline.definitions import defs

    sensor = defs.resolve_sensor_def("fleet_scheduler")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # opt-in: it replaces four others
    assert {job.name for job in sensor.jobs} == {"fleet_sync", "fleet_freshness"}
    assert not defs.resolve_job_def("fleet_sync").partitions_def  # one run, many companies
    assert defs.resolve_assets_def(FLEET_FRESHNESS_KEY).group_names_by_key[FLEET_FRESHNESS_KEY] == "fleet"


def test_the_summary_counts_companies_within_quiet_overdue_and_never_per_entity() -> None:
    from smartsync_pipeline.defs.assets.fleet_freshness import summarize

    plan = fleet_plan(4)
    bill_sweep = plan.timing("Bill").sweep
    state = synced(["9001", "9002", "9003"], NOW - timedelta(minutes=10))
    state["9002"]["Bill"]["last_sync_at"] = (NOW - timedelta(hours=2)).isoformat()  # quiet: within its sweep
    state["9003"]["Bill"]["last_sync_at"] = (NOW - timedelta(seconds=bill_sweep + 3600)).isoformat()  # overdue
    summary = summarize(state, ["9001", "9002", "9003", "9004"], plan, NOW)  # 9004 never synced
    bill = summary.by_entity["Bill"]
    assert (bill.within_window, bill.quiet, bill.overdue, bill.never_synced) == (1, 1, 1, 1)
    vendor = summary.by_entity["Vendor"]
    assert (vendor.within_window, vendor.quiet, vendor.overdue, vendor.never_synced) == (3, 0, 0, 1)
    assert summary.all_within_window == 1 and summary.behind == ["9003", "9004"]
