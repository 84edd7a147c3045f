"""The writer skips the migration of a mirror it left migrated itself, and only that one: a file
another process wrote since is migrated again before anything is written to it."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

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


def test_sync_state_another_process_wrote_is_read_again_not_taken_from_this_process_memory(connected_company):
    """The engine reuses the sync state it committed itself while the mirror file is exactly as it
    left it (headers, WAL, inode, size, mtime). Another process moving the watermarks back must be
    seen: the next CDC call re-reads that window (finds the same versions again: 'unchanged')."""
    company = connected_company
    engine = company.engine()
    engine.sync()
    company.simulate(40, seed=5)
    before = engine.sync()
    db = MirrorDatabase(company.home)
    with db.locked():
        update = "UPDATE sync_state SET watermark = watermark - INTERVAL 2 HOUR"
        code = f"import duckdb; c = duckdb.connect({str(db.path)!r}); c.execute({update!r}); c.close()"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    again = engine.sync()
    assert again.mode == "incremental"
    for name, entity_report in again.entities.items():
        moved_back = before.entities[name].watermark_after - timedelta(hours=2)
        assert entity_report.watermark_before == moved_back, name
    assert again.changed == 0 and again.total("unchanged") > 0
