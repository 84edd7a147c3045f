"""Set-based apply of observed QBO objects to the mirror, with change logging.

The caller (the sync engine) opens one transaction; everything here runs inside it. Incoming objects
are staged as an Arrow table, classified against the mirror with one join (create / update / delete
/ unchanged by SyncToken), and only real changes are written: changed rows are deleted and re-appended
in bulk, tombstones set ``is_deleted``. Typed columns are extracted from the raw JSON by DuckDB.
Lookups use ``id_key IN (...)`` on a BIGINT so the cost follows the number of changes, not the size of
the mirror.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from smartsync_pipeline.entities import EntitySpec
from smartsync_pipeline.mirror.change_log import ChangeLogWriter
from smartsync_pipeline.mirror.schema import extract_sql

# Fields that change on every write and say nothing about what changed.
_BOOKKEEPING_FIELDS = frozenset({"SyncToken", "MetaData"})

_OP_COUNTERS = {"create": "created", "update": "updated", "delete": "deleted"}

STAGING_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("id_key", pa.int64()),
        ("sync_token", pa.string()),
        ("raw", pa.string()),
        ("is_deleted", pa.bool_()),
        ("last_updated", pa.string()),
        ("created", pa.string()),
    ]
)


def id_key(qbo_id: str) -> int:
    """BIGINT form of a QBO Id: the number itself for digit strings, else a stable 63-bit hash."""
    if qbo_id.isdigit() and len(qbo_id) < 19:
        return int(qbo_id)
    digest = int.from_bytes(hashlib.blake2b(qbo_id.encode(), digest_size=8).digest(), "big")
    return -(digest % (2**63)) - 1  # negative: never collides with a numeric Id


def canonical_json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class InvalidObjectError(ValueError):
    """A QBO object without the fields every object has (Id); nothing of its batch is applied."""


def stage(objects: Iterable[dict[str, Any]], *, deleted: bool = False) -> pa.Table:
    """Objects and CDC delete stubs as one staging table. When an Id appears twice (page shifts,
    created-then-deleted inside one CDC window) the newest version wins; a delete beats an active
    copy of the same moment."""
    best: dict[str, tuple[tuple, dict[str, Any]]] = {}
    for obj in objects:
        if not isinstance(obj, dict) or not isinstance(obj.get("Id"), str | int) or obj.get("Id") in ("", None):
            raise InvalidObjectError(f"QBO object without an Id: {str(obj)[:120]}")
        qid = str(obj["Id"])
        rank = _version_rank(obj, deleted)
        prev = best.get(qid)
        if prev is None or rank >= prev[0]:
            best[qid] = (rank, obj)
    rows: dict[str, list[Any]] = {name: [] for name in STAGING_SCHEMA.names}
    for qid, (_, obj) in best.items():
        meta = obj.get("MetaData") if isinstance(obj.get("MetaData"), dict) else {}
        token = obj.get("SyncToken")
        rows["id"].append(qid)
        rows["id_key"].append(id_key(qid))
        rows["sync_token"].append(None if token is None else str(token))
        rows["raw"].append(canonical_json(obj))
        rows["is_deleted"].append(deleted or obj.get("status") == "Deleted")
        rows["last_updated"].append(_str_or_none(meta.get("LastUpdatedTime")))
        rows["created"].append(_str_or_none(meta.get("CreateTime")))
    return pa.Table.from_pydict(rows, schema=STAGING_SCHEMA)


def _version_rank(obj: dict[str, Any], deleted: bool) -> tuple:
    meta = obj.get("MetaData") if isinstance(obj.get("MetaData"), dict) else {}
    when = _parse_ts(_str_or_none(meta.get("LastUpdatedTime")))
    stamp = when.timestamp() if when else float("-inf")
    return (stamp, deleted or obj.get("status") == "Deleted", _token_int(obj.get("SyncToken")))


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _token_int(token: Any) -> int:
    try:
        return int(token)
    except (TypeError, ValueError):
        return -1


@dataclass
class EntityApplyResult:
    """What one apply did to one entity of one realm."""

    entity: str
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    changed_ids: list[tuple[str, str]] = field(default_factory=list)  # (op, id), first few only

    def add(self, other: EntityApplyResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.changed_ids.extend(other.changed_ids[: max(0, 50 - len(self.changed_ids))])

    def count(self, op: str) -> None:
        attr = _OP_COUNTERS[op]
        setattr(self, attr, getattr(self, attr) + 1)

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass(frozen=True)
class ApplyContext:
    realm_id: str
    trigger: str
    run_id: str | None
    sync_id: str
    now: datetime


def apply_staged(
    con: duckdb.DuckDBPyConnection,
    spec: EntitySpec,
    staged: pa.Table,
    ctx: ApplyContext,
    log: ChangeLogWriter,
) -> EntityApplyResult:
    """Apply one staged batch of one entity (inside the caller's transaction)."""
    result = EntityApplyResult(spec.name)
    if staged.num_rows == 0:
        return result
    con.register("stg", staged)
    try:
        return _apply_registered(con, spec, staged, ctx, log, result)
    finally:
        con.unregister("stg")
        for name in ("rows", "marks"):
            con.unregister(name)


def _apply_registered(
    con: duckdb.DuckDBPyConnection,
    spec: EntitySpec,
    staged: pa.Table,
    ctx: ApplyContext,
    log: ChangeLogWriter,
    result: EntityApplyResult,
) -> EntityApplyResult:
    table = spec.table
    current = con.execute(
        f"""
        SELECT s.id, s.id_key, s.sync_token, s.is_deleted, s.last_updated,
               m.sync_token AS cur_token, m.is_deleted AS cur_deleted, m.id IS NOT NULL AS known
        FROM stg s
        LEFT JOIN (
            SELECT id, id_key, sync_token, is_deleted FROM {table}
            WHERE realm_id = ? AND id_key IN (SELECT id_key FROM stg)
        ) m ON m.id_key = s.id_key AND m.id = s.id
        """,
        [ctx.realm_id],
    ).fetchall()

    upsert_ids: list[str] = []  # creates and updates: rows replaced by the staged version
    tombstone_ids: list[str] = []  # deletes of rows we hold
    orphan_delete_ids: list[str] = []  # deletes of objects we never saw: stored as tombstones
    plan: list[tuple[str, str, str | None, str | None]] = []  # (op, id, token_before, token_after)
    for qid, _key, token, is_del, _lu, cur_token, cur_deleted, known in current:
        if is_del:
            if known and not cur_deleted:
                tombstone_ids.append(qid)
                plan.append(("delete", qid, cur_token, None))
            elif not known:
                orphan_delete_ids.append(qid)
                plan.append(("delete", qid, None, None))
            else:
                result.unchanged += 1
        elif not known or cur_deleted:
            upsert_ids.append(qid)
            plan.append(("create", qid, None, token))
        elif token == cur_token or _token_int(token) < _token_int(cur_token):
            result.unchanged += 1  # seen before (or an older copy arriving late)
        else:
            upsert_ids.append(qid)
            plan.append(("update", qid, cur_token, token))
    if not plan:
        return result

    changed = [qid for _, qid, _, _ in plan]
    before = _raw_by_id(con, table, ctx.realm_id, changed, where="")
    incoming = {r["id"]: r for r in staged.filter(pc.is_in(staged["id"], pa.array(changed))).to_pylist()}

    for op, qid, token_before, token_after in plan:
        new = incoming[qid]
        before_raw = before.get(qid) if op != "create" else None
        after_raw = new["raw"] if op != "delete" else None
        log.add(
            {
                "realm_id": ctx.realm_id,
                "entity": spec.name,
                "entity_id": qid,
                "op": op,
                "sync_token_before": token_before,
                "sync_token_after": token_after,
                "changed_fields": _changed_fields(before_raw, after_raw) if op == "update" else None,
                "before_json": before_raw,
                "after_json": after_raw,
                "qbo_last_updated": _parse_ts(new["last_updated"]),
                "recorded_at": ctx.now,
                "trigger": ctx.trigger,
                "run_id": ctx.run_id,
                "sync_id": ctx.sync_id,
            }
        )
        result.count(op)
        if len(result.changed_ids) < 50:
            result.changed_ids.append((op, qid))

    if upsert_ids or orphan_delete_ids:
        rewrite = upsert_ids + orphan_delete_ids
        _delete_rows(con, table, ctx.realm_id, rewrite)
        con.register("rows", staged.filter(pc.is_in(staged["id"], pa.array(rewrite))))
        cols = ", ".join(c.name for c in spec.columns)
        extracts = ", ".join(extract_sql(c) for c in spec.columns)
        con.execute(
            f"""
            INSERT INTO {table} (realm_id, id, id_key, sync_token, {cols}, created_time, last_updated_time,
                                 raw, is_deleted, deleted_at, synced_at)
            SELECT ?, id, id_key, sync_token, {extracts},
                   TRY_CAST(created AS TIMESTAMPTZ), TRY_CAST(last_updated AS TIMESTAMPTZ),
                   raw, is_deleted, CASE WHEN is_deleted THEN coalesce(TRY_CAST(last_updated AS TIMESTAMPTZ), ?) END, ?
            FROM rows
            """,
            [ctx.realm_id, ctx.now, ctx.now],
        )
    if tombstone_ids:
        deleted_at = {qid: _parse_ts(incoming[qid]["last_updated"]) or ctx.now for qid in tombstone_ids}
        marks = pa.Table.from_pydict(
            {
                "id": tombstone_ids,
                "id_key": [id_key(q) for q in tombstone_ids],
                "deleted_at": [deleted_at[q] for q in tombstone_ids],
            },
            schema=pa.schema(
                [("id", pa.string()), ("id_key", pa.int64()), ("deleted_at", pa.timestamp("us", tz="UTC"))]
            ),
        )
        con.register("marks", marks)
        con.execute(
            f"""
            UPDATE {table} AS t SET is_deleted = true, deleted_at = marks.deleted_at, synced_at = ?
            FROM marks WHERE t.realm_id = ? AND t.id_key = marks.id_key AND t.id = marks.id
            """,
            [ctx.now, ctx.realm_id],
        )
    return result


def tombstone_stubs(ids: Iterable[str], when: datetime) -> list[dict[str, Any]]:
    """Delete stubs for objects a full sync found missing from QBO (confirmed hard deletes)."""
    stamp = when.isoformat()
    return [{"Id": i, "status": "Deleted", "MetaData": {"LastUpdatedTime": stamp}} for i in ids]


def _raw_by_id(con: duckdb.DuckDBPyConnection, table: str, realm_id: str, ids: list[str], where: str) -> dict[str, str]:
    if not ids:
        return {}
    keys = [id_key(i) for i in ids]
    rows = con.execute(
        f"SELECT id, raw FROM {table} WHERE realm_id = ? AND id_key IN (SELECT unnest(?::BIGINT[])) {where}",
        [realm_id, keys],
    ).fetchall()
    wanted = set(ids)
    return {qid: raw for qid, raw in rows if qid in wanted}


def _delete_rows(con: duckdb.DuckDBPyConnection, table: str, realm_id: str, ids: list[str]) -> None:
    con.execute(
        f"DELETE FROM {table} WHERE realm_id = ? AND id_key IN (SELECT unnest(?::BIGINT[])) "
        "AND id IN (SELECT unnest(?::VARCHAR[]))",
        [realm_id, [id_key(i) for i in ids], ids],
    )


def _changed_fields(before: str | None, after: str | None) -> list[str]:
    a = json.loads(before) if before else {}
    b = json.loads(after) if after else {}
    keys = (set(a) | set(b)) - _BOOKKEEPING_FIELDS
    return sorted(k for k in keys if a.get(k) != b.get(k))


def _parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
