"""The change-log asset: proves the audit trail is intact and archives it, incrementally.

Each materialization verifies the hash chain from the head recorded by the previous one (the whole
chain the first time) and the chain's head against its anchor (mirror/anchors.py: a cut or rewritten
tail), fails the run naming the first broken change or the missing ones, and appends the new changes
to the Parquet archive. The mirror file is read under the writer lock
(``MirrorDatabase.inspect``) for as short a time as the new changes need.
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
from smartsync_pipeline.mirror import change_log as chain
from smartsync_pipeline.mirror.anchors import AnchorStore

CHANGE_LOG_KEY = dg.AssetKey(["qbo", "change_log"])
AUDIT_GROUP = "audit"

# Metadata keys the next materialization reads back as its starting point.
HEAD_ID = "head_change_id"
HEAD_HASH = "head_row_hash"
EXPORTED_THROUGH = "exported_through_change_id"


@dataclass(frozen=True)
class AuditAnchor:
    """Where the previous materialization stopped: the verified head and the last exported change."""

    head: chain.ChainHead | None
    exported_through: int

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, dg.MetadataValue]) -> "AuditAnchor":
        def value(key: str) -> object:
            entry = metadata.get(key)
            return entry.value if entry is not None else None

        head_id, head_hash, exported = value(HEAD_ID), value(HEAD_HASH), value(EXPORTED_THROUGH)
        head = chain.ChainHead(int(head_id), str(head_hash)) if head_id and head_hash else None  # type: ignore[arg-type]
        return cls(head, int(exported) if exported is not None else 0)  # type: ignore[arg-type]


def previous_anchor(instance: dg.DagsterInstance) -> AuditAnchor:
    event = instance.get_latest_materialization_event(CHANGE_LOG_KEY)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return AuditAnchor(None, 0)
    return AuditAnchor.from_metadata(materialization.metadata)


def recorded_heads(instance: dg.DagsterInstance) -> list[tuple[str, chain.ChainHead]]:
    """The chain heads Dagster's event log holds: the head this asset last verified, and the head
    after the latest materialization of each mirror asset that appended changes. They live outside
    SMARTSYNC_HOME, so `audit verify` compares the chain with them too."""
    heads: list[tuple[str, chain.ChainHead]] = []
    anchor = previous_anchor(instance)
    if anchor.head is not None:
        heads.append(("Dagster's last qbo/change_log materialization", anchor.head))
    for key in MIRROR_KEYS.values():
        event = instance.get_latest_materialization_event(key)
        materialization = event.asset_materialization if event is not None else None
        if materialization is None:
            continue
        last, head_hash = (materialization.metadata.get(k) for k in ("change_id_last", "chain_head_hash"))
        if last is not None and isinstance(last.value, int) and head_hash is not None:
            when = datetime.fromtimestamp(event.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
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
_FILES_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("file", "string"),
        dg.TableColumn("first", "int"),
        dg.TableColumn("last", "int"),
        dg.TableColumn("rows", "int"),
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


@dg.asset(
    key=CHANGE_LOG_KEY,
    group_name=AUDIT_GROUP,
    deps=list(MIRROR_KEYS.values()),
    kinds={"duckdb", "parquet"},
    description="The hash-chained change log of every mirror: verified incrementally from the previous "
    "head, archived append-only to Parquet under SMARTSYNC_HOME/archive.",
)
def change_log(context: dg.AssetExecutionContext, mirror_sync: MirrorSyncResource) -> dg.MaterializeResult:
    anchor = previous_anchor(context.instance)
    home = mirror_sync.home()
    with mirror_sync.mirror().inspect() as con:
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
                    "first_broken_change_id": result.first_broken,
                    "first_broken_change": what,
                    "reason": result.reason,
                },
                allow_retries=False,
            )
        # A cut or rewritten tail is a valid chain: compare the head with the one recorded outside it.
        tail = AnchorStore(home).check(chain.head(con), chain.row_hash_reader(con))
        if not tail.ok:
            raise ChangeLogBroken(
                description=f"change log tail does not match its anchor: {tail.reason}",
                metadata={"reason": tail.reason, "missing": str(tail.missing or "")},
                allow_retries=False,
            )
        new_after = anchor.head.change_id if anchor.head else 0
        by_entity_op = con.execute(
            "SELECT entity, op, count(*) FROM change_log WHERE change_id > ? GROUP BY ALL ORDER BY entity, op",
            [new_after],
        ).fetchall()
        export = export_changes(
            con, home.archive_dir, after_change_id=anchor.exported_through, through_change_id=result.head.change_id
        )
    verified_from = "full verify from genesis" if anchor.head is None else f"from change {anchor.head.change_id}"
    context.log.info(
        f"change log intact through {result.head.change_id} ({result.rows_checked} rows, {verified_from}); "
        f"archived {export.rows} changes in {len(export.files)} file(s)"
    )
    return dg.MaterializeResult(
        metadata={
            HEAD_ID: dg.MetadataValue.int(result.head.change_id),
            HEAD_HASH: dg.MetadataValue.text(result.head.row_hash),
            EXPORTED_THROUGH: dg.MetadataValue.int(export.last_change_id),
            "rows_verified": dg.MetadataValue.int(result.rows_checked),
            "verified_from": dg.MetadataValue.text(verified_from),
            "new_changes": dg.MetadataValue.int(sum(n for _, _, n in by_entity_op)),
            "new_changes_by_entity_op": dg.MetadataValue.table(
                [dg.TableRecord({"entity": e, "op": op, "changes": int(n)}) for e, op, n in by_entity_op],
                schema=_CHANGES_SCHEMA,
            ),
            "archived_rows": dg.MetadataValue.int(export.rows),
            "archive_dir": dg.MetadataValue.path(str(home.archive_dir)),
            "archive_files": dg.MetadataValue.table(
                [
                    dg.TableRecord(
                        {
                            "file": str(f.path.relative_to(home.archive_dir)),
                            "first": f.first_change_id,
                            "last": f.last_change_id,
                            "rows": f.rows,
                        }
                    )
                    for f in export.files
                ],
                schema=_FILES_SCHEMA,
            ),
        }
    )
