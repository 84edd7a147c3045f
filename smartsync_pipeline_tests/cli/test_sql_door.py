"""``smartsync sql`` is a door into the snapshots, not into the machine: a table of attacks, each one
refused in one line with every file under SMARTSYNC_HOME (and the targets outside it) unchanged.

Before the seal (issue 15, finding 1) ATTACH of the mirror read-write, COPY over a token file and
read_text of secret.key all worked through this command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.reliability.home_snapshot import home_snapshot, snapshot_changes

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Door:
    company: ConnectedCompany
    outside: Path  # a folder outside the home that attacks try to write into

    @property
    def home(self) -> Path:
        return self.company.home.root

    def fill(self, text: str) -> str:
        realm = self.company.realm_id
        return (
            text.replace("{home}", str(self.home))
            .replace("{tokens}", str(self.home / "companies" / f"{realm}.tokens.json"))
            .replace("{outside}", str(self.outside))
        )


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    sandbox = SandboxProcess.start(scale="small", seed=41)
    try:
        company = ConnectedCompany(tmp_path_factory.mktemp("sql_door_home"), sandbox)
        company.engine().sync()
        yield Door(company, tmp_path_factory.mktemp("sql_door_outside"))
    finally:
        sandbox.stop()


# (id, the SQL: one statement, or several lines fed on stdin). Every one must be refused.
ATTACKS: list[tuple[str, str]] = [
    ("attach the mirror read-write", "ATTACH '{home}/mirror.duckdb' AS m (READ_WRITE)"),
    ("attach the mirror read-only", "ATTACH '{home}/mirror.duckdb' AS m (READ_ONLY)"),
    ("attach a new database file", "ATTACH '{outside}/new.duckdb' AS n"),
    ("copy over a token file", "COPY (SELECT 'x' AS a) TO '{tokens}' (FORMAT csv)"),
    ("copy over the mirror", "COPY (SELECT 1 AS a) TO '{home}/mirror.duckdb' (FORMAT csv)"),
    ("copy a table out", "COPY bill TO '{outside}/bills.csv'"),
    ("read_text of secret.key", "SELECT * FROM read_text('{home}/secret.key')"),
    ("read_text of /etc/passwd", "SELECT * FROM read_text('/etc/passwd')"),
    ("read_csv of a token file", "SELECT * FROM read_csv('{tokens}')"),
    ("read_blob of the mirror", "SELECT * FROM read_blob('{home}/mirror.duckdb')"),
    ("glob the home", "SELECT * FROM glob('{home}/**')"),
    ("a file as a table", "SELECT * FROM '{home}/companies/*.json'"),
    ("install an extension", "INSTALL httpfs"),
    ("load an extension", "LOAD httpfs"),
    ("read over http", "SELECT * FROM read_text('https://example.com/')"),
    ("switch external access back on", "SET enable_external_access = true"),
    ("unlock the configuration", "SET lock_configuration = false"),
    ("reset the lock", "RESET lock_configuration"),
    ("re-enable the file system", "SET disabled_filesystems = ''"),
    ("allow a path", "SET allowed_paths = ['{home}/secret.key']"),
    ("pragma that writes a file", "PRAGMA enable_profiling = 'json'"),
    ("profile into a file", "SET profiling_output = '{outside}/profile.json'"),
    ("a persistent secret", "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')"),
    ("write to a table", "DELETE FROM bill"),
    ("create a table", "CREATE TABLE stolen AS SELECT * FROM bill"),
    ("temp table, then export", "CREATE TEMP TABLE t AS SELECT * FROM bill\nCOPY t TO '{outside}/t.csv'"),
    ("temp table, then export the database", "CREATE TEMP TABLE t AS SELECT 1 AS a\nEXPORT DATABASE '{outside}/exp'"),
    ("switch to memory, detach, re-attach", "ATTACH ':memory:' AS scratch\nUSE scratch\nDETACH analyst"),
]


def _invoke(door: Door, sql: str, *options: str) -> tuple[int, str]:
    env = {"SMARTSYNC_HOME": str(door.home), "DAGSTER_HOME": None, "SMARTSYNC_DEBUG": None}
    text = door.fill(sql)
    if "\n" in text:
        result = CliRunner(env=env).invoke(cli, ["sql", *options], input=text + "\n")
    else:
        result = CliRunner(env=env).invoke(cli, ["sql", *options, text])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


@pytest.mark.parametrize(("name", "sql"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_refused_and_nothing_changes(door: Door, name: str, sql: str) -> None:
    before = home_snapshot(door.home)
    outside_before = sorted(p.name for p in door.outside.iterdir())
    secret = (door.home / "secret.key").read_text().strip()
    code, output = _invoke(door, sql)
    assert code != 0, f"{name}: accepted\n{output}"
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, output
    assert secret not in output and "root:x:0:0" not in output
    assert snapshot_changes(before, home_snapshot(door.home)) == [], f"{name} changed SMARTSYNC_HOME"
    assert sorted(p.name for p in door.outside.iterdir()) == outside_before, f"{name} wrote outside"


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 'x' AS a) TO '{tokens}' (FORMAT csv)",
        "SELECT * FROM read_text('{home}/secret.key')",
        "SET enable_external_access = true",
        "ATTACH '{home}/mirror.duckdb' AS m (READ_WRITE)",
    ],
)
def test_refusal_names_the_seal(door: Door, sql: str) -> None:
    code, output = _invoke(door, sql)
    assert code == 1
    assert "Error: refused: the SQL door is read-only" in output, output


def test_reads_still_work(door: Door) -> None:
    code, output = _invoke(door, "SELECT count(*) AS n FROM bill WHERE NOT is_deleted", "--csv")
    assert code == 0, output
    n = int(output.strip().splitlines()[-1])
    assert n == len(door.company.sandbox_objects("Bill")["active"])


def test_real_process_refuses_copy_over_token_file(door: Door) -> None:
    tokens = Path(door.fill("{tokens}"))
    before = tokens.read_bytes()
    env = {**os.environ, "SMARTSYNC_HOME": str(door.home)}
    env.pop("SMARTSYNC_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "sql", door.fill(ATTACKS[3][1])],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("Error: refused:") and done.stderr.count("\n") == 1, done.stderr
    assert tokens.read_bytes() == before
