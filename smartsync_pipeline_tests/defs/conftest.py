"""Fixtures for the Dagster definitions: a real instance (repo dagster.yaml in a temp DAGSTER_HOME), a
SMARTSYNC_HOME with sandbox companies connected, and a helper that materializes mirror partitions."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from smartsync_pipeline.cli.instance_commands import write_instance_config
from smartsync_pipeline.defs.assets.change_log import change_log
from smartsync_pipeline.defs.assets.mirrors import MIRROR_ASSET_NAME, MIRROR_KEYS, qbo_mirrors
from smartsync_pipeline.defs.checks.change_log_chain import change_log_chain_intact
from smartsync_pipeline.defs.checks.freshness import mirror_freshness
from smartsync_pipeline.defs.checks.reconciliation import mirror_reconciliation
from smartsync_pipeline.defs.checks.unique_ids import mirror_unique_ids
from smartsync_pipeline.defs.resources import MirrorSyncResource
from smartsync_pipeline.defs.resources.smart_reader import SmartReaderResource
from smartsync_pipeline.home import Home
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_ASSETS = [
    qbo_mirrors,
    change_log,
    mirror_freshness,
    mirror_reconciliation,
    mirror_unique_ids,
    change_log_chain_intact,
]


def make_dagster_home(path: Path, extra_yaml: str = "") -> Path:
    """A DAGSTER_HOME holding the repository's dagster.yaml (plus ``extra_yaml``)."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", path / "dagster.yaml")
    if extra_yaml:
        with open(path / "dagster.yaml", "a") as fh:
            fh.write("\n" + extra_yaml)
    return path


@dataclass
class MirrorSetup:
    """A Dagster instance, a SMARTSYNC_HOME and the sandbox companies connected to it."""

    instance: dg.DagsterInstance
    dagster_home: Path
    home: Home
    sandbox: SandboxProcess
    companies: list[ConnectedCompany] = field(default_factory=list)

    @property
    def realms(self) -> list[str]:
        return [c.realm_id for c in self.companies]

    @property
    def resources(self) -> dict[str, Any]:
        return {
            "mirror_sync": MirrorSyncResource(smartsync_home=str(self.home.root)),
            "smart_reader": SmartReaderResource(smartsync_home=str(self.home.root)),
        }

    def definitions(self) -> dg.Definitions:
        """The project's definitions with the resource pointed at this setup's SMARTSYNC_HOME."""
        from smartsync_pipeline.definitions import defs

        return dg.Definitions(
            assets=defs.assets,
            asset_checks=defs.asset_checks,
            jobs=defs.jobs,
            schedules=defs.schedules,
            sensors=defs.sensors,
            resources=self.resources,
        )

    def run_request(self, request: dg.RunRequest, job_name: str = "mirror_sync") -> dg.ExecuteInProcessResult:
        """Execute what a sensor or schedule asked for, in process, as the daemon would launch it."""
        job = self.definitions().resolve_job_def(job_name)
        return job.execute_in_process(
            instance=self.instance,
            partition_key=request.partition_key,
            asset_selection=request.asset_selection,
            run_config=request.run_config,
            tags=request.tags,
        )

    def materialize(
        self,
        realm_id: str,
        entities: Sequence[str] | None = None,
        *,
        mode: str = "auto",
        tags: dict[str, str] | None = None,
        checks: bool = False,
        raise_on_error: bool = True,
    ) -> dg.ExecuteInProcessResult:
        """Materialize mirror assets of one realm partition (optionally with their snapshot checks)."""
        keys = [MIRROR_KEYS[e] for e in entities] if entities else list(MIRROR_KEYS.values())
        selection: dg.AssetSelection = dg.AssetSelection.assets(*keys)
        if not checks:
            selection = selection.without_checks()
        assets = [qbo_mirrors, mirror_freshness, mirror_unique_ids] if checks else [qbo_mirrors]
        return dg.materialize(
            assets,
            instance=self.instance,
            partition_key=realm_id,
            resources=self.resources,
            selection=selection,
            tags=tags,
            run_config={"ops": {MIRROR_ASSET_NAME: {"config": {"mode": mode}}}},
            raise_on_error=raise_on_error,
        )

    def run_change_log(self, *, raise_on_error: bool = True, with_check: bool = True) -> dg.ExecuteInProcessResult:
        selection = dg.AssetSelection.assets(change_log.key)
        if not with_check:
            selection = selection.without_checks()
        return dg.materialize(
            [qbo_mirrors, change_log, change_log_chain_intact],
            instance=self.instance,
            resources=self.resources,
            selection=selection,
            raise_on_error=raise_on_error,
        )

    def check(self, *checks_defs: dg.AssetChecksDefinition, run_config: dict | None = None) -> list:
        """Run multi-checks alone (all their checks, one run) and return the evaluations."""
        result = dg.materialize(
            [qbo_mirrors, *checks_defs],
            instance=self.instance,
            resources=self.resources,
            selection=dg.AssetSelection.checks(*checks_defs),
            run_config=run_config,
        )
        return result.get_asset_check_evaluations()


