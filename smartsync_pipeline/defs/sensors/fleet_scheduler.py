"""``fleet_scheduler``: the fleet policy (``smartsync_pipeline.fleet``) as a Dagster sensor.

Each tick rebuilds a small ``FleetPolicy`` holding only the companies that can need anything now:
those the fleet state index reports past the shortest sweep offset (``stale``), those with webhook
events in the inbox or held from earlier ticks, and those coming out of a back-off. Everything else
is never read, so a tick costs in proportion to the due companies, not the fleet. The policy's
batches become ``fleet_sync`` runs of several companies each; every 15 minutes the tick also requests
the ``fleet/freshness`` summary.

It replaces, for a fleet, the per-company ``cdc_sweep`` schedule, the ``daily_full_reconciliation``,
the ``mirror_freshness_enforcer`` and the ``webhook_inbox`` sensor, so it starts STOPPED: turn it on
and those four off (README, "Scheduling a fleet").

The cursor (JSON) carries what must survive between ticks: the inbox ``seq`` read up to, webhook
events still held (per company and entity: first and last change and receipt), the calls planned in
the last 24 hours (hourly buckets, for the budget guard), companies whose sync failed (back-off and
the entities to retry), and when failed runs and the summary were last looked at.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import dagster as dg

from smartsync_pipeline.defs.fleet_index import FleetIndex, fleet_index
from smartsync_pipeline.defs.fleet_plan import fleet_plan, fleet_workers
from smartsync_pipeline.defs.fleet_sync import (
    FAILED_REALMS_TAG,
    fleet_run_request,
    fleet_runs_in_flight,
    fleet_sync_job,
    realms_in_fleet_runs,
    syncs_of_run,
)
from smartsync_pipeline.defs.jobs import fleet_freshness_job
from smartsync_pipeline.defs.partitions import connected_realms
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.run_requests import realms_in_flight
from smartsync_pipeline.entities import ENTITIES, find_entity
from smartsync_pipeline.fleet.budget import BudgetPlan
from smartsync_pipeline.fleet.policy import Batch, FleetPolicy
from smartsync_pipeline.fleet.rules import DAY, HOUR, MINUTE
from smartsync_pipeline.inbox.store import InboxRecord

INBOX_BATCH = 5000
SUMMARY_EVERY = 15 * MINUTE
RETRY_AFTER = 5 * MINUTE
_WARN = {spec.name: spec.freshness.warn.total_seconds() for spec in ENTITIES}

log = logging.getLogger("smartsync.fleet")


@dataclass
class FleetCursor:
    """What the scheduler remembers between ticks (times are unix seconds)."""

    seq: int = 0
    held: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # realm -> entity -> [c0, r0, c1, r1]
    spend: list[list[float]] = field(default_factory=list)  # [hour start, calls planned]
    backoff: dict[str, float] = field(default_factory=dict)  # realm -> not before
    retry: dict[str, list[str]] = field(default_factory=dict)  # realm -> entities whose sync failed
    failures_checked: float = 0.0
    summary_at: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> "FleetCursor":
        if not text:
            return cls()
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as exc:
            log.warning("fleet scheduler cursor unreadable (%s); starting afresh", exc)
            return cls()

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    def hold(self, realm: str, entity: str, changed_at: float, received_at: float) -> None:
        entry = self.held.setdefault(realm, {}).get(entity)
        if entry is None:
            self.held[realm][entity] = [changed_at, received_at, changed_at, received_at]
        else:
            entry[0], entry[1] = min(entry[0], changed_at), min(entry[1], received_at)
            if changed_at >= entry[2]:
                entry[2], entry[3] = changed_at, received_at


@dataclass
class FleetTick:
    """One tick's decision: the batches to run and the cursor to keep."""

    batches: list[Batch]
    cursor: FleetCursor
    looked_at: int  # companies the tick loaded
    skipped: list[str] = field(default_factory=list)  # one line per ignored group of events


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def sweep_offset(plan: BudgetPlan) -> float:
    """How much older than its warn window an entity must be before its sweep is due (the least over
    entities): ``stale(now - offset)`` is then a superset of the companies due for a sweep."""
    return max(0.0, min(t.sweep - _WARN.get(t.name, t.rule.window / 2) for t in plan.timings))


