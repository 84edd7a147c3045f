"""Set-based apply of observed QBO objects to the mirror, with change logging.

The caller (the sync engine) opens one transaction; everything here runs inside it. Incoming objects
are staged as an Arrow table, classified against the mirror with one join (create / update / delete
/ unchanged by SyncToken), and only real changes are written: changed rows are deleted and re-appended
in bulk, tombstones set ``is_deleted``. Typed columns are extracted from the raw JSON by DuckDB.

With ``verify_content`` (``reconcile --deep``, the daily full reconciliation) a row whose SyncToken
is unchanged is also compared column by column with what QBO's object would produce (raw JSON, every
typed column, the times): a mirror row edited behind the engine's back is rewritten from QBO's
object and logged as op ``repair``, naming the fields that differed. Without it (every other sync)
unchanged tokens cost no JSON parsing at all.
Lookups use ``id_key IN (...)`` on a BIGINT so the cost follows the number of changes, not the size of
the mirror.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from smartsync_pipeline.entities import EntitySpec
from smartsync_pipeline.json_text import canonical_texts
from smartsync_pipeline.mirror.arrow_columns import bools, int64s, joined_strings, strings
from smartsync_pipeline.mirror.change_log import ChangeLogAppender
from smartsync_pipeline.mirror.schema import extract_all_sql
from smartsync_pipeline.mirror.sql import sql_literal

STAGING_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),  # arrival order within one sync: the change log follows it
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


class InvalidObjectError(ValueError):
    """A QBO object without the fields every object has (Id); nothing of its batch is applied."""


def stage(objects: Iterable[dict[str, Any]], *, deleted: bool = False, first_seq: int = 0) -> pa.Table:
    """Objects and CDC delete stubs as one staging table. When an Id appears twice (page shifts,
    created-then-deleted inside one CDC window) the newest version wins; a delete beats an active
    copy of the same moment. (A backfill stages every object: versions are only ranked for repeated Ids.)"""
    best: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if not isinstance(obj, dict) or not isinstance(obj.get("Id"), str | int) or obj.get("Id") in ("", None):
            raise InvalidObjectError(f"QBO object without an Id: {str(obj)[:120]}")
        qid = str(obj["Id"])
        prev = best.get(qid)
        if prev is None or _version_rank(obj, deleted) >= _version_rank(prev, deleted):
            best[qid] = obj
    ids = list(best)
    kept = list(best.values())
    metas = [m if isinstance(m := obj.get("MetaData"), dict) else {} for obj in kept]
    tokens = [obj.get("SyncToken") for obj in kept]
    columns = [
        int64s(range(first_seq, first_seq + len(ids))),
        strings(ids),
        int64s(id_key(qid) for qid in ids),
        strings(None if t is None else str(t) for t in tokens),
        joined_strings(*canonical_texts(kept)),  # one buffer and its offsets: no Python string per object
        bools([deleted or obj.get("status") == "Deleted" for obj in kept]),
        strings(_str_or_none(m.get("LastUpdatedTime")) for m in metas),
        strings(_str_or_none(m.get("CreateTime")) for m in metas),
    ]
    return pa.Table.from_arrays(columns, schema=STAGING_SCHEMA)


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
    repaired: int = 0  # same SyncToken, different content: rewritten from QBO's object
    changed_ids: list[tuple[str, str]] = field(default_factory=list)  # (op, id), first few only

    def add(self, other: EntityApplyResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.repaired += other.repaired
        self.changed_ids.extend(other.changed_ids[: max(0, 50 - len(self.changed_ids))])

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted + self.repaired


@dataclass(frozen=True)
class ApplyContext:
    realm_id: str
    trigger: str
    run_id: str | None
    sync_id: str
    now: datetime
    verify_content: bool = False  # compare unchanged-token rows with QBO's content (see the module docstring)


# How the staged rows compare with the mirror, decided in one SQL pass.
_PLAN_SQL = """
WITH s AS (
    SELECT seq, id, id_key, sync_token, is_deleted, last_updated{s_extra} FROM {source}
    QUALIFY row_number() OVER (
        PARTITION BY id
        ORDER BY TRY_CAST(last_updated AS TIMESTAMPTZ) DESC NULLS LAST, is_deleted DESC,
                 TRY_CAST(sync_token AS BIGINT) DESC NULLS LAST, seq DESC) = 1
), m AS (
    SELECT id, id_key, sync_token, is_deleted, deleted_at{m_extra} FROM {table}
    WHERE realm_id = ? AND id_key IN (SELECT id_key FROM s)
)
SELECT s.seq, s.id, s.id_key, s.sync_token, s.last_updated, m.sync_token AS cur_token,
    m.id IS NOT NULL AS held, {repair_fields} AS repair_fields,
    CASE
        WHEN s.is_deleted AND m.id IS NULL THEN 'orphan_delete'
        WHEN s.is_deleted AND m.is_deleted THEN 'unchanged'
        WHEN s.is_deleted THEN 'delete'
        -- A listing read before the object was deleted (a full sync racing an incremental one) never
        -- brings it back; QBO does not reuse Ids, so only a newer version could.
        WHEN m.is_deleted AND TRY_CAST(s.last_updated AS TIMESTAMPTZ) <= m.deleted_at THEN 'unchanged'
        WHEN m.id IS NULL OR m.is_deleted THEN 'create'
        WHEN s.sync_token IS NOT DISTINCT FROM m.sync_token
            THEN CASE WHEN len({repair_fields}) > 0 THEN 'repair' ELSE 'unchanged' END
        WHEN TRY_CAST(s.sync_token AS BIGINT) < TRY_CAST(m.sync_token AS BIGINT) THEN 'unchanged'
        ELSE 'update'
    END AS op
