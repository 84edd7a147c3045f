"""The QBO mirror assets: one asset per registry entity, all materialized by ONE multi-asset.

Materializing any subset of entities for one realm is one ``SyncEngine.sync`` call: one CDC request
and one DuckDB transaction for the whole subset, exactly what the CLI and the smart reader do. Each
entity then gets its own materialization with the sync's numbers as metadata, so the asset history is
the human-readable trail of what changed, when, why (trigger) and at what cost (API calls).
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Iterable, Iterator
from datetime import timedelta

import dagster as dg
from pydantic import field_validator

from smartsync_pipeline.defs.partitions import realms
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.run_tags import trigger_for_run
from smartsync_pipeline.entities import ENTITIES, EntitySpec
from smartsync_pipeline.smart.materialization import materialization_metadata
from smartsync_pipeline.sync.engine import MODES

MIRRORS_GROUP = "mirrors"
MIRROR_ASSET_NAME = "qbo_mirrors"


def mirror_key(spec: EntitySpec) -> dg.AssetKey:
    return dg.AssetKey(["qbo", spec.table])


MIRROR_KEYS: dict[str, dg.AssetKey] = {spec.name: mirror_key(spec) for spec in ENTITIES}
_ENTITY_BY_KEY: dict[dg.AssetKey, str] = {key: name for name, key in MIRROR_KEYS.items()}


def entity_for_key(key: dg.AssetKey) -> str:
    return _ENTITY_BY_KEY[key]


def entities_for_keys(keys: Iterable[dg.AssetKey]) -> list[str]:
    """Entity names for mirror asset keys, in registry order (the order the engine syncs them)."""
    wanted = {entity_for_key(k) for k in keys}
    return [spec.name for spec in ENTITIES if spec.name in wanted]


def _window(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _spec(entity: EntitySpec) -> dg.AssetSpec:
    fresh = entity.freshness
    return dg.AssetSpec(
        key=mirror_key(entity),
        group_name=MIRRORS_GROUP,
        description=(
            f"Mirror of QBO {entity.name}: {entity.description} One row per (realm, Id), tombstones "
            f"for deletes, every change in the hash-chained change log. Warn after {_window(fresh.warn)}, "
            f"stale after {_window(fresh.fail)}."
        ),
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=fresh.fail, warn_window=fresh.warn),
        kinds={"duckdb"},
        tags={"smartsync/entity": entity.name},
        metadata={"entity": entity.name, "table": entity.table, "qbo_endpoint": entity.endpoint},
    )


MIRROR_SPECS: list[dg.AssetSpec] = [_spec(entity) for entity in ENTITIES]


class MirrorSyncConfig(dg.Config):
    """How to sync: ``auto`` (CDC when possible), ``full`` (page everything) or ``incremental``;
    ``verify_content`` also compares unchanged rows' content with QBO and repairs what differs (the
    daily full reconciliation)."""

    mode: str = "auto"
    verify_content: bool = False

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in MODES:
            raise ValueError(f"unknown sync mode {value!r}; expected one of {', '.join(MODES)}")
        return value


@dg.multi_asset(
    name=MIRROR_ASSET_NAME,
    specs=MIRROR_SPECS,
    partitions_def=realms,
    can_subset=True,
    description="Sync the selected QBO entities of one realm into the DuckDB mirror (one engine call).",
)
def qbo_mirrors(
    context: dg.AssetExecutionContext, config: MirrorSyncConfig, mirror_sync: MirrorSyncResource
) -> Iterator[dg.MaterializeResult]:
    realm_id = context.partition_key
    entities = entities_for_keys(context.selected_asset_keys)
    trigger = trigger_for_run(context.run.tags)
    context.log.info(f"syncing {', '.join(entities)} of realm {realm_id} (mode {config.mode}, trigger {trigger})")
    report = mirror_sync.engine().sync(
        realm_id,
        entities,
        mode=config.mode,
        trigger=trigger,
        run_id=context.run.run_id,
        verify_content=config.verify_content,
    )
    missing = [name for name in entities if name not in report.entities]
    if missing:
        raise dg.Failure(
            description=f"the sync engine reported nothing for {', '.join(missing)} of realm {realm_id}",
            metadata={"sync_id": report.sync_id},
        )
    for name in entities:
        yield dg.MaterializeResult(
            asset_key=MIRROR_KEYS[name], metadata=materialization_metadata(report, name, config.mode)
        )
