"""Keeps every (realm, entity) mirror inside its warn window, per realm.

Each tick asks the fleet state index which (company, entity) pairs are past their warn window or never
synced (``FleetState.stale(now)``: one index range scan, so a tick costs in proportion to the stale
companies, not to the fleet; never DuckDB) and, for each such company that is a connected realm
partition, requests ONE run of just its stale entities. A realm that already has a sync queued or
running gets nothing until that run ends, so a slow or failing QBO never piles up runs; a fresh realm
is never even looked at.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import dagster as dg

from smartsync_pipeline.defs.jobs import mirror_sync_job
from smartsync_pipeline.defs.partitions import REALMS_PARTITIONS_NAME
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.run_requests import realms_in_flight, sync_run_request


def freshness_run_requests(
    stale: Mapping[str, Sequence[str]], busy: set[str]
) -> tuple[list[dg.RunRequest], Mapping[str, str]]:
    """Run requests for the stale realms (realm -> stale entity names), and why each stale realm that
    got none got none (realm -> reason)."""
    requests: list[dg.RunRequest] = []
    quiet: dict[str, str] = {}
    for realm, entities in stale.items():
        if realm in busy:
            quiet[realm] = f"stale ({', '.join(entities)}) but a sync is already queued or running"
        else:
            requests.append(sync_run_request(realm, list(entities), trigger="sensor"))
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
    found = mirror_sync.fleet_state().stale(datetime.now(UTC))
    # Only companies that are realm partitions can be run (one lookup per stale company).
    instance = context.instance
    stale = {r: names for r, names in found.items() if instance.has_dynamic_partition(REALMS_PARTITIONS_NAME, r)}
    if not stale:
        return dg.SkipReason("every connected company is fresh")
    requests, quiet = freshness_run_requests(stale, realms_in_flight(instance))
    for realm, reason in quiet.items():
        context.log.debug(f"realm {realm}: {reason}")
    if not requests:
        return dg.SkipReason("; ".join(f"realm {r}: {why}" for r, why in quiet.items()) + "; the others are fresh")
    return dg.SensorResult(run_requests=requests)
