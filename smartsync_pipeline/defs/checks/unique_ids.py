"""No (realm, Id) twice in a mirror table: the upsert's invariant, checked on the newest snapshot.

In a sync run, only that run's company is scanned; without a partition (the sweep), every company."""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Iterator

import dagster as dg

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS, entity_for_key
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.entities import entity

UNIQUE_IDS_CHECK = "unique_ids"
_SHOWN = 20

_DUPLICATES_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn("realm", "string"), dg.TableColumn("id", "string"), dg.TableColumn("rows", "int")]
)


@dg.multi_asset_check(
    name="mirror_unique_ids",
    specs=[
        dg.AssetCheckSpec(UNIQUE_IDS_CHECK, asset=key, description="Each (realm, QBO Id) appears once.")
        for key in MIRROR_KEYS.values()
    ],
    can_subset=True,
)
def mirror_unique_ids(
    context: dg.AssetCheckExecutionContext, mirror_sync: MirrorSyncResource
) -> Iterator[dg.AssetCheckResult]:
    keys = sorted(context.selected_asset_check_keys, key=str)
    reader = mirror_sync.snapshot_reader()
    # A sync run checks its own company; the sweep (no partition) every company with a snapshot.
    candidates = [context.partition_key] if context.has_partition_key else mirror_sync.realms_with_mirror()
    realms = [r for r in candidates if reader.current(r) is not None]
    if not realms:
        for check_key in keys:
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=UNIQUE_IDS_CHECK,
                passed=True,
                description="nothing synced yet",
            )
        return
    try:
        for check_key in keys:
            spec = entity(entity_for_key(check_key.asset_key))
            duplicates: list[tuple[str, str, int]] = []
            total = 0
            generations: dict[str, int] = {}
            for realm in realms:  # each company's own snapshot
                with reader.cursor(realm_id=realm) as (cur, info):
                    generations[realm] = info.generation
                    duplicates += cur.execute(
                        f"SELECT realm_id, id, count(*) AS n FROM {spec.table} GROUP BY realm_id, id HAVING n > 1 "
                        "ORDER BY n DESC, realm_id, id"
                    ).fetchall()
                    total += cur.execute(f"SELECT count(*) FROM {spec.table}").fetchall()[0][0]
            if duplicates:
                bad = sorted({r for r, _, _ in duplicates})
                shown = ", ".join(f"{r}/{i} x{n}" for r, i, n in duplicates[:5])
                more = f" (+{len(duplicates) - 5} more)" if len(duplicates) > 5 else ""
                description = (
                    f"{spec.table}: {len(duplicates)} id(s) stored more than once in realm(s) "
                    f"{', '.join(bad)}: {shown}{more}"
                )
            else:
                company = f" of realm {realms[0]}" if context.has_partition_key else ""
                description = f"{spec.table}: {total} rows{company}, every (realm, id) once"
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=UNIQUE_IDS_CHECK,
                passed=not duplicates,
                description=description,
                metadata={
                    "snapshot_generations": dg.MetadataValue.json(generations),
                    "duplicate_ids": dg.MetadataValue.int(len(duplicates)),
                    "duplicates": dg.MetadataValue.table(
                        [dg.TableRecord({"realm": r, "id": i, "rows": int(n)}) for r, i, n in duplicates[:_SHOWN]],
                        schema=_DUPLICATES_SCHEMA,
                    ),
                },
            )
    finally:
        reader.close()
