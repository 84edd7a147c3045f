"""The change log: append-only, hash-chained record of every change the mirror observed.

Each row has a content hash (SHA-256 of a canonical serialization of all its fields) and
``row_hash = sha256(prev_hash + content_hash)``, so editing, deleting or reordering any row breaks
every hash after it. DuckDB writes the canonical text (``canonical_sql``); an append hashes it in
Python straight from Arrow buffers (hashlib uses the CPU's SHA instructions), ``verify`` in DuckDB:
both must agree byte for byte, which the tests check. Only ``ChangeLogAppender.append`` writes here
(inside the sync's transaction); nothing updates or deletes rows.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from smartsync_pipeline.mirror.arrow_columns import int64s, strings
from smartsync_pipeline.mirror.sql import fetch_one

GENESIS_HASH = "0" * 64
CANONICAL_BATCH_ROWS = 4096  # canonical texts handed to Python at a time (a few MB)

# The fields covered by the content hash, in canonical order; then prev_hash and row_hash.
CONTENT_FIELDS = (
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
)
COLUMNS = (*CONTENT_FIELDS, "prev_hash", "row_hash")
TRIGGERS = frozenset({"schedule", "sensor", "on_demand", "backfill", "webhook", "manual", "reconcile"})


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


def _text_sql(name: str, alias: str) -> str:
    col = f"{alias}{name}"
    if name in ("qbo_last_updated", "recorded_at"):
        return f"strftime(timezone('UTC', {col}), '%Y-%m-%dT%H:%M:%S.%f')"
    if name == "changed_fields":
        return f"CAST(to_json({col}) AS VARCHAR)"
    return f"CAST({col} AS VARCHAR)"


def canonical_sql(alias: str = "") -> str:
    """SQL for the canonical text of a change row: each field as ``<bytes>:<text>`` or ``-`` for NULL,
    joined by ``|``. Length prefixes make it unambiguous without escaping the JSON documents."""
    parts = []
    for name in CONTENT_FIELDS:
        text = _text_sql(name, alias)
        # `||` with a NULL is NULL: the same text as a CASE on NULL, with each field's expression bound
        # twice instead of three times (binding this expression was most of a small append's time).
        parts.append(f"coalesce(CAST(strlen({text}) AS VARCHAR) || ':' || {text}, '-')")
    return "concat_ws('|', " + ", ".join(parts) + ")"


def chain(prev_hash: str, content_hash: str) -> str:
    return hashlib.sha256((prev_hash + content_hash).encode("ascii")).hexdigest()


def row_hash_reader(con: duckdb.DuckDBPyConnection) -> Callable[[int], str | None]:
    """``change_id -> row_hash`` (None when there is no such change) on ``con``."""

    def row_hash_at(change_id: int) -> str | None:
        r = fetch_one(con, "SELECT row_hash FROM change_log WHERE change_id = ?", [change_id])
        return r[0] if r else None

    return row_hash_at


def head(con: duckdb.DuckDBPyConnection) -> ChainHead:
    r = fetch_one(con, "SELECT change_id, row_hash FROM change_log ORDER BY change_id DESC LIMIT 1")
    return ChainHead(int(r[0]), r[1]) if r else ChainHead(0, GENESIS_HASH)


class ChangeLogAppender:
    """Numbers, hashes and appends change rows inside the caller's transaction.

    Several cursors may append at once (a shadow's apply lanes, sync/apply_lanes.py): each call takes
    the next range of change ids as soon as it knows how many rows it has, hashes them on its own
    cursor, and chains them only after every earlier range is chained, so the log is still one
    gap-free chain in change-id order."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        h = head(con)
        self.next_id = h.change_id + 1  # the first id not yet chained
        self.prev_hash = h.row_hash
        self.first_id: int | None = None
        self.seconds = 0.0  # time spent appending, summed over cursors (the sync report's change_log phase)
        self._turns = threading.Condition()
        self._reserved = self.next_id  # the first id not yet handed out
        self._failure: BaseException | None = None

    def append(
        self, changes_sql: str, params: Sequence[Any], rows: int, con: duckdb.DuckDBPyConnection | None = None
    ) -> int:
        """Append the ``rows`` rows of ``changes_sql`` (on ``con``, by default the appender's own
        connection): a SELECT yielding every content field except ``change_id``, plus ``ord`` numbering
        the rows 1..n in the order they are logged. The caller knows ``rows`` (its plan counted them), so
        the id range is taken first and the rows are computed once into a temporary table; DuckDB
        writes each row's canonical text, Python hashes and chains it, then the rows are inserted with
        their hashes. No window runs over the JSON columns, and one call holds one
        apply's rows (a bounded unit of a backfill). Returns the number of rows appended."""
        started = time.perf_counter()
        try:
            return self._append(con or self.con, changes_sql, params, rows)
        except BaseException as exc:
            self.fail(exc)
            raise
        finally:
            with self._turns:
                self.seconds += time.perf_counter() - started

    def fail(self, exc: BaseException) -> None:
        """Stop every append waiting for its turn: a range before it will never be chained."""
        with self._turns:
            if self._failure is None:
                self._failure = exc
            self._turns.notify_all()

    def _append(self, con: duckdb.DuckDBPyConnection, changes_sql: str, params: Sequence[Any], rows: int) -> int:
        if rows == 0:
            return 0
        with self._turns:
            first = self._reserved
            self._reserved += rows
        fields = ", ".join(CONTENT_FIELDS[1:])
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE pending_changes AS
            SELECT {first - 1} + ord AS change_id, ord, {fields} FROM ({changes_sql}) AS c
            """,
            list(params),
        )
        try:
            contents = self._content_hashes(con, rows)
            chained = self._chain(first, contents)
            self._insert(con, chained)
            return rows
        finally:
            con.execute("DROP TABLE IF EXISTS pending_changes")

    @staticmethod
    def _content_hashes(con: duckdb.DuckDBPyConnection, rows: int) -> list[str]:
        """The content hash of each pending row, in ``ord`` order (rows numbered 1..``rows``, no gaps).
        DuckDB writes each row's canonical text, Python hashes it straight from the Arrow buffers:
        hashlib's SHA-256 (the CPU's SHA instructions) costs a third of DuckDB's on the JSON documents."""
        contents: list[str | None] = [None] * rows
        seen, misnumbered = 0, False
        rel = con.sql(f"SELECT ord, {canonical_sql()} AS text FROM pending_changes")
        with rel.to_arrow_reader(batch_size=CANONICAL_BATCH_ROWS) as reader:
            for batch in reader:
                texts = batch.column(1)  # read in place: offsets and bytes, no copy of the texts
                if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
                    texts = texts.cast(pa.large_string())  # another layout (a string view): copied
                width = "q" if pa.types.is_large_string(texts.type) else "i"
                ends = memoryview(texts.buffers()[1]).cast(width)[texts.offset : texts.offset + len(texts) + 1]
                data = memoryview(texts.buffers()[2])
                for i, ord_ in enumerate(batch.column(0).to_pylist()):
                    if 1 <= ord_ <= rows and contents[ord_ - 1] is None:
                        contents[ord_ - 1] = hashlib.sha256(data[ends[i] : ends[i + 1]]).hexdigest()
                    else:
                        misnumbered = True
                seen += len(batch)
        if seen != rows:
            raise RuntimeError(f"the changes yielded {seen} rows where {rows} were announced")
        if misnumbered:
            raise RuntimeError("change rows must be numbered 1..n without gaps")
        return contents  # type: ignore[return-value]  # rows rows, each ord in 1..rows once: every slot filled

    def _chain(self, first: int, contents: list[str]) -> tuple[list[str], list[str]]:
        """(prev_hash, row_hash) of each row, once every earlier range is chained; the head moves on."""
        with self._turns:
            while self.next_id != first and self._failure is None:
                self._turns.wait()
            if self._failure is not None:
                raise RuntimeError("an earlier part of the change log failed") from self._failure
            prev = self.prev_hash
            prevs, hashes = [], []
            for content in contents:
                prevs.append(prev)
                prev = chain(prev, content)
                hashes.append(prev)
            if self.first_id is None:
                self.first_id = first
            self.next_id = first + len(contents)
            self.prev_hash = prev
            self._turns.notify_all()
        return prevs, hashes

    def _insert(self, con: duckdb.DuckDBPyConnection, rows: tuple[list[str], list[str]]) -> None:
        prevs, hashes = rows
        chained = pa.Table.from_arrays(
            [int64s(range(1, len(hashes) + 1)), strings(prevs), strings(hashes)], names=["ord", "prev_hash", "row_hash"]
        )
        con.register("chained_hashes", chained)
        try:
            con.execute(
                f"""
                INSERT INTO change_log ({", ".join(COLUMNS)})
                SELECT {", ".join("n." + f for f in CONTENT_FIELDS)}, h.prev_hash, h.row_hash
                FROM pending_changes AS n JOIN chained_hashes h USING (ord)
                """
            )
        finally:
            con.unregister("chained_hashes")

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.next_id - 1, self.prev_hash)


