"""``fleet_sync``: ONE Dagster run that syncs a batch of companies, one after the other.

The mirror assets are partitioned by company, and a partitioned run covers one partition: at 10,000
companies that is thousands of runs an hour. The fleet scheduler instead launches this
non-partitioned job with a list of (company, entities) in its run config; its op calls the same sync
engine for each company and records a materialization of each synced (entity, company) partition with
the same metadata a ``mirror_sync`` run records, so every company's asset history looks the same
whichever job wrote it. A company whose sync fails does not stop the others; the run then fails,
naming them (tagged ``smartsync/failed_realms`` so the scheduler backs off from them).
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Sequence

import dagster as dg
from pydantic import Field

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.run_requests import IN_FLIGHT
from smartsync_pipeline.defs.run_tags import trigger_tags
from smartsync_pipeline.entities import iter_entities
from smartsync_pipeline.fleet.policy import Batch
from smartsync_pipeline.smart.materialization import materialization_metadata

FLEET_SYNC_JOB = "fleet_sync"
FLEET_SYNC_OP = "fleet_sync_companies"
FAILED_REALMS_TAG = "smartsync/failed_realms"
BATCH_SIZE_TAG = "smartsync/fleet_batch_size"
# Run monitoring ends a run past this (a SIGKILLed worker otherwise stays STARTED, and its companies
# would look busy to the scheduler forever); the scheduler then retries its companies.
MAX_RUNTIME_TAG = "dagster/max_runtime"
MAX_RUNTIME_SECONDS = 3600


class CompanySync(dg.Config):
    """One company of the batch: which entities, and why (the change log's trigger)."""

    realm_id: str
    entities: list[str] = Field(default_factory=list, description="entity names; empty means all")
    trigger: str = "sensor"
    mode: str = "auto"


class FleetSyncConfig(dg.Config):
    syncs: list[CompanySync]


@dg.op(name=FLEET_SYNC_OP, description="Sync a batch of companies through the sync engine, one after the other.")
def fleet_sync_companies(
    context: dg.OpExecutionContext, config: FleetSyncConfig, mirror_sync: MirrorSyncResource
) -> None:
    engine = mirror_sync.engine()
    failed: list[str] = []
    for item in config.syncs:
        names = [spec.name for spec in iter_entities(item.entities or None)]
        try:
            report = engine.sync(item.realm_id, names, mode=item.mode, trigger=item.trigger, run_id=context.run_id)
        except Exception as exc:  # one company's failure must not cost the others their sync
            context.log.error(f"company {item.realm_id}: sync of {', '.join(names)} failed: {exc}")
            failed.append(item.realm_id)
            continue
        for name in names:
            if name not in report.entities:
                continue
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=MIRROR_KEYS[name],
                    partition=item.realm_id,
                    metadata=materialization_metadata(report, name, item.mode),
                )
            )
    if failed:
        context.instance.add_run_tags(context.run_id, {FAILED_REALMS_TAG: ",".join(failed)})
        raise dg.Failure(
            description=f"{len(failed)} of {len(config.syncs)} companies failed to sync: {', '.join(failed)}",
            metadata={"failed_realms": dg.MetadataValue.text(", ".join(failed))},
        )


@dg.job(
    name=FLEET_SYNC_JOB,
    description="Sync a batch of companies chosen by the fleet scheduler (one run, many companies).",
)
def fleet_sync_job() -> None:
    fleet_sync_companies()


def fleet_run_request(batch: Batch, run_key: str) -> dg.RunRequest:
    """The run of ``fleet_sync`` for one batch of the fleet policy."""
    syncs = [
        {
            "realm_id": o.company,
            "entities": list(o.entities),
            "trigger": "webhook" if o.reason == "webhook" else "sensor",
            "mode": "auto",
        }
        for o in batch.orders
    ]
    return dg.RunRequest(
        run_key=run_key,
        job_name=FLEET_SYNC_JOB,
        run_config={"ops": {FLEET_SYNC_OP: {"config": {"syncs": syncs}}}},
        tags={**trigger_tags("sensor"), BATCH_SIZE_TAG: str(len(syncs)), MAX_RUNTIME_TAG: str(MAX_RUNTIME_SECONDS)},
    )


def syncs_of_run(run: dg.DagsterRun) -> list[dict]:
    """The (company, entities) items of a ``fleet_sync`` run, from its run config."""
    return list(run.run_config.get("ops", {}).get(FLEET_SYNC_OP, {}).get("config", {}).get("syncs", []))


def realms_of_run(run: dg.DagsterRun) -> list[str]:
    """The companies a ``fleet_sync`` run syncs."""
    return [item["realm_id"] for item in syncs_of_run(run)]


def fleet_runs_in_flight(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=FLEET_SYNC_JOB, statuses=IN_FLIGHT)))


def realms_in_fleet_runs(runs: Sequence[dg.DagsterRun]) -> set[str]:
    return {realm for run in runs for realm in realms_of_run(run)}
