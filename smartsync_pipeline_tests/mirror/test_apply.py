"""The set-based apply: classification by SyncToken, tombstones, change-log rows and the hash chain."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import duckdb
import pytest

from smartsync_pipeline.entities import entity
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.apply import ApplyContext, apply_staged, id_key, stage
from smartsync_pipeline.mirror.database import SHADOW, SHADOW_ROW_GROUP_SIZE, MirrorDatabase

BILL = entity("Bill")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def bill(i: int, token: int = 0, **extra) -> dict:
    obj = {
        "Id": str(i),
        "SyncToken": str(token),
        "DocNumber": f"B-{i}",
        "TxnDate": "2026-11-01",
        "DueDate": "2026-12-01",
        "TotalAmt": 100.25 + i,
        "Balance": 100.25 + i,
        "VendorRef": {"value": "7", "name": "O'Brien Supplies"},
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "MetaData": {
            "CreateTime": "2026-11-01T09:00:00-08:00",
            "LastUpdatedTime": f"2026-11-0{1 + token}T09:00:00-08:00",
        },
    }
    obj.update(extra)
    return obj


def run(con, objects, deleted=False, trigger="manual"):
    log = change_log.ChangeLogAppender(con)
    ctx = ApplyContext("r1", trigger, None, "sync-1", NOW)
    return apply_staged(con, BILL, stage(objects, deleted=deleted), ctx, log)


@pytest.fixture
def con(tmp_path):
    db = MirrorDatabase(Home(tmp_path), "r1")
    with db.locked(), db.connect() as c:
        yield c


def test_create_update_unchanged_delete_are_classified_by_sync_token(con):
    r = run(con, [bill(1), bill(2)])
    assert (r.created, r.updated, r.unchanged) == (2, 0, 0)
    r = run(con, [bill(1), bill(2, token=1, Balance=0)])
    assert (r.created, r.updated, r.unchanged) == (0, 1, 1)
    r = run(con, [bill(2, token=0)])  # an older copy arriving late never regresses the mirror
    assert (r.updated, r.unchanged) == (0, 1)
    r = run(con, [{"Id": "1", "status": "Deleted", "MetaData": {"LastUpdatedTime": "2026-11-05T10:00:00-08:00"}}])
    assert r.deleted == 1
    rows = con.execute("SELECT id, sync_token, balance, is_deleted, deleted_at FROM bill ORDER BY id").fetchall()
    assert rows[0][0] == "1" and rows[0][3] is True
    assert rows[0][4] == datetime(2026, 11, 5, 18, 0, tzinfo=UTC)
    assert rows[1][:4] == ("2", "1", 0, False)
    ops = con.execute("SELECT op, entity_id, changed_fields FROM change_log ORDER BY change_id").fetchall()
    assert ops == [
        ("create", "1", None),
        ("create", "2", None),
        ("update", "2", ["Balance"]),
        ("delete", "1", None),
    ]


def test_replaying_the_same_batch_logs_nothing(con):
    batch = [bill(i) for i in range(1, 50)]
    run(con, batch)
    n = con.execute("SELECT count(*) FROM change_log").fetchone()[0]
    r = run(con, batch)
    assert r.changed == 0 and r.unchanged == 49
    assert con.execute("SELECT count(*) FROM change_log").fetchone()[0] == n


def test_typed_columns_come_from_raw_and_unknown_fields_survive(con):
    run(con, [bill(5, FutureField={"nested": [1, 2]}, TotalAmt="not-a-number")])
    row = con.execute(
        "SELECT due_date, vendor_id, vendor_name, total_amt, raw->>'$.FutureField.nested[1]' FROM bill"
    ).fetchone()
    assert str(row[0]) == "2026-12-01" and row[1] == "7" and row[2] == "O'Brien Supplies"
    assert row[3] is None  # an odd value becomes NULL in the typed column, never a failed sync
    assert row[4] == "2"


def test_change_log_chain_verifies_and_detects_tampering(con):
    run(con, [bill(i) for i in range(1, 6)])
    run(con, [bill(3, token=1, PrivateNote="edited")])
    ok = change_log.verify(con)
    assert ok.ok and ok.rows_checked == 6 and ok.head.change_id == 6
    # Roundtrip: what DuckDB returns hashes to exactly what was stored.
    stored = con.execute("SELECT after_json FROM change_log WHERE change_id = 6").fetchone()[0]
    assert json.loads(stored)["PrivateNote"] == "edited"
    con.execute('UPDATE change_log SET after_json = \'{"Id":"3"}\' WHERE change_id = 4')
    bad = change_log.verify(con)
    assert not bad.ok and bad.first_broken == 4 and "modified" in bad.reason
    # Incremental verification from an anchor catches a rewritten anchor too.
    assert change_log.verify(con, after=change_log.ChainHead(4, ok.head.row_hash)).first_broken == 4


def test_orphan_delete_is_kept_as_a_tombstone(con):
    r = run(con, [{"Id": "99", "MetaData": {"LastUpdatedTime": "2026-11-05T10:00:00Z"}}], deleted=True)
    assert r.deleted == 1
    assert con.execute("SELECT is_deleted FROM bill WHERE id = '99'").fetchone() == (True,)


def test_id_key_is_numeric_for_digit_ids_and_negative_hash_otherwise():
    assert id_key("145") == 145
    assert id_key("TAX") < 0 and id_key("TAX") == id_key("TAX") and id_key("NON") != id_key("TAX")


def test_object_without_id_rejects_the_whole_batch(con):
    from smartsync_pipeline.mirror.apply import InvalidObjectError

    with pytest.raises(InvalidObjectError):
        stage([bill(1), {"SyncToken": "0"}])
    assert con.execute("SELECT count(*) FROM bill").fetchone()[0] == 0


@pytest.fixture
def shadow_con(tmp_path):
    """A shadow's connection (its own DuckDB instance, like a backfill's): cursors share its database."""
    db = MirrorDatabase(Home(tmp_path), "r1")
    with db.locked(), db.shadow() as target, db.connect(target) as c:
        yield c


def created_rows_sql(entity_name: str, first: int, n: int) -> str:
    """What apply_staged hands the appender: change rows numbered by ``ord`` (here n creates)."""
    return f"""
        SELECT i - {first} + 1 AS ord, 'r1' AS realm_id, '{entity_name}' AS entity, CAST(i AS VARCHAR) AS entity_id,
            'create' AS op, NULL AS sync_token_before, '0' AS sync_token_after, NULL::VARCHAR[] AS changed_fields,
            NULL::JSON AS before_json, CAST(json_object('Id', i) AS VARCHAR) AS after_json,
            NULL::TIMESTAMPTZ AS qbo_last_updated, ?::TIMESTAMPTZ AS recorded_at, 'manual' AS trigger,
            NULL AS run_id, 'sync-1' AS sync_id
        FROM range({first}, {first + n}) t(i)"""


def test_appends_from_several_cursors_make_one_gap_free_chain(shadow_con):
    """Apply lanes append from their own cursors at once: ranges are chained in change-id order."""
    writer = change_log.ChangeLogAppender(shadow_con)
    errors: list[BaseException] = []

    def lane(entity_name: str) -> None:
        cur = shadow_con.cursor()
        cur.execute(f"USE {SHADOW}")  # a cursor starts in the instance's default database
        try:
            for part in range(5):
                cur.execute("BEGIN TRANSACTION")
                assert writer.append(created_rows_sql(entity_name, part * 40, 40), [NOW], 40, cur) == 40
                cur.execute("COMMIT")
        except BaseException as exc:  # reported below: an assert in a thread would pass silently
            errors.append(exc)
        finally:
            cur.close()

    threads = [threading.Thread(target=lane, args=(name,)) for name in ("Bill", "Invoice", "Vendor", "Item")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert change_log.verify(shadow_con).ok and writer.head.change_id == 4 * 5 * 40
    ids = [r[0] for r in shadow_con.execute("SELECT change_id FROM change_log ORDER BY change_id").fetchall()]
    assert ids == list(range(1, 801))
    for name in ("Bill", "Invoice", "Vendor", "Item"):  # each lane's rows stay in its own order
        logged = shadow_con.execute(
            "SELECT entity_id FROM change_log WHERE entity = ? ORDER BY change_id", [name]
        ).fetchall()
        assert [int(r[0]) for r in logged] == list(range(200))


def test_a_failed_append_releases_the_ones_waiting_for_their_turn(shadow_con):
    """A range taken and never chained must not leave later appenders waiting forever."""
    writer = change_log.ChangeLogAppender(shadow_con)
    hashing = writer._content_hashes
    first_reserved, give_up = threading.Event(), threading.Event()
    outcome: dict[str, BaseException | int] = {}

    def content_hashes(cur, n):
        if threading.current_thread().name == "early":
            first_reserved.set()
            give_up.wait(30)
            raise RuntimeError("hashing failed")
        return hashing(cur, n)

    writer._content_hashes = content_hashes

    def append(name: str, entity_name: str) -> None:
        cur = shadow_con.cursor()
        cur.execute(f"USE {SHADOW}")
        try:
            cur.execute("BEGIN TRANSACTION")
            outcome[name] = writer.append(created_rows_sql(entity_name, 0, 10), [NOW], 10, cur)
        except BaseException as exc:
            outcome[name] = exc
        finally:
            cur.execute("ROLLBACK")
            cur.close()

    early = threading.Thread(target=append, args=("early", "Bill"), name="early")
    early.start()
    assert first_reserved.wait(30)  # ids 1..10 are taken by "early"
    late = threading.Thread(target=append, args=("late", "Invoice"), name="late")
    late.start()
    give_up.set()
    early.join(30)
    late.join(30)
    assert not early.is_alive() and not late.is_alive()
    assert str(outcome["early"]) == "hashing failed"
    assert "an earlier part of the change log failed" in str(outcome["late"])


def test_appended_hashes_are_the_ones_verify_recomputes_in_duckdb(shadow_con):
    """Appends hash the canonical text in Python, verify in DuckDB: every kind of field (non-ASCII
    JSON, NULLs, lists, times) must give the same bytes to both."""
    writer = change_log.ChangeLogAppender(shadow_con)
    sql = """
        SELECT i AS ord, 'r1' AS realm_id, 'Customer' AS entity, CAST(i AS VARCHAR) AS entity_id,
            CASE WHEN i % 2 = 0 THEN 'update' ELSE 'create' END AS op,
            CASE WHEN i % 2 = 0 THEN '0' END AS sync_token_before, '1' AS sync_token_after,
            CASE WHEN i % 2 = 0 THEN ['DisplayName', 'Notes'] END AS changed_fields,
            CASE WHEN i % 2 = 0 THEN json_object('DisplayName', 'Café ' || i) END AS before_json,
            CAST(json_object('DisplayName', 'Crème brûlée ☕ ' || i, 'Notes', repeat('ü', i * 40)) AS VARCHAR)
                AS after_json,
            ?::TIMESTAMPTZ - INTERVAL (i) SECOND AS qbo_last_updated, ?::TIMESTAMPTZ AS recorded_at,
            'manual' AS trigger, CASE WHEN i % 3 = 0 THEN 'run-1' END AS run_id, 'sync-1' AS sync_id
        FROM range(1, 61) t(i)"""
    shadow_con.execute("BEGIN TRANSACTION")
    assert writer.append(sql, [NOW, NOW], 60, shadow_con) == 60
    shadow_con.execute("COMMIT")
    verified = change_log.verify(shadow_con)
    assert verified.ok and verified.rows_checked == 60, verified.reason


@pytest.mark.parametrize("announced", [9, 11])
def test_an_append_that_yields_other_than_the_rows_announced_logs_nothing(shadow_con, announced):
    """The id range is taken from the announced count before the rows are computed: a count that does
    not match them must fail the append, not leave a gap or an overlap in the chain."""
    writer = change_log.ChangeLogAppender(shadow_con)
    shadow_con.execute("BEGIN TRANSACTION")
    with pytest.raises(RuntimeError, match=f"yielded 10 rows where {announced} were announced"):
        writer.append(created_rows_sql("Bill", 0, 10), [NOW], announced, shadow_con)
    shadow_con.execute("ROLLBACK")
    assert shadow_con.execute("SELECT count(*) FROM change_log").fetchone()[0] == 0
    with pytest.raises(RuntimeError, match="an earlier part of the change log failed"):
        writer.append(created_rows_sql("Bill", 0, 10), [NOW], 10, shadow_con)


def test_a_shadow_is_checkpointed_by_duckdb_past_its_threshold_not_per_unit(shadow_con, tmp_path):
    """Checkpointing after every unit recompressed the change log's open row group each time."""
    assert shadow_con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0] == "64.0 MiB"
    shadow_con.execute("BEGIN TRANSACTION")
    run(shadow_con, [bill(i) for i in range(1, 200)])
    shadow_con.execute("COMMIT")
    wal = MirrorDatabase(Home(tmp_path), "r1").shadow_path.with_suffix(".duckdb.wal")
    assert wal.stat().st_size > 0  # a small unit stays in the WAL: no checkpoint for it


