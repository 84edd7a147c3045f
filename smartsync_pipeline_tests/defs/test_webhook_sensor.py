"""Webhook inbox -> run requests: right partition, exactly the named entities, each event once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from smartsync_pipeline.defs.sensors.webhook_inbox import webhook_inbox
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.qbo.webhooks import WebhookEvent
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    yield from start_mirror_setup(tmp_path_factory.mktemp("webhook_sensor"), ephemeral=True)


def _evaluate(setup: MirrorSetup, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(instance=setup.instance, resources=setup.resources, cursor=cursor)
    return webhook_inbox(context)


def _event(realm: str, entity: str, entity_id: str, op: str = "Update", minutes: int = 0) -> WebhookEvent:
    return WebhookEvent(realm, entity, entity_id, op, T0 + timedelta(minutes=minutes))


def _selected(request: dg.RunRequest) -> list[str]:
    return [k.path[-1] for k in request.asset_selection]


def test_no_inbox_yet_skips(setup: MirrorSetup) -> None:
    assert not setup.home.inbox_path.exists()
    result = _evaluate(setup, None)
    assert isinstance(result, dg.SkipReason) and "no webhook" in result.skip_message


def test_events_become_one_run_per_realm_with_exactly_the_named_entities_once(setup: MirrorSetup) -> None:
    a, b = setup.realms
    setup.instance.delete_dynamic_partition("realms", b)  # connected, but not (yet) a partition
    with WebhookInbox(setup.home.inbox_path) as inbox:
        inbox.add(
            [
                _event(a, "Bill", "1"),
                _event(a, "Bill", "2", "Create"),
                _event(a, "Vendor", "5"),
                _event(b, "Invoice", "3", "Create"),
                _event("4620816365999999999", "Bill", "7"),  # a company that is not connected
            ]
        )
    first = _evaluate(setup, None)
    assert isinstance(first, dg.SensorResult)
    by_realm = {r.partition_key: r for r in first.run_requests}
    assert set(by_realm) == {a, b}
    assert _selected(by_realm[a]) == ["vendor", "bill"]  # registry order, each entity once
    assert _selected(by_realm[b]) == ["invoice"]
    assert {r.tags["smartsync/trigger"] for r in first.run_requests} == {"webhook"}
    assert first.cursor == "5"
    assert [req.partition_keys for req in first.dynamic_partitions_requests] == [[b]]
    assert {r.run_key for r in first.run_requests} == {f"webhook:{a}:1-5", f"webhook:{b}:1-5"}

    # A daemon that restarts before storing the cursor asks again with the old one: same run keys, so
    # Dagster launches nothing twice.
    replay = _evaluate(setup, None)
    assert {r.run_key for r in replay.run_requests} == {r.run_key for r in first.run_requests}

    caught_up = _evaluate(setup, first.cursor)
    assert isinstance(caught_up, dg.SkipReason) and "after seq 5" in caught_up.skip_message

    with WebhookInbox(setup.home.inbox_path) as inbox:
        inbox.add([_event(a, "Invoice", "9", "Create", minutes=1), _event(a, "Bill", "1")])  # 2nd is a redelivery
    second = _evaluate(setup, first.cursor)
    assert [(r.partition_key, _selected(r)) for r in second.run_requests] == [(a, ["invoice"])]
    assert second.cursor == "6" and second.run_requests[0].run_key == f"webhook:{a}:6-6"
    assert not second.dynamic_partitions_requests

    result = setup.run_request(second.run_requests[0])
    assert result.success
    [materialization] = [e.materialization for e in result.get_asset_materialization_events()]
    assert materialization.asset_key.path == ["qbo", "invoice"]
    assert materialization.partition == a
    assert materialization.metadata["trigger"].value == "webhook"
    assert materialization.metadata["created"].value > 0
