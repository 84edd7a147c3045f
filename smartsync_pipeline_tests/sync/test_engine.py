"""The sync engine against a real sandbox server: full, incremental, change log, fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

import duckdb
import pytest

from smartsync_pipeline.entities import ENTITIES, entity
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.smart.materialization import materialization_metadata
from smartsync_pipeline.sync.engine import SyncError
from smartsync_pipeline_tests.mirror_equality import mirror_differences


def changes_of(home, sync_id: str) -> list[tuple]:
    with SnapshotReader(home).cursor() as (cur, _):
        return cur.execute(
            "SELECT entity, entity_id, op, sync_token_after, changed_fields FROM change_log "
            "WHERE sync_id = ? ORDER BY change_id",
            [sync_id],
        ).fetchall()


def expected_ops(
    changes: list[dict], known_before: dict[str, set[str]]
) -> dict[tuple[str, str], tuple[str, str | None]]:
    """What one incremental sync must log for the simulator's changes: one row per object, the op
    collapsed from what existed before the window to what exists after it."""
    last: dict[tuple[str, str], dict] = {}
    for c in changes:
        last[(c["entity"], str(c["id"]))] = c
    out = {}
    for (ent, oid), c in last.items():
        existed = oid in known_before[ent]
        if c["op"] == "delete":
            out[(ent, oid)] = ("delete", None)
        else:
            out[(ent, oid)] = ("update" if existed else "create", str(c["sync_token"]))
    return out


def test_full_then_incremental_mirror_equals_sandbox_and_every_change_is_logged_once(connected_company):
    company = connected_company
    engine = company.engine()
    first = engine.sync()
    assert first.mode == "full"
    assert first.total("created") == sum(e.rows_active for e in first.entities.values()) > 500
    assert first.total("updated") == first.total("deleted") == 0
    assert mirror_differences(company) == {}

    known = {}
    with SnapshotReader(company.home).cursor() as (cur, _):
        for spec in ENTITIES:
            known[spec.name] = {
                r[0] for r in cur.execute(f"SELECT id FROM {spec.table} WHERE NOT is_deleted").fetchall()
            }

    changes = company.simulate(150, seed=3)
    kinds = {c["op"] for c in changes}
    assert {"create", "update", "delete"} <= kinds, kinds

    second = engine.sync()
    assert second.mode == "incremental"
    assert mirror_differences(company) == {}

    logged = changes_of(company.home, second.sync_id)
    expected = expected_ops(changes, known)
    got = {(e, i): (op, tok) for e, i, op, tok, _ in logged}
    assert len(logged) == len(got), "an object was logged twice in one sync"
    assert got == expected
    # Updates name the fields that changed, never the bookkeeping ones. (An update can change no
    # field at all: a vendor whose balance went up and back down still got a new SyncToken.)
    updates = [(e, i, fields) for e, i, op, _, fields in logged if op == "update"]
    assert all("SyncToken" not in f and "MetaData" not in f for _, _, f in updates)
    assert sum(1 for _, _, f in updates if f) >= len(updates) * 0.8, updates
    bill_fields = {f for e, _, fs in updates if e == "Bill" for f in fs}
    assert "Balance" in bill_fields, bill_fields
    assert second.change_id_first == first.change_id_last + 1
    assert second.change_id_last == second.change_id_first + len(logged) - 1

    # Replaying: nothing changed in QBO, so nothing is logged and no row is touched.
    third = engine.sync()
    assert third.changed == 0 and third.total("unchanged") >= 0
    assert changes_of(company.home, third.sync_id) == []
    with MirrorDatabase(company.home).inspect() as con:
        assert change_log.verify(con).ok


def test_replaying_the_same_cdc_window_changes_nothing(connected_company):
    company = connected_company
    engine = company.engine()
    engine.sync()
    company.simulate(40, seed=5)
    engine.sync()
    # Move every watermark back so the next CDC call re-reads the same window.
    with MirrorDatabase(company.home).locked(), MirrorDatabase(company.home).connect() as con:
        con.execute("UPDATE sync_state SET watermark = watermark - INTERVAL 2 HOUR")
    again = engine.sync()
    assert again.mode == "incremental"
    assert again.changed == 0 and again.total("unchanged") > 0


def test_tampered_change_log_row_is_detected_by_audit_verify(connected_company, tmp_path):
    company = connected_company
    company.engine().sync(entities=["Vendor", "Bill"])
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root)}
    cli = [sys.executable, "-m", "smartsync_pipeline.cli.main", "audit", "verify"]
    ok = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    db = MirrorDatabase(company.home)
    with db.locked():
        con = duckdb.connect(str(db.path))
        con.execute("UPDATE change_log SET op = 'update' WHERE change_id = 17")
        con.close()
    bad = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "change 17" in bad.stderr and "modified" in bad.stderr


def test_watermark_older_than_30_days_falls_back_to_full(connected_company):
    company = connected_company
    engine = company.engine()
    engine.sync(entities=["Bill", "Vendor"])
    company.sandbox.control("clock", {"advance_seconds": 31 * 86400})
    company.simulate(20, seed=9)
    report = engine.sync(entities=["Bill", "Vendor"])
    assert report.mode == "full"
    assert all("30" in e.fallback_reason for e in report.entities.values()), report.entities
    assert mirror_differences(company, ["Bill", "Vendor"]) == {}


def test_a_burst_over_the_cdc_cap_across_the_whole_books_is_narrowed_cheaply_and_logged_once(connected_company):
    """More than one CDC response's worth of changes, on every entity of the registry: the engine splits
    the entity list until each response fits (a few requests, not one per entity), lists the entities
    outside CDC, and the mirror ends equal to QBO with every object logged once."""
    company = connected_company
    engine = company.engine()
    engine.sync()
    known = _live_ids(company)
    cdc_before = company.sandbox.control("stats", method="GET")["requests"].get("cdc", 0)
    changes = company.simulate(2000, seed=11)
    assert {c["entity"] for c in changes} == {spec.name for spec in ENTITIES}  # activity on every entity
    assert {c["entity"] for c in changes if c["op"] == "delete" and not entity(c["entity"]).in_cdc}
    report = engine.sync()
    assert mirror_differences(company) == {}

    in_cdc = {(c["entity"], c["id"]) for c in changes if entity(c["entity"]).in_cdc}
    per_entity = defaultdict(int)
    for name, _ in in_cdc:
        per_entity[name] += 1
    requests = company.sandbox.control("stats", method="GET")["requests"]["cdc"] - cdc_before
    assert len(in_cdc) > 1000  # more changed objects than one CDC response holds
    responses_needed = -(-len(in_cdc) // 1000)
    # Halving the entity list: at most one split per full response and level (33 entities: 6 levels).
    assert responses_needed <= requests <= 1 + 2 * responses_needed * 6, requests
    if max(per_entity.values()) < 1000:  # no entity overflows on its own: nothing fell back to a full sync
        assert not [e for e in report.entities.values() if e.fallback_reason]
    assert {report.entities[s.name].mode for s in ENTITIES if not s.in_cdc} == {"listing"}

    logged = changes_of(company.home, report.sync_id)
    got = {(e, i): (op, tok) for e, i, op, tok, _ in logged}
    assert len(logged) == len(got), "an object was logged twice in one sync"
    # A listing cannot see an object born and deleted between two listings (QBO keeps no trace of it
    # outside CDC); every delete of an object the mirror held is a logged delete, whatever the strategy.
    expected = {
        key: op
        for key, op in expected_ops(changes, known).items()
        if entity(key[0]).in_cdc or op[0] != "delete" or key[1] in known[key[0]]
    }
    assert got == expected
    assert {e for (e, _), (op, _) in got.items() if op == "delete" and not entity(e).in_cdc}


def _live_ids(company) -> dict[str, set[str]]:
    with SnapshotReader(company.home).cursor() as (cur, _):
        return {
            spec.name: {r[0] for r in cur.execute(f"SELECT id FROM {spec.table} WHERE NOT is_deleted").fetchall()}
            for spec in ENTITIES
        }


def test_sync_rejects_bad_arguments_without_writing(connected_company):
    engine = connected_company.engine()
    with pytest.raises(SyncError, match="not connected"):
        engine.sync("999999")
    with pytest.raises(SyncError, match="unknown sync mode"):
        engine.sync(mode="sideways")
    with pytest.raises(Exception, match="unknown QBO entity"):
        engine.sync(entities=["Bil"])
    assert connected_company.home.realm_ids() == []  # no shard was created


def test_report_counts_match_the_mirror(connected_company):
    company = connected_company
    report = company.engine().sync(entities=["Bill"])
    bill = report.entities["Bill"]
    with SnapshotReader(company.home).cursor() as (cur, info):
        n = cur.execute("SELECT count(*) FROM bill WHERE NOT is_deleted").fetchall()[0][0]
        assert info.generation == report.snapshot_generation
    assert bill.rows_active == n == bill.created == bill.fetched
    assert report.api_calls >= 2
    meta = materialization_metadata(report, "Bill", "auto")
    assert meta["created"].value == n and meta["chain_head_hash"].value == report.chain_head_hash
    assert meta["apply_seconds"].value > 0
    assert entity("Bill").freshness.fail.total_seconds() > 0


def test_fields_the_registry_does_not_know_survive_in_the_raw_json(connected_company):
    company = connected_company
    engine = company.engine()
    engine.sync(entities=["Bill"])
    client = engine.client(company.realm_id)
    bill = client.query_all("Bill")[0]
    extra = {"FutureField": {"nested": [1, 2, 3]}, "CustomField": [{"DefinitionId": "1", "StringValue": "Apollo"}]}
    updated = client.update("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"], **extra}, sparse=True)
    assert updated["FutureField"] == extra["FutureField"]
    report = engine.sync(entities=["Bill"])
    assert report.entities["Bill"].updated == 1
    with SnapshotReader(company.home).cursor() as (cur, _):
        row = cur.execute(
            "SELECT raw->>'$.FutureField.nested[2]', raw->>'$.CustomField[0].StringValue', total_amt, vendor_id "
            "FROM bill WHERE id = ?",
            [bill["Id"]],
        ).fetchall()[0]
        fields = cur.execute(
            "SELECT changed_fields FROM change_log WHERE entity = 'Bill' AND entity_id = ? AND op = 'update'",
            [bill["Id"]],
        ).fetchall()[0][0]
    assert row[0] == "3" and row[1] == "Apollo"
    assert float(row[2]) == bill["TotalAmt"] and row[3] == bill["VendorRef"]["value"]
    assert set(fields) == {"CustomField", "FutureField"}


def test_line_views_add_up_to_every_transactions_total(connected_company):
    """The line tables reports group by: every mirrored transaction's lines (sub-total lines aside) add
    up to its total, journal entries balance, every posting line names an account."""
    from smartsync_pipeline.mirror.views import V4_LINE_TABLES

    company = connected_company
    company.engine().sync()
    company.simulate(120, seed=4)
    company.engine().sync()
    with SnapshotReader(company.home).cursor() as (cur, _):
        for table, txn_type in V4_LINE_TABLES:
            # Journal entries total their debits; payments may leave part of their total unapplied.
            amount = "CASE WHEN l.posting_type = 'Credit' THEN 0 ELSE l.amount END"
            differs = "t.total_amt < sum(l.amount)" if "payment" in table else f"t.total_amt <> sum({amount})"
            off = cur.execute(
                f"SELECT t.id, t.total_amt, sum(l.amount) FROM {table} t JOIN {table}_line l ON l.txn_id = t.id "
                f"WHERE NOT t.is_deleted AND l.detail_type IS DISTINCT FROM 'SubTotalLineDetail' "
                f"GROUP BY t.id, t.total_amt HAVING {differs}"
            ).fetchall()
            assert off == [], (txn_type, off[:3])
            count = cur.execute(f"SELECT count(DISTINCT txn_id) FROM {table}_line").fetchone()[0]
            assert count > 0, txn_type
        unbalanced = cur.execute(
            "SELECT txn_id FROM journal_entry_line GROUP BY txn_id "
            "HAVING sum(CASE posting_type WHEN 'Debit' THEN amount ELSE -amount END) <> 0"
        ).fetchall()
        assert unbalanced == []
        missing = cur.execute(
            "SELECT txn_type, count(*) FROM txn_line WHERE account_id IS NULL AND detail_type IN "
            "('AccountBasedExpenseLineDetail', 'ItemBasedExpenseLineDetail', 'SalesItemLineDetail', "
            "'JournalEntryLineDetail', 'DepositLineDetail') GROUP BY ALL"
        ).fetchall()
        assert missing == []
        lines = cur.execute("SELECT count(*), sum(amount) FROM txn_line").fetchone()
    # The analyst entry point defines the same line views over every company's snapshot.
    from smartsync_pipeline.mirror import analyst

    con = analyst.connect(company.home)
    try:
        assert con.execute("SELECT count(*), sum(amount) FROM txn_line").fetchone() == lines
    finally:
        con.close()


def test_entities_outside_cdc_are_listed_when_due_or_asked_and_a_sweep_stays_one_cdc_request(connected_company):
    from datetime import UTC, datetime, timedelta

    company = connected_company
    company.engine().sync()
    cdc = company.sandbox.control("stats", method="GET")["requests"].get("cdc", 0)
    sweep = company.engine().sync(trigger="schedule")
    assert company.sandbox.control("stats", method="GET")["requests"]["cdc"] == cdc + 1
    assert sweep.api_calls == 1  # nothing changed: one CDC request for the 27 CDC entities, nothing else
    assert {sweep.entities[s.name].mode for s in ENTITIES if not s.in_cdc} == {"not_due"}
    asked = company.engine().sync(entities=["TaxCode", "Bill"], trigger="manual")
    assert asked.entities["TaxCode"].mode == "listing" and asked.entities["Bill"].mode == "incremental"
    # TimeActivity's warn window (15 min) has passed, TaxCode's (12 h) has not.
    later = company.engine(clock=lambda: datetime.now(UTC) + timedelta(minutes=20)).sync(trigger="schedule")
    assert later.entities["TimeActivity"].mode == "listing"
    assert later.entities["TaxCode"].mode == "not_due"
    assert mirror_differences(company) == {}
