"""Opening an older mirror upgrades it in place and never drops data; each migration creates what its
own version shipped, and whatever a migration writes reaches readers at the next publication."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import schema, views
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.migrations import MIGRATIONS

REALM = "r1"


def _mirror_path(home: Home):
    return home.realm(REALM).ensure().mirror_path


def _old_mirror(home: Home, version: int) -> duckdb.DuckDBPyConnection:
    """A mirror as an older smartsync left it: migrations 1..version, nothing newer."""
    con = duckdb.connect(str(_mirror_path(home)))
    con.execute(schema.SCHEMA_VERSION_DDL)
    for number in range(1, version + 1):
        MIGRATIONS[number][1](con)
        con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)", [number, MIGRATIONS[number][0]])
    return con


def test_a_version_1_mirror_missing_a_newer_column_is_upgraded_without_losing_rows(tmp_path):
    home = Home(tmp_path).ensure()
    # Schema version 1 (no analyst views), and a bill table written before the registry gained its
    # `private_note` column.
    con = _old_mirror(home, 1)
    con.execute("ALTER TABLE bill DROP COLUMN private_note")
    con.execute(
        "INSERT INTO bill (realm_id, id, id_key, sync_token, balance, raw, synced_at) "
        'VALUES (\'r1\', \'7\', 7, \'3\', 12.50, \'{"Id":"7","PrivateNote":"keep me","Balance":12.5}\', now())'
    )
    con.close()

    db = MirrorDatabase(home, REALM)
    with db.locked(), db.connect() as con:
        assert schema.current_version(con) == schema.SCHEMA_VERSION
        row = con.execute("SELECT id, sync_token, balance, private_note FROM bill").fetchall()
        assert row == [("7", "3", 12.50, "keep me")]  # the new column is filled from the raw JSON
        found = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        assert {"bills_due", "ap_aging", "ar_aging", "cash_position"} <= found
        versions = [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
        assert versions == list(range(1, schema.SCHEMA_VERSION + 1))
        assert schema.data_version(con) == 1  # what the migration wrote is a new data version
    # Opening again changes nothing.
    with db.locked(), db.connect() as con:
        assert schema.migrate(con) == []
        assert schema.data_version(con) == 1


def test_a_mirror_from_a_newer_smartsync_is_refused(tmp_path):
    home = Home(tmp_path).ensure()
    con = duckdb.connect(str(_mirror_path(home)))
    con.execute(schema.SCHEMA_VERSION_DDL)
    con.execute("INSERT INTO schema_version (version, description) VALUES (99, 'future')")
    con.close()
    db = MirrorDatabase(home, REALM)
    with pytest.raises(RuntimeError, match="newer"), db.locked(), db.connect():
        pass


def test_each_migration_creates_the_views_of_its_own_version_not_todays(tmp_path, monkeypatch):
    """Today's view definitions may reference what only a later migration creates: migrating an old
    mirror must pass through the views each version shipped, not today's."""
    future = {
        name: f"CREATE OR REPLACE VIEW {name} AS SELECT column_added_by_a_future_migration FROM bill"
        for name in views.ANALYST_VIEWS
    }
    monkeypatch.setattr(views, "ANALYST_VIEWS", future)
    monkeypatch.setattr(schema, "ANALYST_VIEWS", future, raising=False)
    home = Home(tmp_path).ensure()
    _old_mirror(home, 1).close()
    db = MirrorDatabase(home, REALM)
    with db.locked(), db.connect() as con:
        sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'bills_due'").fetchall()[0][0]
        assert "column_added_by_a_future_migration" not in sql
        assert "days_until_due" in sql  # version 2's definition


def test_the_current_views_are_the_newest_view_migration():
    """A view changed without a migration would reach only new mirrors: the current views must be
    exactly the newest frozen version's."""
    assert views.ANALYST_VIEWS is views.V2_VIEWS
    assert views.LINE_VIEWS is views.V4_LINE_VIEWS


# The text each view migration shipped (sha256 over the sorted name/SQL pairs).
SHIPPED_VIEWS = {
    "V2_VIEWS": "ca6a0a9c814c5c931bd34df06d39ad6cea09c20767d5c5cfbc86de5e45ff9569",
    "V4_LINE_VIEWS": "cda6cb5c43d40fc8d03e3020be833bdcce4979b44c9fdfe469b93ffe0996b3b1",
}


