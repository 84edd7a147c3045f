"""A code location lives for weeks: evaluating its sensors many times leaves descriptors and threads
flat (each tick opens what it needs and closes it). 150 ticks (``SMARTSYNC_LONG_LIVED_TICKS``, 500
for the long version) of the freshness enforcer and of the webhook sensor on a real instance with one
synced and one never-synced company and a webhook inbox. A tick that leaks one descriptor or thread
fails after a single tick; more ticks only sharpen the RSS bound."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import dagster as dg
import pytest

from smartsync_pipeline.defs.sensors.freshness_enforcer import mirror_freshness_enforcer
from smartsync_pipeline.defs.sensors.webhook_inbox import webhook_inbox
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.qbo.webhooks import WebhookEvent
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup
from smartsync_pipeline_tests.process_footprint import Footprint

TICKS = int(os.environ.get("SMARTSYNC_LONG_LIVED_TICKS", "150"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    env = start_mirror_setup(tmp_path_factory.mktemp("long_lived_sensors"), ephemeral=True)
    mirror = next(env)
    mirror.materialize(mirror.realms[0])  # one company synced, the other never: the enforcer has work
    inbox = WebhookInbox(mirror.home.inbox_path)
    inbox.add([WebhookEvent(mirror.realms[0], "Bill", "1", "Update", datetime.now(UTC))])
    yield mirror
    env.close()


def _tick(setup: MirrorSetup, cursor: str | None) -> None:
    enforcer = mirror_freshness_enforcer(dg.build_sensor_context(instance=setup.instance, resources=setup.resources))
    assert isinstance(enforcer, dg.SensorResult) and enforcer.run_requests  # the never-synced company
    webhooks = webhook_inbox(dg.build_sensor_context(instance=setup.instance, resources=setup.resources, cursor=cursor))
    assert isinstance(webhooks, dg.SensorResult | dg.SkipReason)


def test_sensor_ticks_leave_descriptors_and_threads_flat(setup: MirrorSetup) -> None:
    for _ in range(20):  # warm-up
        _tick(setup, None)
    before = Footprint.now()
    for _ in range(TICKS):
        _tick(setup, None)
    after = Footprint.now()
    grew = after.growth_since(before)
    print(f"{TICKS} ticks of two sensors: {before} -> {after}")
    assert grew.fds <= 0, f"descriptors grew by {grew.fds} over {TICKS} ticks"
    assert grew.threads <= 0, f"threads grew by {grew.threads}"
    assert grew.rss_mb <= 30, f"RSS grew by {grew.rss_mb} MB"
