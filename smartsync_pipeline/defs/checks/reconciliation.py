"""Counts per mirror asset against QBO: does the mirror hold what QBO holds?

Counts only (one ``COUNT(*)`` per entity and realm), against the newest published snapshot. It runs
with each company's daily full sync, right after it, for that company only (``realm_scope``), and for
every company in the weekly all-company sweep; between syncs a failure only means QBO moved on since
the last sync, which the description says.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Iterator

import dagster as dg

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS, entities_for_keys
from smartsync_pipeline.defs.checks.realm_scope import realms_to_check
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.sync.engine import SyncEngine
from smartsync_pipeline.sync.reconcile import EntityReconciliation, reconcile

RECONCILIATION_CHECK = "reconciliation"

_COUNTS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("realm", "string"),
        dg.TableColumn("qbo", "int"),
        dg.TableColumn("mirror", "int"),
        dg.TableColumn("status", "string"),
    ]
)


def _realm_counts(
    engine: SyncEngine, reader: SnapshotReader, realm_id: str, entities: list[str]
) -> dict[str, EntityReconciliation]:
    client = engine.client(realm_id)
    try:
        return reconcile(client, reader, realm_id, entities, compare_ids=False).entities
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()


@dg.multi_asset_check(
    name="mirror_reconciliation",
    specs=[
        dg.AssetCheckSpec(
            RECONCILIATION_CHECK, asset=key, description="Mirror row counts equal QBO's counts in every realm."
        )
        for key in MIRROR_KEYS.values()
    ],
    can_subset=True,
)
def mirror_reconciliation(
    context: dg.AssetCheckExecutionContext, mirror_sync: MirrorSyncResource
) -> Iterator[dg.AssetCheckResult]:
    selected = {k.asset_key: k for k in context.selected_asset_check_keys}
    entities = entities_for_keys(selected)
    realms = realms_to_check(context, mirror_sync.snapshot_state())
    counts: dict[str, dict[str, EntityReconciliation]] = {}
    errors: dict[str, str] = {}
    engine, reader = mirror_sync.engine(), mirror_sync.snapshot_reader()
    try:
        for realm in realms:
            try:
                counts[realm] = _realm_counts(engine, reader, realm, entities)
            except Exception as exc:  # one unreachable company must not hide the others' results
                errors[realm] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                context.log.warning(f"reconciliation of realm {realm} failed: {errors[realm]}")
    finally:
        reader.close()
    for name in entities:
        key = MIRROR_KEYS[name]
        rows, problems = [], []
        for realm in realms:
            if realm in errors:
                problems.append(f"realm {realm}: could not compare ({errors[realm]})")
                rows.append(dg.TableRecord({"realm": realm, "qbo": -1, "mirror": -1, "status": "error"}))
                continue
            result = counts[realm][name]
            if not result.equal:
                problems.append(f"realm {realm}: {name} {result.describe()}")
            rows.append(
                dg.TableRecord(
                    {
                        "realm": realm,
                        "qbo": result.qbo_count,
                        "mirror": result.mirror_count,
                        "status": "equal" if result.equal else "differs",
                    }
                )
            )
        if not realms:
            description = "no company is connected yet"
        elif problems:
            description = "; ".join(problems) + " (a sync since the last change in QBO would fix a lag)"
        else:
            description = f"{name}: mirror equals QBO in {len(realms)} realm(s)"
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=RECONCILIATION_CHECK,
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description=description,
            metadata={"counts": dg.MetadataValue.table(rows, schema=_COUNTS_SCHEMA)},
        )