FROM s LEFT JOIN m ON m.id_key = s.id_key AND m.id = s.id
"""

# The plan with its changes numbered 1..n in arrival order (one statement: the window runs on the plan's
# small columns, never over the JSON).
_NUMBERED_PLAN_SQL = """
CREATE OR REPLACE TEMP TABLE apply_plan AS
SELECT *, CASE WHEN op <> 'unchanged'
    THEN row_number() OVER (PARTITION BY op = 'unchanged' ORDER BY seq) END AS change_no
FROM ({plan}) AS plan
"""


def _plan_sql(spec: EntitySpec, source: str, verify_content: bool) -> str:
    """The plan statement; with ``verify_content`` it also lists, per row, the stored fields that
    differ from what the staged object produces (``repair_fields``)."""
    if not verify_content:
        return _PLAN_SQL.format(source=source, table=spec.table, s_extra="", m_extra="", repair_fields="[]::VARCHAR[]")
    values, typed = extract_all_sql(spec, "raw")
    stored = [c.name for c in spec.columns]
    pairs = [
        ("raw", "CAST(m.raw AS VARCHAR)", "s.raw"),
        *((name, f"m.{name}", expr) for name, expr in zip(stored, typed, strict=True)),
        ("created_time", "m.created_time", "TRY_CAST(s.created AS TIMESTAMPTZ)"),
        ("last_updated_time", "m.last_updated_time", "TRY_CAST(s.last_updated AS TIMESTAMPTZ)"),
    ]
    cases = ", ".join(f"CASE WHEN {m} IS DISTINCT FROM {x} THEN '{name}' END" for name, m, x in pairs)
    return _PLAN_SQL.format(
        source=source,
        table=spec.table,
        s_extra=f", raw, created, {values} AS v",
        m_extra=", raw, created_time, last_updated_time, " + ", ".join(stored),
        repair_fields=(
            f"CASE WHEN m.id IS NULL THEN []::VARCHAR[] ELSE list_filter([{cases}], lambda x: x IS NOT NULL) END"
        ),
    )


# The change-log rows of one apply, in arrival order: the JSON before comes from the mirror (so this
# runs before the rows are replaced), the JSON after from the staged rows. Ordered by ``ord``.
_CHANGES_SQL = """
SELECT p.change_no AS ord, ?::VARCHAR AS realm_id, ?::VARCHAR AS entity, p.id AS entity_id,
    CASE WHEN p.op = 'orphan_delete' THEN 'delete' ELSE p.op END AS op,
    {before_token} AS sync_token_before,
    CASE WHEN p.op IN ('create', 'update', 'repair') THEN p.sync_token END AS sync_token_after,
    {changed_fields} AS changed_fields,
    {before_json} AS before_json,
    CASE WHEN p.op IN ('create', 'update', 'repair') THEN s.raw END AS after_json,
    TRY_CAST(p.last_updated AS TIMESTAMPTZ) AS qbo_last_updated,
    ?::TIMESTAMPTZ AS recorded_at, ?::VARCHAR AS trigger, ?::VARCHAR AS run_id, ?::VARCHAR AS sync_id
FROM apply_plan p
JOIN {source} s ON s.seq = p.seq{before_join}
WHERE p.op <> 'unchanged'
"""
_BEFORE = {
    "before_token": "CASE WHEN p.op IN ('update', 'repair', 'delete') THEN p.cur_token END",
    "changed_fields": """CASE WHEN p.op IN ('update', 'repair') THEN list_sort(list_distinct(list_concat(
        CASE WHEN p.op = 'repair' THEN list_filter(p.repair_fields, lambda f: f <> 'raw') ELSE []::VARCHAR[] END,
        list_filter(
            list_distinct(list_concat(json_keys(m.raw), json_keys(s.raw))),
            lambda k: k NOT IN ('SyncToken', 'MetaData')
                AND json_extract(m.raw, '$."' || k || '"') IS DISTINCT FROM json_extract(s.raw, '$."' || k || '"')
        )
    ))) END""",
    "before_json": "CASE WHEN p.op IN ('update', 'repair', 'delete') THEN CAST(m.raw AS VARCHAR) END",
    "before_join": """
LEFT JOIN (
    SELECT id, id_key, raw FROM {table}
    WHERE realm_id = ? AND id_key IN (SELECT id_key FROM apply_plan WHERE op IN ('update', 'repair', 'delete'))
) m ON m.id_key = p.id_key AND m.id = p.id""",
}
# Creates (and deletes of objects never held) have no "before": the same rows without reading the mirror.
_NO_BEFORE = {
    "before_token": "NULL::VARCHAR",
    "changed_fields": "NULL::VARCHAR[]",
    "before_json": "NULL::VARCHAR",
    "before_join": "",
}
_WITH_BEFORE = frozenset({"update", "repair", "delete"})


def _changes_sql(source: str, table: str, with_before: bool) -> str:
    parts = _BEFORE if with_before else _NO_BEFORE
    return _CHANGES_SQL.format(source=source, **{k: v.format(table=table) for k, v in parts.items()})


def apply_staged(
    con: duckdb.DuckDBPyConnection,
    spec: EntitySpec,
    staged: pa.Table | list[str],
    ctx: ApplyContext,
    log: ChangeLogAppender,
) -> EntityApplyResult:
    """Apply one entity's staged rows (an Arrow table, or the Parquet files of a full listing) inside
    the caller's transaction. Classification, row writes and typed-column extraction run in DuckDB;
    Python only walks the changed rows to number and hash them into the change log."""
    result = EntityApplyResult(spec.name)
    if isinstance(staged, pa.Table):
        if staged.num_rows == 0:
            return result
        con.register("staged_rows", staged)
        source = "staged_rows"
    else:
        if not staged:
            return result
        source = "read_parquet([" + ", ".join(sql_literal(f) for f in staged) + "])"
    try:
        _apply(con, spec, source, ctx, log, result)
    finally:
        # After a failed statement the transaction is aborted and the caller rolls back; cleanup must
        # not replace the original error with "transaction is aborted".
        with contextlib.suppress(duckdb.Error):
            con.execute("DROP TABLE IF EXISTS apply_plan")
        if source == "staged_rows":
            with contextlib.suppress(duckdb.Error):
                con.unregister("staged_rows")
    return result


def _apply(
    con: duckdb.DuckDBPyConnection,
    spec: EntitySpec,
    source: str,
    ctx: ApplyContext,
    log: ChangeLogAppender,
    result: EntityApplyResult,
) -> None:
    table = spec.table
    con.execute(_NUMBERED_PLAN_SQL.format(plan=_plan_sql(spec, source, ctx.verify_content)), [ctx.realm_id])
    # Counts per op, whether a rewritten row is held (its old row must go first), and the first changes.
    counts: dict[str, int] = {}
    held = 0
    firsts: list[tuple[int, str, str]] = []
    for op, n, rewrites_held, first in con.execute(
        "SELECT op, count(*), count(*) FILTER (WHERE held AND op IN ('create', 'update', 'repair')), "
        "min_by({'seq': seq, 'id': id}, seq, 50) FILTER (WHERE op <> 'unchanged') FROM apply_plan GROUP BY op"
    ).fetchall():
        counts[op], held = n, held + rewrites_held
        firsts += [(change["seq"], op, change["id"]) for change in first or []]
    result.unchanged = counts.get("unchanged", 0)
    if not set(counts) - {"unchanged"}:
        return

    # 1. The change log (reads the mirror's "before" rows, so it goes first).
    with_before = not _WITH_BEFORE.isdisjoint(counts)
    params = [ctx.realm_id, spec.name, ctx.now, ctx.trigger, ctx.run_id, ctx.sync_id]
    log.append(
        _changes_sql(source, table, with_before),
        [*params, ctx.realm_id] if with_before else params,
        sum(n for op, n in counts.items() if op != "unchanged"),
        con,
    )
    result.created = counts.get("create", 0)
    result.updated = counts.get("update", 0)
    result.deleted = counts.get("delete", 0) + counts.get("orphan_delete", 0)
    result.repaired = counts.get("repair", 0)
    for _seq, op, qid in sorted(firsts)[:50]:
        result.changed_ids.append(("delete" if op == "orphan_delete" else op, qid))

    # 2. Rows: replace created/updated ones (and store tombstones of objects we never saw) ...
    if held:
        rewrite = "SELECT {col} FROM apply_plan WHERE op IN ('create', 'update', 'repair') AND held"
        con.execute(
            f"DELETE FROM {table} WHERE realm_id = ? AND id_key IN ({rewrite.format(col='id_key')}) "
            f"AND id IN ({rewrite.format(col='id')})",
            [ctx.realm_id],
        )
    cols = ", ".join(c.name for c in spec.columns)
    values, typed = extract_all_sql(spec, "s.raw")
    con.execute(
        f"""
        INSERT INTO {table} (realm_id, id, id_key, sync_token, {cols}, created_time, last_updated_time,
                             raw, is_deleted, deleted_at, synced_at)
        SELECT ?, id, id_key, sync_token, {", ".join(typed)},
               TRY_CAST(created AS TIMESTAMPTZ), TRY_CAST(last_updated AS TIMESTAMPTZ), raw, is_deleted,
               CASE WHEN is_deleted THEN coalesce(TRY_CAST(last_updated AS TIMESTAMPTZ), ?::TIMESTAMPTZ) END, ?
        FROM (
            SELECT s.*, {values} AS v FROM {source} s
            WHERE s.seq IN (SELECT seq FROM apply_plan WHERE op IN ('create', 'update', 'repair', 'orphan_delete'))
        )
        """,
        [ctx.realm_id, ctx.now, ctx.now],
    )
    # ... and mark deletes of rows we hold: tombstones keep the last known content.
    if counts.get("delete"):
        con.execute(
            f"""
            UPDATE {table} AS t
            SET is_deleted = true, deleted_at = coalesce(TRY_CAST(p.last_updated AS TIMESTAMPTZ), ?::TIMESTAMPTZ),
                synced_at = ?
            FROM apply_plan p
            WHERE p.op = 'delete' AND t.realm_id = ? AND t.id_key = p.id_key AND t.id = p.id
            """,
            [ctx.now, ctx.now, ctx.realm_id],
        )


def tombstone_stubs(ids: Iterable[str], when: datetime) -> list[dict[str, Any]]:
    """Delete stubs for objects a full sync found missing from QBO (confirmed hard deletes)."""
    stamp = when.isoformat()
    return [{"Id": i, "status": "Deleted", "MetaData": {"LastUpdatedTime": stamp}} for i in ids]


def _parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
