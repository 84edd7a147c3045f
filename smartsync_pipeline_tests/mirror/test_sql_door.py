"""``seal`` on the per-company analyst entry point itself (``analyst.connect``): an in-memory session
that ATTACHes every company's published snapshot READ_ONLY, then seals, here with two companies whose
mirrors and snapshots are written by the real write path. DuckDB keeps the attached files on its
allow-list when external access is switched off, so without the local file system off a ``DETACH``
followed by ``ATTACH … (READ_WRITE)`` of the same file wrote into a snapshot (checked against DuckDB
2.0.1)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import analyst
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.schema import record_data_version
from smartsync_pipeline.mirror.snapshots import SnapshotStore, content_key, mirror_tables, read_state_rows
from smartsync_pipeline.mirror.sql_door import SqlRefused, explain_refusal

COMPANIES = (("r1", 3), ("r2", 200_000))


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """Two companies, each with bills in its own mirror, published as its own snapshot."""
    home = Home(tmp_path / "home")
    for realm, rows in COMPANIES:
        db = MirrorDatabase(home, realm)
        with db.locked():
            with db.connect() as con:
                con.execute("BEGIN TRANSACTION")
                con.execute(
                    "INSERT INTO bill (realm_id, id, id_key, balance, synced_at) "
                    "SELECT ?, range::VARCHAR, range, range * 2, now() FROM range(?)",
                    [realm, rows],
                )
                record_data_version(con, "other")
                con.execute("COMMIT")
                state, key, tables = read_state_rows(con), content_key(con), mirror_tables(con)
            SnapshotStore(home, realm).publish(db.path, state, content_key=key, tables=tables)
    (home.root / "secret.key").write_text("not-for-analysts\n")
    return home


def _paths(home: Home) -> dict[str, str]:
    r1, r2 = home.realm("r1"), home.realm("r2")
    return {
        "r1": str(r1.current_link),
        "r1_file": str(r1.current_link.resolve()),
        "r2": str(r2.current_link),
        "mirror": str(r1.mirror_path),
        "dir": str(home.root),
    }


ATTACKS = [
    "DETACH \"realm_r1\"; ATTACH '{r1}' AS r1 (READ_WRITE); INSERT INTO r1.bill (realm_id, id, id_key, synced_at) "
    "VALUES ('r1', 'x', 9, now())",
    "DETACH \"realm_r1\"; ATTACH '{r1_file}' AS r1 (READ_WRITE)",
    "DETACH \"realm_r2\"; ATTACH '{r2}' AS r2",
    "ATTACH '{r1}' AS again (READ_WRITE)",
    "ATTACH '{mirror}' AS m (READ_ONLY)",
    "INSERT INTO \"realm_r1\".bill (realm_id, id, id_key, synced_at) VALUES ('r1', 'x', 9, now())",
    "COPY (SELECT 1 AS a) TO '{r1_file}' (FORMAT csv)",
    "CREATE TABLE stolen AS SELECT * FROM \"realm_r2\".bill; COPY stolen TO '{dir}/stolen.csv'",
    "SELECT * FROM read_text('{dir}/secret.key')",
    "SET enable_external_access = true",
    "SET disabled_filesystems = ''",
    "SET lock_configuration = false",
    "LOAD httpfs",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_sealed_entry_point_refuses(home: Home, attack: str) -> None:
    before = _digests(home.root)
    con = analyst.connect(home)
    assert analyst.attached_realms(con) == ["r1", "r2"]
    sql = attack.format(**_paths(home))
    with pytest.raises(duckdb.Error) as caught:
        for statement in sql.split(";"):
            con.execute(statement)
    con.close()
    assert isinstance(explain_refusal(caught.value), SqlRefused), caught.value
    assert _digests(home.root) == before


def test_sealed_entry_point_still_reads_every_company(home: Home) -> None:
    con = analyst.connect(home)
    counts = con.sql("SELECT realm_id, count(*), sum(balance) FROM bill GROUP BY realm_id ORDER BY realm_id")
    assert counts.fetchall() == [(realm, rows, 2 * sum(range(rows))) for realm, rows in COMPANIES]
    # An analyst's own scratch tables in memory are fine: they can go nowhere.
    con.execute("CREATE TABLE scratch AS SELECT * FROM bill WHERE realm_id = 'r1'")
    assert con.sql("SELECT count(*) FROM scratch").fetchall() == [(3,)]
    con.close()


def test_ordinary_sql_errors_are_not_called_refusals(home: Home) -> None:
    con = analyst.connect(home)
    with pytest.raises(duckdb.Error) as caught:
        con.execute("SELEKT 1")
    assert explain_refusal(caught.value) is None
