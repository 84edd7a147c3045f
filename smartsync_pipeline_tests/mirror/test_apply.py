"""The set-based apply: classification by SyncToken, tombstones, change-log rows and the hash chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from smartsync_pipeline.entities import entity
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.apply import ApplyContext, apply_staged, id_key, stage
from smartsync_pipeline.mirror.database import MirrorDatabase

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