def plan_fleet_tick(
    now: datetime,
    *,
    plan: BudgetPlan,
    realms: Iterable[str],
    index: FleetIndex,
    records: Sequence[InboxRecord],
    cursor: FleetCursor,
    busy: set[str],
    free_workers: int,
    failed: Mapping[str, Sequence[str]] | None = None,
) -> FleetTick:
    """Decide one tick. ``records`` are inbox events after ``cursor.seq``; ``busy`` companies have a
    sync queued or running; ``failed`` maps companies whose last sync failed to its entities."""
    at = _seconds(now)
    connected = set(realms)
    cursor = FleetCursor(**json.loads(cursor.dumps()))  # the caller's cursor stays as it was
    for realm, entities in (failed or {}).items():
        cursor.backoff[realm] = at + RETRY_AFTER
        cursor.retry[realm] = sorted(set(cursor.retry.get(realm, [])) | set(entities))
    cursor.backoff = {r: t for r, t in cursor.backoff.items() if t > at and r in connected}
    cursor.retry = {r: names for r, names in cursor.retry.items() if r in connected}
    skipped: dict[str, int] = {}
    for record in records:
        spec = find_entity(record.entity)
        if record.realm_id not in connected:
            key = f"company {record.realm_id}, which is not connected"
        elif spec is None:
            key = f"{record.entity}, which smartsync does not mirror"
        else:
            changed = record.last_updated or record.received_at
            cursor.hold(record.realm_id, spec.name, _seconds(changed), _seconds(record.received_at))
            continue
        skipped[key] = skipped.get(key, 0) + 1
    if records:
        cursor.seq = records[-1].seq

    due = index.stale(datetime.fromtimestamp(at - sweep_offset(plan), UTC))
    candidates = sorted((set(due) | set(cursor.held) | set(cursor.retry)) & connected)
    policy = FleetPolicy(plan)
    for hour, calls in cursor.spend:
        policy.record_spend(hour, int(calls))
    for realm in candidates:
        rows = index.of(realm)
        covered = {name: (_seconds(row.last_sync_at) if row.last_sync_at else None) for name, row in rows.items()}
        policy.add_company(realm, covered, in_flight=realm in busy, not_before=cursor.backoff.get(realm, float("-inf")))
        for name, (c0, r0, c1, r1) in cursor.held.get(realm, {}).items():
            policy.on_webhook(realm, name, c0, r0)
            if c1 > c0:
                policy.on_webhook(realm, name, c1, r1)
        for name in cursor.retry.get(realm, []):
            # A failed sync left changes unseen since the last success: due once the back-off ends.
            base = covered.get(name)
            policy.on_webhook(realm, name, base + 1 if base is not None else at - DAY, at - DAY)
    batches = policy.tick(at, free_workers)

    ordered = {company for batch in batches for company in batch.companies}
    cursor.retry = {r: names for r, names in cursor.retry.items() if r not in ordered}
    cursor.held = {}
    for realm, state in policy.companies.items():
        if realm in ordered:
            continue
        for name, events in state.pending.items():
            for changed, received in events:
                cursor.hold(realm, name, changed, received)
    buckets: dict[float, float] = {}
    for moment, calls in policy.spend_ledger(at):
        hour = moment - moment % HOUR
        buckets[hour] = buckets.get(hour, 0) + calls
    cursor.spend = [[hour, calls] for hour, calls in sorted(buckets.items())]
    return FleetTick(
        batches=batches,
        cursor=cursor,
        looked_at=len(candidates),
        skipped=[f"{n} event(s) for {what}" for what, n in sorted(skipped.items())],
    )


def failed_fleet_realms(instance: dg.DagsterInstance, since: float) -> dict[str, list[str]]:
    """Companies whose ``fleet_sync`` failed in runs that ended after ``since``: realm -> entities.
    A run that failed or was canceled as a whole (crashed, past its max runtime) counts every company
    it had."""
    after = datetime.fromtimestamp(since, UTC)
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=fleet_sync_job.name,
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
            updated_after=after,
        )
    )
    out: dict[str, list[str]] = {}
    for run in runs:
        named = run.tags.get(FAILED_REALMS_TAG)
        failed = set(named.split(",")) if named else {item["realm_id"] for item in syncs_of_run(run)}
        for item in syncs_of_run(run):
            if item["realm_id"] in failed:
                out[item["realm_id"]] = list(item.get("entities") or [spec.name for spec in ENTITIES])
    return out


@dg.sensor(
    name="fleet_scheduler",
    jobs=[fleet_sync_job, fleet_freshness_job],
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description=(
        "Fleet policy: webhook syncs first, one CDC call per company, budget-derived sweeps, several "
        "companies per run. Replaces cdc_sweep, daily_full_reconciliation, mirror_freshness_enforcer and "
        "webhook_inbox for a fleet; start it and stop those."
    ),
)
def fleet_scheduler(
    context: dg.SensorEvaluationContext, mirror_sync: MirrorSyncResource
) -> dg.SensorResult | dg.SkipReason:
    realms = connected_realms(context.instance)
    if not realms:
        return dg.SkipReason("no company is connected")
    now = datetime.now(UTC)
    cursor = FleetCursor.parse(context.cursor)
    failed = failed_fleet_realms(context.instance, cursor.failures_checked)
    cursor.failures_checked = _seconds(now)
    running = fleet_runs_in_flight(context.instance)
    busy = realms_in_fleet_runs(running) | realms_in_flight(context.instance)
    inbox = mirror_sync.inbox()
    try:
        records = inbox.read_after(cursor.seq, limit=INBOX_BATCH) if inbox else []
    finally:
        if inbox:
            inbox.close()
    plan = fleet_plan(len(realms))
    tick = plan_fleet_tick(
        now,
        plan=plan,
        realms=realms,
        index=fleet_index(mirror_sync),
        records=records,
        cursor=cursor,
        busy=busy,
        free_workers=max(0, fleet_workers() - len(running)),
        failed=failed,
    )
    for line in tick.skipped:
        context.log.warning(f"fleet scheduler: skipped {line}")
    stamp = now.strftime("%Y%m%dT%H%M%S")
    requests = [fleet_run_request(batch, f"fleet:{stamp}:{i}") for i, batch in enumerate(tick.batches)]
    if _seconds(now) - tick.cursor.summary_at >= SUMMARY_EVERY:
        requests.append(dg.RunRequest(run_key=f"fleet_freshness:{stamp}", job_name=fleet_freshness_job.name))
        tick.cursor.summary_at = _seconds(now)
    context.log.info(
        f"fleet scheduler: {len(realms)} companies, looked at {tick.looked_at}, "
        f"{sum(len(b.orders) for b in tick.batches)} syncs in {len(tick.batches)} runs; {plan.message}"
    )
    return dg.SensorResult(
        run_requests=requests,
        cursor=tick.cursor.dumps(),
        skip_reason=None if requests else f"nothing due among {tick.looked_at} companies looked at",
    )
