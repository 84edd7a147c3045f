"""Mirrors materialized by Celery workers on two "hosts" (network namespaces) through RabbitMQ, with
Dagster's storage and the company locks in PostgreSQL, and one host killed with SIGKILL mid-sync.

The hosts share only the services (PostgreSQL, RabbitMQ, the QBO sandbox, over their veth links) and
the storage path (SMARTSYNC_HOME, DAGSTER_HOME). Runs are started as ``dagster job execute`` starts
them, on the machine itself (the orchestrating host), one per company, so every sync step goes through
the broker.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from smartsync_pipeline.cli.instance_commands import write_instance_config
from smartsync_pipeline.coordination.lock_journal import JOURNAL_ENV, LockJournal
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.distributed.hosts import WorkerHost, require_network_namespaces
from smartsync_pipeline_tests.mirror_equality import mirror_differences
from smartsync_pipeline_tests.real_services import (
    PG_PORT,
    RABBITMQ_HOST,
    RABBITMQ_PORT,
    postgres_database,
    require_service,
)

COMPANIES = 4
SMARTSYNC = str(Path(sys.executable).with_name("smartsync"))

pytestmark = pytest.mark.timeout(300)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, text=True, timeout=60)


@dataclass
class Deployment:
    env: dict[str, str]
    dagster_home: Path
    sandbox: SandboxProcess
    companies: list[ConnectedCompany]
    hosts: dict[str, WorkerHost]
    journal: LockJournal
    killed: dict[int, float] = field(default_factory=dict)  # pid -> when its host was killed

    def launch(self, *realm_ids: str) -> subprocess.Popen:
        """One ``mirror_sync`` run per company, started on the orchestrating host (``launcher.py``)."""
        argv = [sys.executable, "-m", "smartsync_pipeline_tests.distributed.launcher", *realm_ids]
        return subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def verify_chains(self, *realm: str) -> subprocess.CompletedProcess:
        """``smartsync audit verify`` (every company, or the one given), against Dagster's event log too."""
        env = {k: v for k, v in self.env.items() if k != JOURNAL_ENV}
        argv = [SMARTSYNC, "audit", "verify", *(["--realm", realm[0]] if realm else [])]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    def holds(self) -> dict[str, list[tuple[float, float, str]]]:
        """Every hold of every company lock, as (start, end, "host pid"); a holder killed while holding
        ends when its host was killed. A live process that never released is an error."""
        open_holds: dict[tuple[str, int], tuple[float, str]] = {}
        found: dict[str, list[tuple[float, float, str]]] = {}
        for e in self.journal.read():
            key = (e["lock"], e["pid"])
            if e["event"] == "acquired":
                assert key not in open_holds, f"{key} acquired twice without a release"
                open_holds[key] = (e["t"], f"{e['host']} pid {e['pid']}")
            else:
                start, who = open_holds.pop(key)
                found.setdefault(e["lock"], []).append((start, e["t"], who))
        for (lock, pid), (start, who) in open_holds.items():
            assert pid in self.killed, f"{who} still holds {lock}"
            found.setdefault(lock, []).append((start, self.killed[pid], who + " (killed)"))
        return found


def assert_one_holder_at_a_time(deployment: Deployment) -> None:
    for lock, holds in deployment.holds().items():
        holds.sort()
        for (s1, e1, who1), (s2, _e2, who2) in itertools.pairwise(holds):
            assert s2 >= e1, f"{lock}: {who2} got it at {s2:.3f} while {who1} held it until {e1:.3f}"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_network_namespaces()
    require_service("RabbitMQ", RABBITMQ_HOST, RABBITMQ_PORT)
    root = tmp_path_factory.mktemp("distributed")
    vhost = f"smartsync-test-{uuid.uuid4().hex[:10]}"  # our own queues: other sessions' workers never see them
    _rabbitmqctl("add_vhost", vhost)
    hosts: dict[str, WorkerHost] = {}
    sandbox = None
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        with postgres_database() as pg_url, pytest.MonkeyPatch.context() as mp:
            env = {
                **os.environ,
                "DAGSTER_HOME": str(root / "dagster_home"),
                "SMARTSYNC_HOME": str(root / "smartsync_home"),
                "SMARTSYNC_PG_URL": pg_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                "SMARTSYNC_COORDINATION": pg_url,
                "SMARTSYNC_EXECUTOR": "celery",
                "SMARTSYNC_CELERY_BROKER": f"pyamqp://guest:guest@127.0.0.1:{RABBITMQ_PORT}/{vhost}",
                JOURNAL_ENV: str(root / "locks.jsonl"),
            }
            for name in ("DAGSTER_HOME", "SMARTSYNC_HOME", "SMARTSYNC_PG_URL", "SMARTSYNC_COORDINATION"):
                mp.setenv(name, env[name])
            write_instance_config(root / "dagster_home", force=True)
            sandbox = SandboxProcess.start(scale="small", seed=11, realms=COMPANIES)
            for name in ("worker-a", "worker-b"):
                hosts[name] = WorkerHost(name, [PG_PORT, RABBITMQ_PORT, int(sandbox.base_url.rsplit(":", 1)[1])], root)
                hosts[name].start_worker(env)
            # Connecting registers each company as a partition in the PostgreSQL instance.
            companies = [ConnectedCompany(root / "smartsync_home", sandbox, i) for i in range(COMPANIES)]
            for host in hosts.values():
                host.wait_ready()
            yield Deployment(env, root / "dagster_home", sandbox, companies, hosts, LockJournal(root / "locks.jsonl"))
    finally:
        for host in hosts.values():
            host.remove()
        if sandbox is not None:
            sandbox.stop()
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)