@contextmanager
def duckdb_files_hidden(home: Home) -> Iterator[list[Path]]:
    """Move every DuckDB file of ``home`` (mirror and snapshots) out of reach meanwhile: code that runs
    inside must not need them (sensors, schedules: JSON state and the SQLite inbox only)."""
    hidden = home.root.parent / f"{home.root.name}.hidden-duckdb"
    hidden.mkdir()
    moved = [p for p in home.root.rglob("*.duckdb") if p.is_file() and not p.is_symlink()]
    for p in moved:
        p.rename(hidden / p.relative_to(home.root).as_posix().replace("/", "__"))
    try:
        yield moved
    finally:
        for p in moved:
            (hidden / p.relative_to(home.root).as_posix().replace("/", "__")).rename(p)
        hidden.rmdir()


def start_mirror_setup(
    root: Path, realms: int = 2, *, ephemeral: bool = False, postgres_url: str | None = None
) -> Iterator[MirrorSetup]:
    """Build a MirrorSetup under ``root`` with DAGSTER_HOME pointing at its instance while it lives.

    Connecting goes through ``connect_company``, so ``register_realm`` adds each realm as a partition of
    the instance at DAGSTER_HOME (SQLite, the repository's dagster.yaml). ``ephemeral`` runs on an
    in-memory instance instead (same partitions), for tests that need no pools or persistence and
    would otherwise spend most of their time writing Dagster's event log. ``postgres_url`` writes the
    instance file with ``smartsync instance init``'s code instead, storage in that PostgreSQL database."""
    with pytest.MonkeyPatch.context() as mp:
        dagster_home = make_dagster_home(root / "dagster_home")
        if postgres_url:
            mp.setenv("SMARTSYNC_PG_URL", postgres_url)
            write_instance_config(dagster_home, force=True)
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        mp.setenv("SMARTSYNC_HOME", str(root / "smartsync_home"))
        sandbox = SandboxProcess.start(scale="small", seed=7, realms=realms)
        try:
            companies = [ConnectedCompany(root / "smartsync_home", sandbox, i) for i in range(realms)]
            with (
                dg.DagsterInstance.ephemeral() if ephemeral else dg.DagsterInstance.from_config(str(dagster_home))
            ) as instance:
                if ephemeral:
                    instance.add_dynamic_partitions("realms", [c.realm_id for c in companies])
                yield MirrorSetup(instance, dagster_home, companies[0].home, sandbox, companies)
        finally:
            sandbox.stop()


@pytest.fixture
def mirror_setup(tmp_path: Path) -> Iterator[MirrorSetup]:
    """Two connected sandbox realms, nothing synced yet, fresh instance (per test)."""
    yield from start_mirror_setup(tmp_path)


# -- PostgreSQL: a fresh database per test, dropped afterwards --------------------------------------

PG_HOST, PG_PORT, PG_ADMIN_DB = "127.0.0.1", 5432, "test"


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            return True
    except OSError:
        return False


def _admin_connection():
    import psycopg2

    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            con = psycopg2.connect(host=PG_HOST, port=PG_PORT, dbname=PG_ADMIN_DB, user=user, connect_timeout=5)
            con.autocommit = True
            return con, user
        except psycopg2.OperationalError as exc:
            last = exc
    raise RuntimeError(f"cannot connect to PostgreSQL at {PG_HOST}:{PG_PORT} as postgres or root: {last}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg2://`` URL of a new, empty database; skipped locally (never in CI) when no
    server listens on 127.0.0.1:5432."""
    if not _postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} (CI=true: not skipping)")
        pytest.skip(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}")
    con, user = _admin_connection()
    name = f"smartsync_test_{uuid.uuid4().hex[:12]}"
    try:
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg2://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with con.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        con.close()
