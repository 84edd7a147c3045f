"""The change-log asset: proves every company's audit trail is intact and archives it, incrementally.

Each company has its own hash chain (its own mirror file). Each materialization verifies every
company's chain from the head recorded for it by the previous materialization (the whole chain the
first time) and the chain's head against the company's anchor file (mirror/anchors.py: a cut or
rewritten tail), fails the run naming the company and the first broken change (or the missing ones)
when history was rewritten, and appends each company's new changes to its own Parquet archive
(``realms/<realm>/archive``). Each mirror file is read under that company's writer lock
(``MirrorDatabase.inspect``) for as short a time as its new changes need.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import duckdb

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.change_archive import export_changes
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.locking import LockTimeout
from smartsync_pipeline.mirror import change_log as chain
from smartsync_pipeline.mirror.anchors import AnchorStore

CHANGE_LOG_KEY = dg.AssetKey(["qbo", "change_log"])
AUDIT_GROUP = "audit"
# A company whose writer is busy longer than this (a long full reconciliation) is audited next time,
# from the same anchor, instead of holding up the audit of every other company.
AUDIT_LOCK_WAIT = 30.0

# Metadata keys the next materialization reads back as its starting point: ANCHORS holds, per company,
# the verified head and the last exported change (JSON: realm -> {head_change_id, head_row_hash,
# exported_through_change_id}).
ANCHORS = "anchors"
HEAD_ID = "head_change_id"
HEAD_HASH = "head_row_hash"
EXPORTED_THROUGH = "exported_through_change_id"


@dataclass(frozen=True)
class AuditAnchor:
    """Where the previous materialization stopped for one company: the verified head and the last
    exported change."""

    head: chain.ChainHead | None
    exported_through: int

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> "AuditAnchor":
        head_id, head_hash, exported = record.get(HEAD_ID), record.get(HEAD_HASH), record.get(EXPORTED_THROUGH)
        head = chain.ChainHead(int(head_id), str(head_hash)) if head_id and head_hash else None  # type: ignore[arg-type]
        return cls(head, int(exported) if exported is not None else 0)  # type: ignore[arg-type]

    def as_record(self) -> dict[str, object]:
        return {
            HEAD_ID: self.head.change_id if self.head else 0,
            HEAD_HASH: self.head.row_hash if self.head else "",
            EXPORTED_THROUGH: self.exported_through,
        }


def previous_anchors(instance: dg.DagsterInstance) -> dict[str, AuditAnchor]:
    """Per company, where the last materialization stopped ({} before the first)."""
    event = instance.get_latest_materialization_event(CHANGE_LOG_KEY)
    materialization = event.asset_materialization if event is not None else None
    entry = materialization.metadata.get(ANCHORS) if materialization is not None else None
    records = entry.value if entry is not None else {}
    return {realm: AuditAnchor.from_record(rec) for realm, rec in (records or {}).items()}  # type: ignore[union-attr]


def forget_company(instance: dg.DagsterInstance, realm_id: str) -> bool:
    """Record in Dagster's event log that a company's chain ended (``disconnect --purge`` deleted its
    shard): a runless materialization of this asset whose ``anchors`` no longer hold the company, so a
    new chain of the same company (ids from 1 again) is verified from its start by the next
    materialization and ``audit verify``, not against the deleted one. False when nothing named it."""
    anchors = previous_anchors(instance)
    if realm_id not in anchors:
        return False
    records = {realm: a.as_record() for realm, a in anchors.items() if realm != realm_id}
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=CHANGE_LOG_KEY,
            description=f"company {realm_id} was purged: its change log is no longer tracked",
            metadata={ANCHORS: dg.MetadataValue.json(records), "purged_company": dg.MetadataValue.text(realm_id)},
        )
    )
    return True


def recorded_heads(
    instance: dg.DagsterInstance, realm_id: str, *, since: datetime | None = None
) -> list[tuple[str, chain.ChainHead]]:
    """The heads of one company's chain that Dagster's event log holds: the head this asset last
    verified for it (its ``anchors`` metadata), and the head after the latest materialization of each
    mirror asset's partition of that company that appended changes. They live outside SMARTSYNC_HOME,
    so `audit verify` compares the chain with them too. ``since`` (the chain's first change) leaves out
    materializations of an older chain of the same company (before an upgrade, or a purge and a new
    connect: ids restart at 1)."""
    heads: list[tuple[str, chain.ChainHead]] = []
    anchor = previous_anchors(instance).get(realm_id)
    if anchor is not None and anchor.head is not None:
        heads.append(("Dagster's last qbo/change_log materialization", anchor.head))
    after = since.timestamp() if since is not None else None
    for key in MIRROR_KEYS.values():
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[realm_id], after_timestamp=after), limit=1
        ).records
        materialization = found[0].asset_materialization if found else None
        if materialization is None:
            continue
        last, head_hash = (materialization.metadata.get(k) for k in ("change_id_last", "chain_head_hash"))
        if last is not None and isinstance(last.value, int) and head_hash is not None:
            when = datetime.fromtimestamp(found[0].timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
            heads.append(
                (
                    f"Dagster's {key.to_user_string()} materialization of {when} UTC",
                    chain.ChainHead(last.value, str(head_hash.value)),
                )
            )
    return heads


_CHANGES_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn("entity", "string"), dg.TableColumn("op", "string"), dg.TableColumn("changes", "int")]
)
_COMPANIES_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("realm", "string"),
        dg.TableColumn("verified_from", "string"),
        dg.TableColumn("rows_verified", "int"),
        dg.TableColumn("head_change_id", "int"),
        dg.TableColumn("archived_rows", "int"),
        dg.TableColumn("archive_files", "int"),
    ]
)


class ChangeLogBroken(dg.Failure):
    """The recomputed hash chain does not match what was recorded."""


def describe_change(con: duckdb.DuckDBPyConnection, change_id: int | None) -> str:
    """``realm 9130, Bill 145 (update)``: what a change id refers to, for failure messages."""
    if change_id is None:
        return ""
    row = con.execute(
        "SELECT realm_id, entity, entity_id, op FROM change_log WHERE change_id = ?", [change_id]
    ).fetchall()
    if not row:
        return "no such row"
    realm, name, entity_id, op = row[0]
    return f"realm {realm}, {name} {entity_id} ({op})"


@dataclass
class _CompanyAudit:
    realm_id: str
    anchor: AuditAnchor
    verified_from: str
    rows_verified: int
    by_entity_op: list[tuple[str, str, int]]
    archived_rows: int
    archive_files: int


def _audit_company(mirror_sync: MirrorSyncResource, realm_id: str, anchor: AuditAnchor) -> _CompanyAudit:
    shard = mirror_sync.home().realm(realm_id)
    with mirror_sync.mirror(realm_id).inspect(AUDIT_LOCK_WAIT) as con:
        # Also re-hashes the anchor row itself, so an edit of the anchor's content cannot pass either.
        result = chain.verify(con, after=anchor.head)
        if not result.ok:
            scope = f"after verified change {anchor.head.change_id}" if anchor.head else "from the first change"
            what = describe_change(con, result.first_broken)
            raise ChangeLogBroken(
                description=(
                    f"change log chain is BROKEN at change {result.first_broken} [{what}]: {result.reason} "
                    f"(verified {scope}; {result.rows_checked} rows checked)"
                ),
                metadata={
                    "realm": realm_id,
                    "first_broken_change_id": result.first_broken,
                    "first_broken_change": what,
                    "reason": result.reason,
                },
                allow_retries=False,
            )
        # A cut or rewritten tail is a valid chain: compare the head with the one recorded outside it.
        tail = AnchorStore(mirror_sync.home(), realm_id).check(chain.head(con), chain.row_hash_reader(con))
        if not tail.ok:
            raise ChangeLogBroken(
                description=f"change log tail does not match its anchor: {tail.reason} (company {realm_id})",
                metadata={"realm": realm_id, "reason": tail.reason, "missing": str(tail.missing or "")},
                allow_retries=False,
            )
        new_after = anchor.head.change_id if anchor.head else 0
        by_entity_op = con.execute(
            "SELECT entity, op, count(*) FROM change_log WHERE change_id > ? GROUP BY ALL ORDER BY entity, op",
            [new_after],
        ).fetchall()
        export = export_changes(
            con, shard.archive_dir, after_change_id=anchor.exported_through, through_change_id=result.head.change_id
        )
    verified_from = "full verify from genesis" if anchor.head is None else f"from change {anchor.head.change_id}"
    return _CompanyAudit(
        realm_id,
        AuditAnchor(result.head, export.last_change_id),
        verified_from,
        result.rows_checked,
        [(e, op, int(n)) for e, op, n in by_entity_op],
        export.rows,
        len(export.files),
    )


@dg.asset(
    key=CHANGE_LOG_KEY,
    group_name=AUDIT_GROUP,
    deps=list(MIRROR_KEYS.values()),
    kinds={"duckdb", "parquet"},
    description="Every company's hash-chained change log: verified incrementally from the previous head, "
    "archived append-only to Parquet under SMARTSYNC_HOME/realms/<realm>/archive.",
)
def change_log(context: dg.AssetExecutionContext, mirror_sync: MirrorSyncResource) -> dg.MaterializeResult:
    anchors = previous_anchors(context.instance)
    audits: list[_CompanyAudit] = []
    busy: list[str] = []
    for realm_id in mirror_sync.realms_with_mirror():
        try:
            audits.append(_audit_company(mirror_sync, realm_id, anchors.get(realm_id, AuditAnchor(None, 0))))
        except LockTimeout as exc:
            busy.append(realm_id)
            context.log.warning(f"company {realm_id} skipped this time: {exc}")
    # Companies not audited this time (disconnected, or a mirror not yet written) keep their anchors.
    records = {realm: a.as_record() for realm, a in anchors.items()}
    records.update({a.realm_id: a.anchor.as_record() for a in audits})
    totals: dict[tuple[str, str], int] = {}
    for a in audits:
        for e, op, n in a.by_entity_op:
            totals[(e, op)] = totals.get((e, op), 0) + n
    context.log.info(
        f"change logs intact in {len(audits)} company(ies): {sum(a.rows_verified for a in audits)} rows verified, "
        f"{sum(a.archived_rows for a in audits)} changes archived"
    )
    return dg.MaterializeResult(
        metadata={
            ANCHORS: dg.MetadataValue.json(records),
            "companies_verified": dg.MetadataValue.int(len(audits)),
            "companies_skipped_busy": dg.MetadataValue.text(", ".join(busy) or "-"),
            "rows_verified": dg.MetadataValue.int(sum(a.rows_verified for a in audits)),
            "new_changes": dg.MetadataValue.int(sum(totals.values())),
            "new_changes_by_entity_op": dg.MetadataValue.table(
                [dg.TableRecord({"entity": e, "op": op, "changes": n}) for (e, op), n in sorted(totals.items())],
                schema=_CHANGES_SCHEMA,
            ),
            "archived_rows": dg.MetadataValue.int(sum(a.archived_rows for a in audits)),
            "companies": dg.MetadataValue.table(
                [
                    dg.TableRecord(
                        {
                            "realm": a.realm_id,
                            "verified_from": a.verified_from,
                            "rows_verified": a.rows_verified,
                            "head_change_id": a.anchor.head.change_id if a.anchor.head else 0,
                            "archived_rows": a.archived_rows,
                            "archive_files": a.archive_files,
                        }
                    )
                    for a in audits
                ],
                schema=_COMPANIES_SCHEMA,
            ),
        }
    )
