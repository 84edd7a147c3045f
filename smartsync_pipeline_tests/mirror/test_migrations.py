"""Opening an older mirror upgrades it in place and never drops data."""

from __future__ import annotations

import duckdb

from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import schema
from smartsync_pipeline.mirror.database import MirrorDatabase


def test_a_version_1_mirror_missing_a_newer_column_is_upgraded_without_losing_rows(tmp_path):
    home = Home(tmp_path).ensure()
    # A mirror as an older smartsync left it: schema version 1 (no analyst views), and a bill table
    # written before the registry gained its `private_note` column.
    con = duckdb.connect(str(home.mirror_path))
    con.execute(schema.SCHEMA_VERSION_DDL)
    schema.MIGRATIONS[1][1](con)
    con.execute("INSERT INTO schema_version (version, description) VALUES (1, 'entity tables')")
    con.execute("ALTER TABLE bill DROP COLUMN private_note")
    con.execute(
        "INSERT INTO bill (realm_id, id, id_key, sync_token, balance, raw, synced_at) "
        'VALUES (\'r1\', \'7\', 7, \'3\', 12.50, \'{"Id":"7","PrivateNote":"keep me","Balance":12.5}\', now())'
    )
    con.close()

    db = MirrorDatabase(home)
    with db.locked(), db.connect() as con:
        assert schema.current_version(con) == schema.SCHEMA_VERSION
        row = con.execute("SELECT id, sync_token, balance, private_note FROM bill").fetchall()
        assert row == [("7", "3", 12.50, "keep me")]  # the new column is filled from the raw JSON
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        assert {"bills_due", "ap_aging", "ar_aging", "cash_position"} <= views
        versions = [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
        assert versions == list(range(1, schema.SCHEMA_VERSION + 1))
    # Opening again changes nothing.
    with db.locked(), db.connect() as con:
        assert schema.migrate(con) == []


def test_a_mirror_from_a_newer_smartsync_is_refused(tmp_path):
    home = Home(tmp_path).ensure()
    con = duckdb.connect(str(home.mirror_path))
    con.execute(schema.SCHEMA_VERSION_DDL)
    con.execute("INSERT INTO schema_version (version, description) VALUES (99, 'future')")
    con.close()
    db = MirrorDatabase(home)
    try:
        with db.locked(), db.connect():
            raise AssertionError("a newer schema must be refused")
    except RuntimeError as exc:
        assert "newer" in str(exc)