def verify(con: duckdb.DuckDBPyConnection, *, after: ChainHead | None = None) -> ChainVerification:
    """Recompute every content hash and the chain (from genesis, or from an anchor ``after`` that must
    itself still match); name the first row that does not."""
    prev = GENESIS_HASH
    expected_id = 1
    where, params = "", []
    if after is not None and after.change_id > 0:
        anchor = fetch_one(
            con,
            f"SELECT prev_hash, row_hash, sha256({canonical_sql()}) FROM change_log WHERE change_id = ?",
            [after.change_id],
        )
        if anchor is None:
            return ChainVerification(0, after, after.change_id, f"change {after.change_id} is missing")
        if anchor[1] != after.row_hash or chain(anchor[0], anchor[2]) != anchor[1]:
            return ChainVerification(
                1, after, after.change_id, f"change {after.change_id} was modified after it was recorded"
            )
        prev, expected_id = after.row_hash, after.change_id + 1
        where, params = "WHERE change_id > ?", [after.change_id]
    checked = 0
    last = after or ChainHead(0, GENESIS_HASH)
    rel = con.sql(
        f"SELECT change_id, prev_hash, row_hash, sha256({canonical_sql()}) FROM change_log {where} ORDER BY change_id",
        params=params,
    )
    with rel.to_arrow_reader(batch_size=50_000) as reader:
        for batch in reader:
            for cid, prev_hash, row_hash, content in zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True):
                checked += 1
                if cid != expected_id:
                    return ChainVerification(
                        checked, last, expected_id, f"change {expected_id} is missing (next is {cid})"
                    )
                if prev_hash != prev:
                    return ChainVerification(
                        checked, last, cid, f"change {cid} does not point at the hash of change {cid - 1}"
                    )
                if chain(prev, content) != row_hash:
                    return ChainVerification(checked, last, cid, f"change {cid} was modified after it was recorded")
                prev = row_hash
                expected_id += 1
                last = ChainHead(cid, prev)
    return ChainVerification(checked, last)