def test_a_shadow_appends_row_groups_a_backfill_unit_fills(shadow_con):
    """Full row groups go straight to the file during the unit, not through the WAL (database.py)."""
    shadow_con.execute("BEGIN TRANSACTION")
    run(shadow_con, [bill(i) for i in range(1, 20_001)])
    shadow_con.execute("COMMIT")
    shadow_con.execute("CHECKPOINT")
    groups = shadow_con.execute(
        "SELECT row_group_id, max(count) FROM pragma_storage_info('bill') WHERE column_name = 'id' GROUP BY ALL"
    ).fetchall()
    assert sorted(n for _, n in groups) == [20_000 - SHADOW_ROW_GROUP_SIZE, SHADOW_ROW_GROUP_SIZE]


def test_the_canonical_text_of_a_change_row_is_pinned() -> None:
    """Every chain already recorded was hashed over this exact text: a change to canonical_sql must
    keep it byte for byte (length-prefixed fields, '-' for NULL, UTC microsecond times)."""
    con = duckdb.connect()
    text = con.execute(
        f"""SELECT {change_log.canonical_sql()} FROM (SELECT 7 AS change_id, 'r1' AS realm_id, 'Bill' AS entity,
            '42' AS entity_id, 'update' AS op, '3' AS sync_token_before, '4' AS sync_token_after,
            ['Memo', 'TotalAmt'] AS changed_fields, '{{"Memo":"café"}}' AS before_json, NULL AS after_json,
            TIMESTAMPTZ '2026-01-02 03:04:05.5+00' AS qbo_last_updated,
            TIMESTAMPTZ '2026-01-02 04:04:05.000001+01' AS recorded_at, 'manual' AS trigger,
            NULL AS run_id, 's-1' AS sync_id)"""
    ).fetchone()[0]
    assert text == (
        '1:7|2:r1|4:Bill|2:42|6:update|1:3|1:4|19:["Memo","TotalAmt"]|16:{"Memo":"café"}|-|'
        "26:2026-01-02T03:04:05.500000|26:2026-01-02T03:04:05.000001|6:manual|-|3:s-1"
    )
