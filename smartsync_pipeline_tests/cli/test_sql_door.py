"""``smartsync sql`` is a door into the snapshots, not into the machine: a table of attacks, each one
refused in one line with every file under SMARTSYNC_HOME (and the targets outside it) unchanged. The
door is the per-company analyst entry point (every company's snapshot attached, then sealed), here
with two companies.

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
    company: ConnectedCompany  # the first of two companies in the home
    other: ConnectedCompany
    outside: Path  # a folder outside the home that attacks try to write into

    @property
    def home(self) -> Path:
        return self.company.home.root

    def fill(self, text: str) -> str:
        realm, other = self.company.realm_id, self.other.realm_id
        shard = self.company.home.realm(realm)
        return (
            text.replace("{mirror}", str(shard.mirror_path))
            .replace("{snapshot}", str(shard.current_link))
            .replace("{snapshot_file}", str(shard.current_link.resolve()))
            .replace("{realm}", realm)
            .replace("{other}", other)
            .replace("{other_mirror}", str(self.company.home.realm(other).mirror_path))
            .replace("{home}", str(self.home))
            .replace("{tokens}", str(self.home / "companies" / f"{realm}.tokens.json"))
            .replace("{outside}", str(self.outside))
        )


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    sandbox = SandboxProcess.start(scale="small", seed=41, realms=2)
    try:
        home = tmp_path_factory.mktemp("sql_door_home")
        companies = [ConnectedCompany(home, sandbox, i) for i in range(2)]
        for company in companies:
            company.engine().sync(company.realm_id)
        yield Door(companies[0], companies[1], tmp_path_factory.mktemp("sql_door_outside"))
    finally:
        sandbox.stop()


# (id, the SQL: one statement, or several lines fed on stdin). Every one must be refused.
ATTACKS: list[tuple[str, str]] = [
    ("attach the mirror read-write", "ATTACH '{mirror}' AS m (READ_WRITE)"),
    ("attach the mirror read-only", "ATTACH '{mirror}' AS m (READ_ONLY)"),
    ("attach another company's mirror", "ATTACH '{other_mirror}' AS m"),
    ("re-attach an attached snapshot read-write", "DETACH \"realm_{realm}\"\nATTACH '{snapshot}' AS x (READ_WRITE)"),
    ("re-attach the snapshot file itself", "DETACH \"realm_{realm}\"\nATTACH '{snapshot_file}' AS x (READ_WRITE)"),
    ("attach a snapshot a second time", "ATTACH '{snapshot}' AS again (READ_WRITE)"),
    ("write into an attached snapshot", "INSERT INTO \"realm_{realm}\".term (realm_id, id) VALUES ('x', 'x')"),
    ("copy over an attached snapshot", "COPY (SELECT 1 AS a) TO '{snapshot_file}' (FORMAT csv)"),
    ("attach a new database file", "ATTACH '{outside}/new.duckdb' AS n"),
    ("copy over a token file", "COPY (SELECT 'x' AS a) TO '{tokens}' (FORMAT csv)"),
    ("copy over the mirror", "COPY (SELECT 1 AS a) TO '{mirror}' (FORMAT csv)"),
    ("copy a table out", "COPY bill TO '{outside}/bills.csv'"),
    ("read_text of secret.key", "SELECT * FROM read_text('{home}/secret.key')"),
    ("read_text of /etc/passwd", "SELECT * FROM read_text('/etc/passwd')"),
    ("read_csv of a token file", "SELECT * FROM read_csv('{tokens}')"),
    ("read_blob of the mirror", "SELECT * FROM read_blob('{mirror}')"),
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
    ("temp table, then export", "CREATE TEMP TABLE t AS SELECT * FROM bill\nCOPY t TO '{outside}/t.csv'"),
    ("temp table, then export the database", "CREATE TEMP TABLE t AS SELECT 1 AS a\nEXPORT DATABASE '{outside}/exp'"),
    (
        "switch to memory, detach, re-attach",
        "ATTACH ':memory:' AS scratch\nUSE scratch\nDETACH \"realm_{realm}\"\nATTACH '{snapshot}' AS y (READ_WRITE)",
    ),
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
        "ATTACH '{mirror}' AS m (READ_WRITE)",
    ],
)
def test_refusal_names_the_seal(door: Door, sql: str) -> None:
    code, output = _invoke(door, sql)
    assert code == 1
    assert "Error: refused: the SQL door is read-only" in output, output


def test_reads_still_work_across_both_companies(door: Door) -> None:
    sql = "SELECT realm_id, count(*) AS n FROM bill WHERE NOT is_deleted GROUP BY realm_id ORDER BY realm_id"
    code, output = _invoke(door, sql, "--csv")
    assert code == 0, output
    counts = dict(line.split(",") for line in output.strip().splitlines()[1:])
    assert counts == {co.realm_id: str(len(co.sandbox_objects("Bill")["active"])) for co in (door.company, door.other)}


def test_scratch_tables_live_in_memory_and_go_nowhere(door: Door) -> None:
    """The session's own catalog is in memory: an analyst's scratch table works and writes nothing."""
    before = home_snapshot(door.home)
    code, output = _invoke(door, "CREATE TABLE mine AS SELECT * FROM bill\nSELECT count(*) AS n FROM mine", "--csv")
    assert code == 0, output
    assert int(output.strip().splitlines()[-1]) > 0
    assert snapshot_changes(before, home_snapshot(door.home)) == []


def test_real_process_refuses_copy_over_token_file(door: Door) -> None:
    tokens = Path(door.fill("{tokens}"))
    before = tokens.read_bytes()
    env = {**os.environ, "SMARTSYNC_HOME": str(door.home)}
    env.pop("SMARTSYNC_DEBUG", None)
    attack = door.fill(dict(ATTACKS)["copy over a token file"])
    done = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "sql", attack],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("Error: refused:") and done.stderr.count("\n") == 1, done.stderr
    assert tokens.read_bytes() == before
