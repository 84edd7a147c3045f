"""Building sync run requests, and knowing which realms already have a sync queued or running.

Schedules and sensors only decide *which* (realm, entities) to sync; every request they make has the
same shape: one partition, the entities as the asset selection, the trigger as a tag, the sync mode as
run config, and the cheap snapshot checks (freshness, unique ids) for exactly those entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

from smartsync_pipeline.defs.assets.mirrors import MIRROR_ASSET_NAME, MIRROR_KEYS, MirrorSyncConfig
from smartsync_pipeline.defs.checks.freshness import FRESHNESS_CHECK
from smartsync_pipeline.defs.checks.reconciliation import RECONCILIATION_CHECK
from smartsync_pipeline.defs.checks.unique_ids import UNIQUE_IDS_CHECK
from smartsync_pipeline.defs.run_tags import PARTITION_TAG, trigger_tags
from smartsync_pipeline.entities import iter_entities

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
SYNC_CHECKS = (FRESHNESS_CHECK, UNIQUE_IDS_CHECK)
FULL_SYNC_CHECKS = (FRESHNESS_CHECK, UNIQUE_IDS_CHECK, RECONCILIATION_CHECK)


def sync_run_request(
    realm_id: str,
    entities: Sequence[str] | None,
    *,
    trigger: str,
    mode: str = "auto",
    checks: Iterable[str] = SYNC_CHECKS,
    run_key: str | None = None,
    tags: dict[str, str] | None = None,
    verify_content: bool = False,
) -> dg.RunRequest:
    """A run of the ``mirror_sync`` job for one realm and ``entities`` (None: all)."""
    names = [spec.name for spec in iter_entities(list(entities) if entities else None)]
    keys = [MIRROR_KEYS[name] for name in names]
    check_names = tuple(checks)
    return dg.RunRequest(
        run_key=run_key,
        partition_key=realm_id,
        asset_selection=keys,
        asset_check_keys=[dg.AssetCheckKey(key, name) for key in keys for name in check_names],
        run_config=dg.RunConfig(ops={MIRROR_ASSET_NAME: MirrorSyncConfig(mode=mode, verify_content=verify_content)}),
        tags={**trigger_tags(trigger), **(tags or {})},
    )


def realms_in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Realms with a mirror sync run queued or in progress (any trigger, any entity subset)."""
    mirror_keys = set(MIRROR_KEYS.values())
    busy: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        realm = run.tags.get(PARTITION_TAG)
        if realm and (run.asset_selection is None or run.asset_selection & mirror_keys):
            busy.add(realm)
    return busy
