"""``seal`` on the shape the per-company analyst entry point uses: an in-memory session that ATTACHes
every company's snapshot READ_ONLY, then seals. DuckDB keeps the attached files on its allow-list
when external access is switched off, so without the local file system off a ``DETACH`` followed by
``ATTACH … (READ_WRITE)`` of the same file wrote into a snapshot (checked against DuckDB 2.0.1)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from smartsync_pipeline.mirror.sql_door import SqlRefused, explain_refusal, seal


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def companies(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for realm, rows in (("r1", 3), ("r2", 200_000)):
        path = tmp_path / f"{realm}.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute(f"CREATE TABLE bill AS SELECT range AS id, range * 2 AS amount FROM range({rows})")
        files[realm] = path
    (tmp_path / "secret.key").write_text("not-for-analysts\n")
    return files


def _entry(companies: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    for realm, path in companies.items():
        con.execute(f"ATTACH '{path}' AS {realm} (READ_ONLY)")
    return seal(con)


ATTACKS = [
    "DETACH r1; ATTACH '{r1}' AS r1 (READ_WRITE); INSERT INTO r1.bill VALUES (9, 9)",
    "DETACH r2; ATTACH '{r2}' AS r2",
    "ATTACH '{r1}' AS again (READ_WRITE)",
    "INSERT INTO r1.bill VALUES (9, 9)",
    "COPY (SELECT 1 AS a) TO '{r1}' (FORMAT csv)",
    "CREATE TABLE stolen AS SELECT * FROM r2.bill; COPY stolen TO '{dir}/stolen.csv'",
    "SELECT * FROM read_text('{dir}/secret.key')",
    "SET enable_external_access = true",
    "SET disabled_filesystems = ''",
    "SET lock_configuration = false",
    "LOAD httpfs",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_sealed_entry_point_refuses(companies: dict[str, Path], attack: str) -> None:
    folder = companies["r1"].parent
    before = {p.name: _digest(p) for p in folder.iterdir()}
    con = _entry(companies)
    sql = attack.format(dir=folder, **{k: str(v) for k, v in companies.items()})
    with pytest.raises(duckdb.Error) as caught:
        for statement in sql.split(";"):
            con.execute(statement)
    con.close()
    assert isinstance(explain_refusal(caught.value), SqlRefused), caught.value
    assert {p.name: _digest(p) for p in folder.iterdir()} == before


def test_sealed_entry_point_still_reads_every_company(companies: dict[str, Path]) -> None:
    con = _entry(companies)
    assert con.sql("SELECT count(*) FROM r1.bill").fetchall() == [(3,)]
    assert con.sql("SELECT count(*), sum(amount) FROM r2.bill").fetchall() == [(200_000, 2 * sum(range(200_000)))]
    # An analyst's own scratch tables in memory are fine: they can go nowhere.
    con.execute("CREATE TABLE scratch AS SELECT * FROM r1.bill")
    assert con.sql("SELECT count(*) FROM scratch").fetchall() == [(3,)]
    con.close()


def test_ordinary_sql_errors_are_not_called_refusals(companies: dict[str, Path]) -> None:
    con = _entry(companies)
    with pytest.raises(duckdb.Error) as caught:
        con.execute("SELEKT 1")
    assert explain_refusal(caught.value) is None
