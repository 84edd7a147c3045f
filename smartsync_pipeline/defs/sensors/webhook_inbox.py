"""Turns stored webhook events into syncs of exactly the entities they name.

The cursor is the inbox ``seq`` of the last record handled. Each tick reads the records after it,
groups them by realm, and requests one run per realm with the affected entities. The cursor moves
past a record only in the same tick result that carries its run request (or deliberately skips it:
a company that is not connected, an entity that is not mirrored), and every request has a run key
made of the seq range, so a daemon restart between the two neither loses an event nor runs it twice.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from smartsync_pipeline.defs.jobs import mirror_sync_job
from smartsync_pipeline.defs.partitions import connected_realms, realms
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.run_requests import sync_run_request
from smartsync_pipeline.entities import ENTITIES, find_entity
from smartsync_pipeline.inbox.store import InboxRecord

BATCH = 5000
SEQ_TAG = "smartsync/webhook_seq"


@dataclass
class WebhookPlan:
    """What one batch of inbox records becomes."""

    first_seq: int
    last_seq: int
    entities_by_realm: dict[str, list[str]] = field(default_factory=dict)
    new_partitions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per skipped record group

    def run_requests(self) -> list[dg.RunRequest]:
        return [
            sync_run_request(
                realm,
                names,
                trigger="webhook",
                run_key=f"webhook:{realm}:{self.first_seq}-{self.last_seq}",
                tags={SEQ_TAG: f"{self.first_seq}-{self.last_seq}"},
            )
            for realm, names in sorted(self.entities_by_realm.items())
        ]


def plan_webhook_runs(
    records: Sequence[InboxRecord], partitions: Iterable[str], companies: Iterable[str]
) -> WebhookPlan:
    """Group ``records`` (non-empty, in seq order) into one entity set per realm.

    A realm with stored credentials that is not yet a partition is added as one; events for realms
    that are not connected at all, or for entities smartsync does not mirror, are skipped."""
    known, connected = set(partitions), set(companies)
    plan = WebhookPlan(records[0].seq, records[-1].seq)
    wanted: dict[str, set[str]] = {}
    unconnected: dict[str, int] = {}
    unmirrored: dict[str, int] = {}
    for record in records:
        spec = find_entity(record.entity)
        if spec is None:
            unmirrored[record.entity] = unmirrored.get(record.entity, 0) + 1
            continue
        name = spec.name
        if record.realm_id not in known and record.realm_id not in connected:
            unconnected[record.realm_id] = unconnected.get(record.realm_id, 0) + 1
            continue
        wanted.setdefault(record.realm_id, set()).add(name)
    order = [spec.name for spec in ENTITIES]
    plan.entities_by_realm = {realm: [n for n in order if n in names] for realm, names in wanted.items()}
    plan.new_partitions = sorted(r for r in wanted if r not in known)
    plan.skipped = [f"{n} event(s) for company {r}, which is not connected" for r, n in sorted(unconnected.items())]
    plan.skipped += [f"{n} event(s) for {e}, which smartsync does not mirror" for e, n in sorted(unmirrored.items())]
    return plan


@dg.sensor(
    name="webhook_inbox",
    job=mirror_sync_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=10,
    description="Sync the entities named by new webhook events (one run per realm per batch).",
)
def webhook_inbox(
    context: dg.SensorEvaluationContext, mirror_sync: MirrorSyncResource
) -> dg.SensorResult | dg.SkipReason:
    inbox = mirror_sync.inbox()
    if inbox is None:
        return dg.SkipReason("no webhook has been received yet")
    cursor = int(context.cursor or 0)
    try:
        inbox.mark_processed(cursor)  # committed cursor: everything up to it has its runs; may be pruned
        records = inbox.read_after(cursor, limit=BATCH)
    finally:
        inbox.close()
    if not records:
        return dg.SkipReason(f"no new webhook events after seq {cursor}")
    plan = plan_webhook_runs(records, connected_realms(context.instance), mirror_sync.connected_companies())
    for line in plan.skipped:
        context.log.warning(f"webhook events {plan.first_seq}-{plan.last_seq}: skipped {line}")
    for realm in plan.new_partitions:
        context.log.info(f"company {realm} is connected but was not a partition yet; adding it")
    return dg.SensorResult(
        run_requests=plan.run_requests(),
        cursor=str(plan.last_seq),
        dynamic_partitions_requests=[realms.build_add_request(plan.new_partitions)] if plan.new_partitions else None,
    )
