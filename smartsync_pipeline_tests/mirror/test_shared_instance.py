"""The writer skips the migration of a mirror it left migrated itself, and only that one: a file
another process wrote since is migrated again before anything is written to it."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from smartsync_pipeline.mirror.database import MirrorDatabase


def columns(path, table: str) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            r[0]
            for r in con.execute(f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{table}'").fetchall()
        }
    finally:
        con.close()


def test_a_mirror_another_process_changed_is_migrated_again(connected_company):
    company = connected_company
    engine = company.engine()
    engine.sync()
    db = MirrorDatabase(company.home)
    assert "doc_number" in columns(db.path, "bill")
    # Another process (an older smartsync, a restored copy) leaves the file without a registry column.
    with db.locked():
        drop = "ALTER TABLE bill DROP COLUMN doc_number"
        code = f"import duckdb; c = duckdb.connect({str(db.path)!r}); c.execute({drop!r}); c.close()"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert "doc_number" not in columns(db.path, "bill")
    company.simulate(10, seed=3)
    report = engine.sync()
    assert report.mode == "incremental"
    assert "doc_number" in columns(db.path, "bill")  # migrated before the write, filled from the raw JSON
    con = duckdb.connect(str(db.path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM bill WHERE doc_number IS NOT NULL").fetchall()[0][0] > 0
    finally:
        con.close()