@pytest.mark.parametrize("name", sorted(SHIPPED_VIEWS))
def test_a_shipped_view_version_never_changes(name: str):
    """Frozen versions are built by helpers (``_v4_line_view``, ``_first``, the detail list, ...): an edit
    there would silently give new mirrors other views than the old ones under the same schema version.
    Change views with a new V<n> dict and migration instead."""
    text = "\n".join(f"{k}\n{v}" for k, v in sorted(getattr(views, name).items()))
    assert hashlib.sha256(text.encode()).hexdigest() == SHIPPED_VIEWS[name], (
        f"{name} differs from what its migration shipped: add a new version and migration instead"
    )


def test_a_version_3_mirror_from_before_the_whole_books_gains_line_views_and_the_new_tables(tmp_path):
    """Migration 4 on a mirror written when only ten entities existed: the new entities' tables appear
    (empty until the next sync) and the line views read the lines already mirrored."""
    from smartsync_pipeline.entities import ENTITIES

    home = Home(tmp_path).ensure()
    con = _old_mirror(home, 3)
    base = {"account", "vendor", "customer", "item", "term", "bill", "bill_payment", "invoice", "payment", "purchase"}
    for spec in ENTITIES:
        if spec.table not in base:
            con.execute(f"DROP TABLE {spec.table}")
    bill = (
        '{"Id":"7","TxnDate":"2026-11-01","TotalAmt":30,"DepartmentRef":{"value":"2"},"Line":['
        '{"Id":"1","Amount":10,"DetailType":"AccountBasedExpenseLineDetail",'
        '"AccountBasedExpenseLineDetail":{"AccountRef":{"value":"41"},"ClassRef":{"value":"3"}}},'
        '{"Id":"2","Amount":20,"DetailType":"ItemBasedExpenseLineDetail",'
        '"ItemBasedExpenseLineDetail":{"ItemRef":{"value":"5"}}}]}'
    )
    con.execute(
        "INSERT INTO bill (realm_id, id, id_key, sync_token, txn_date, raw, synced_at) "
        "VALUES ('r1', '7', 7, '0', DATE '2026-11-01', ?, now())",
        [bill],
    )
    con.execute(
        "INSERT INTO item (realm_id, id, id_key, sync_token, expense_account_id, raw, synced_at) "
        "VALUES ('r1', '5', 5, '0', '33', '{\"Id\":\"5\"}', now())"
    )
    con.close()

    db = MirrorDatabase(home, REALM)
    with db.locked(), db.connect() as con:
        assert schema.current_version(con) == 4
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert {spec.table for spec in ENTITIES} <= tables
        assert con.execute("SELECT count(*) FROM journal_entry").fetchone() == (0,)
        lines = con.execute(
            "SELECT line_num, amount, account_id, item_id, class_id, department_id FROM bill_line ORDER BY line_num"
        ).fetchall()
        assert [(n, float(a), acc, item, cls, dept) for n, a, acc, item, cls, dept in lines] == [
            (1, 10.0, "41", None, "3", "2"),
            (2, 20.0, "33", "5", None, "2"),  # an item line posts to the item's expense account
        ]
        assert con.execute("SELECT count(*), sum(amount) FROM txn_line").fetchone() == (2, 30)


def test_a_new_mirror_stores_its_json_documents_zstd_compressed(connected_company) -> None:
    """The JSON columns (each object's raw, the change log's before/after) are declared zstd: a backfill
    checkpoints ~40 % faster and the file is less than half the size (ARCHITECTURE.md, "Backfill")."""
    from smartsync_pipeline.mirror.database import MirrorDatabase

    connected_company.engine().sync()
    with MirrorDatabase(connected_company.home, connected_company.realm_id).inspect() as con:
        rows = con.execute(
            "SELECT DISTINCT column_name, compression FROM pragma_storage_info('change_log') "
            "WHERE column_name IN ('after_json', 'before_json') AND segment_type <> 'VALIDITY' "
            "UNION ALL SELECT DISTINCT column_name, compression FROM pragma_storage_info('invoice') "
            "WHERE column_name = 'raw' AND segment_type <> 'VALIDITY'"
        ).fetchall()
    compressions = {}
    for column, compression in rows:
        compressions.setdefault(column, set()).add(compression)
    assert compressions.get("raw") == {"ZSTD"}, compressions
    assert compressions.get("after_json") == {"ZSTD"}, compressions