def _finish(proc: subprocess.Popen, timeout: float = 150) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def test_two_worker_hosts_sync_several_companies_at_once(deployment: Deployment) -> None:
    deployment.sandbox.control("faults", {"latency_ms": 25})  # each sync spans a few seconds: both hosts get work
    try:
        realms = [c.realm_id for c in deployment.companies]
        code, out = _finish(deployment.launch(*realms))
    finally:
        deployment.sandbox.control("faults", {"latency_ms": 0})
    assert code == 0, out[-6000:]
    with dg.DagsterInstance.from_config(str(deployment.dagster_home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="mirror_sync"))
        assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(realms)
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    holds = deployment.holds()
    writers = {who.split(" pid ")[0] for lock, hs in holds.items() if lock.endswith("/write") for _, _, who in hs}
    assert writers == {"worker-a", "worker-b"}, f"syncs ran on {writers} only"
    assert_one_holder_at_a_time(deployment)
    # The company locks were PostgreSQL's (shared by the hosts), not flock files in the shards, and every
    # company's QBO requests were counted in the shared window.
    assert not list(Path(deployment.env["SMARTSYNC_HOME"]).glob("realms/*/locks/*.lock"))
    with psycopg2.connect(deployment.env["SMARTSYNC_COORDINATION"]) as con, con.cursor() as cur:
        cur.execute("SELECT DISTINCT realm_id FROM smartsync_qbo_requests")
        assert sorted(r[0] for r in cur.fetchall()) == sorted(realms)
    for company in deployment.companies:
        assert mirror_differences(company) == {}, company.realm_id
    verified = deployment.verify_chains()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert all(c.realm_id in verified.stdout for c in deployment.companies), verified.stdout


def test_a_worker_host_killed_mid_sync_loses_nothing(deployment: Deployment) -> None:
    company = deployment.companies[0]
    company.simulate(30, seed=5)
    started = time.time()
    deployment.sandbox.control("faults", {"latency_ms": 400})  # the fetch takes a while: kill inside it
    try:
        launcher = deployment.launch(company.realm_id)
        lock = f"{company.realm_id}/sync"
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and launcher.poll() is None:
            victim = next(
                (
                    e
                    for e in deployment.journal.read()
                    if e["lock"] == lock and e["event"] == "acquired" and e["t"] >= started
                ),
                None,
            )
            time.sleep(0.02)
        assert victim is not None, "no worker started the sync"
        host = deployment.hosts[victim["host"]]
        deployment.killed[victim["pid"]] = host.kill()
        # Killed inside the sync: its holder never released the company's lock.
        assert not any(
            e["lock"] == lock and e["pid"] == victim["pid"] and e["event"] == "released" and e["t"] >= victim["t"]
            for e in deployment.journal.read()
        )
        code, out = _finish(launcher)
    finally:
        deployment.sandbox.control("faults", {"latency_ms": 0})
    if code != 0:  # the run failed rather than being retried: the next sync must converge
        code, out = _finish(deployment.launch(company.realm_id))
    assert code == 0, out[-4000:]
    survivors = {e["host"] for e in deployment.journal.read() if e["lock"] == lock and e["t"] > started}
    assert survivors == {"worker-a", "worker-b"}, survivors  # the other host finished the sync
    assert_one_holder_at_a_time(deployment)
    assert mirror_differences(company) == {}
    verified = deployment.verify_chains(company.realm_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr
