"""The change log: append-only, hash-chained record of every change the mirror observed.

Each row's ``row_hash`` is SHA-256 over the previous row's hash and a canonical serialization of the
row, so editing, deleting or reordering any row breaks every hash after it. Only ``append`` writes
here (inside the sync's transaction); nothing updates or deletes rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from smartsync_pipeline.mirror.sql import fetch_one

GENESIS_HASH = "0" * 64

# Column order of the table and of the canonical form (row_hash excluded).
FIELDS = (
    "change_id",
    "realm_id",
    "entity",
    "entity_id",
    "op",
    "sync_token_before",
    "sync_token_after",
    "changed_fields",
    "before_json",
    "after_json",
    "qbo_last_updated",
    "recorded_at",
    "trigger",
    "run_id",
    "sync_id",
    "prev_hash",
)
TRIGGERS = frozenset({"schedule", "sensor", "on_demand", "backfill", "webhook", "manual"})
OPS = frozenset({"create", "update", "delete"})


@dataclass(frozen=True)
class ChainHead:
    change_id: int  # 0 when the log is empty
    row_hash: str


@dataclass(frozen=True)
class ChainVerification:
    """Result of recomputing the chain; ``first_broken`` names the first row that does not match."""

    rows_checked: int
    head: ChainHead
    first_broken: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(row: dict[str, Any]) -> str:
    """The exact text that is hashed for a row: stable across Python, DuckDB and time zones."""
    values = []
    for name in FIELDS:
        v = row[name]
        if isinstance(v, datetime):
            v = _ts(v)
        elif name == "changed_fields" and v is not None:
            v = list(v)
        values.append(v)
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def row_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(row).encode("utf-8")).hexdigest()


def head(con: duckdb.DuckDBPyConnection) -> ChainHead:
    r = fetch_one(con, "SELECT change_id, row_hash FROM change_log ORDER BY change_id DESC LIMIT 1")
    return ChainHead(int(r[0]), r[1]) if r else ChainHead(0, GENESIS_HASH)


_ARROW_SCHEMA = pa.schema(
    [
        ("change_id", pa.int64()),
        ("realm_id", pa.string()),
        ("entity", pa.string()),
        ("entity_id", pa.string()),
        ("op", pa.string()),
        ("sync_token_before", pa.string()),
        ("sync_token_after", pa.string()),
        ("changed_fields", pa.list_(pa.string())),
        ("before_json", pa.string()),
        ("after_json", pa.string()),
        ("qbo_last_updated", pa.timestamp("us", tz="UTC")),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("trigger", pa.string()),
        ("run_id", pa.string()),
        ("sync_id", pa.string()),
        ("prev_hash", pa.string()),
        ("row_hash", pa.string()),
    ]
)


class ChangeLogWriter:
    """Numbers, chains and appends change rows inside the caller's transaction, in batches."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, batch_rows: int = 20_000) -> None:
        self.con = con
        h = head(con)
        self.next_id = h.change_id + 1
        self.prev_hash = h.row_hash
        self.first_id: int | None = None
        self.count = 0
        self._batch: list[dict[str, Any]] = []
        self._batch_rows = batch_rows

    def add(self, row: dict[str, Any]) -> None:
        if row["op"] not in OPS:
            raise ValueError(f"unknown change op {row['op']!r}")
        if row["trigger"] not in TRIGGERS:
            raise ValueError(f"unknown trigger {row['trigger']!r}; expected one of {sorted(TRIGGERS)}")
        row = dict(row, change_id=self.next_id, prev_hash=self.prev_hash)
        row["row_hash"] = row_hash(row)
        self.prev_hash = row["row_hash"]
        if self.first_id is None:
            self.first_id = self.next_id
        self.next_id += 1
        self.count += 1
        self._batch.append(row)
        if len(self._batch) >= self._batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        columns = {name: [r[name] for r in self._batch] for name in _ARROW_SCHEMA.names}
        self.con.register("change_batch", pa.Table.from_pydict(columns, schema=_ARROW_SCHEMA))
        try:
            cols = ", ".join(_ARROW_SCHEMA.names)
            self.con.execute(f"INSERT INTO change_log ({cols}) SELECT {cols} FROM change_batch")
        finally:
            self.con.unregister("change_batch")
        self._batch.clear()

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.next_id - 1, self.prev_hash)


def iter_rows(
    con: duckdb.DuckDBPyConnection, where: str = "", params: Iterable[Any] = (), batch: int = 10_000
) -> Iterator[dict[str, Any]]:
    """Change rows in change_id order as dicts (timestamps as aware UTC datetimes)."""
    cols = ", ".join((*FIELDS, "row_hash"))
    rel = con.sql(f"SELECT {cols} FROM change_log {where} ORDER BY change_id", params=list(params))
    with rel.to_arrow_reader(batch_size=batch) as reader:
        for rb in reader:
            yield from rb.to_pylist()


def verify(con: duckdb.DuckDBPyConnection, *, after: ChainHead | None = None) -> ChainVerification:
    """Recompute the chain (from genesis, or from an anchor ``after`` that must itself still match)."""
    prev = GENESIS_HASH
    expected_id = 1
    where, params = "", []
    if after is not None and after.change_id > 0:
        anchor = fetch_one(con, "SELECT row_hash FROM change_log WHERE change_id = ?", [after.change_id])
        if anchor is None or anchor[0] != after.row_hash:
            return ChainVerification(
                0, after, after.change_id, f"anchor change {after.change_id} is missing or was rewritten"
            )
        prev, expected_id = after.row_hash, after.change_id + 1
        where, params = "WHERE change_id > ?", [after.change_id]
    checked = 0
    last = after or ChainHead(0, GENESIS_HASH)
    for row in iter_rows(con, where, params):
        checked += 1
        cid = row["change_id"]
        if cid != expected_id:
            return ChainVerification(checked, last, expected_id, f"change {expected_id} is missing (next is {cid})")
        if row["prev_hash"] != prev:
            return ChainVerification(checked, last, cid, f"change {cid} does not point at the hash of change {cid - 1}")
        if row_hash(row) != row["row_hash"]:
            return ChainVerification(checked, last, cid, f"change {cid} was modified after it was recorded")
        prev = row["row_hash"]
        expected_id += 1
        last = ChainHead(cid, prev)
    return ChainVerification(checked, last)
