"""Keeps every (realm, entity) mirror inside its warn window, per realm.

Each tick reads the published sync state (JSON, never DuckDB) and, for each connected realm with
entities past their warn window or never synced, requests ONE run of just those entities for that
realm. A realm that already has a sync queued or running gets nothing until that run ends, so a slow
or failing QBO never piles up runs; a fresh realm gets nothing at all.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from smartsync_pipeline.defs.jobs import mirror_sync_job
from smartsync_pipeline.defs.partitions import connected_realms
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.run_requests import realms_in_flight, sync_run_request
from smartsync_pipeline.defs.staleness import SyncState, stale_entities


def freshness_run_requests(
    realms: list[str], state: SyncState | None, busy: set[str], now: datetime
) -> tuple[list[dg.RunRequest], Mapping[str, str]]:
    """Run requests for stale realms, and why each other realm got none (realm -> reason)."""
    requests: list[dg.RunRequest] = []
    quiet: dict[str, str] = {}
    for realm in realms:
        stale = stale_entities(state, realm, now)
        if not stale:
            quiet[realm] = "fresh"
        elif realm in busy:
            quiet[realm] = f"stale ({', '.join(stale)}) but a sync is already queued or running"
        else:
            requests.append(sync_run_request(realm, stale, trigger="sensor"))
    return requests, quiet


@dg.sensor(
    name="mirror_freshness_enforcer",
    job=mirror_sync_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Per realm: sync the entities past their warn window (one run per stale realm).",
)
def mirror_freshness_enforcer(
    context: dg.SensorEvaluationContext, mirror_sync: MirrorSyncResource
) -> dg.SensorResult | dg.SkipReason:
    realms = connected_realms(context.instance)
    if not realms:
        return dg.SkipReason("no company is connected")
    info = mirror_sync.snapshot_state()
    requests, quiet = freshness_run_requests(
        realms, info.state if info else None, realms_in_flight(context.instance), datetime.now(UTC)
    )
    for realm, reason in quiet.items():
        context.log.debug(f"realm {realm}: {reason}")
    if not requests:
        return dg.SkipReason("; ".join(f"realm {r}: {why}" for r, why in quiet.items()))
    return dg.SensorResult(run_requests=requests)
