"""No secret in plain text anywhere smartsync writes or says something, with logging at DEBUG.

One company is connected and then worked through every path that touches credentials: CLI syncs, an
in-process sync (with a revoked token, so a refresh happens, and with failures, so errors are built),
an on-demand SmartReader refresh recorded in Dagster, a Dagster materialization, and webhook deliveries
to ``smartsync webhooks serve``. Afterwards every secret ever issued (all access and refresh tokens the
sandbox handed out — read from its state journal, which records each one — the client secret and the
webhook verifier) is searched for in: captured logs and outputs, exception texts, the Dagster event log,
the change log and mirror tables (through SQL: DuckDB compresses strings on disk), and the bytes of every
file under SMARTSYNC_HOME and DAGSTER_HOME."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.errors import QBOError
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline.smart.reader import SmartReader
from smartsync_pipeline.sync.engine import SyncEngine
from smartsync_pipeline_tests.time_travel import age_mirror

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def issued_secrets(state_file: Path, info: dict) -> set[str]:
    """Every token the sandbox ever issued (the journal snapshots its token table on every change),
    plus the app's client secret and the webhook verifier."""
    found = {info["client_secret"], info["webhook_verifier"]}
    for line in state_file.read_text().splitlines():
        record = json.loads(line)
        if record.get("t") == "tokens":
            found |= set(record["state"]["access"]) | set(record["state"]["refresh"])
    return {s for s in found if s}


def run_cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def stored_text(home: Home) -> str:
    """Every text value of the change log and the mirror tables, read through DuckDB."""
    parts: list[str] = []
    with MirrorDatabase(home).inspect() as con:
        for table in ["change_log", "sync_state", *(spec.table for spec in ENTITIES)]:
            rel = con.sql(f"SELECT * FROM {table}")
            text_columns = [c for c, t in zip(rel.columns, rel.types, strict=True) if "VARCHAR" in str(t)]
            for column in text_columns:
                parts += [str(v) for (v,) in con.execute(f'SELECT "{column}" FROM {table}').fetchall() if v]
    return "\n".join(parts)


def dagster_event_text(dagster_home: Path) -> str:
    """Every event of every run and every asset event, as Dagster returns them (metadata included)."""
    parts: list[str] = []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs():
            parts.append(repr(run))
            parts += [repr(entry) for entry in instance.all_logs(run.run_id)]
        for key in MIRROR_KEYS.values():  # includes runless events (the reader's on-demand refresh)
            parts += [repr(r) for r in instance.fetch_materializations(key, limit=10_000).records]
    assert any("ASSET_MATERIALIZATION" in p for p in parts)  # the scan saw real events
    return "\n".join(parts)


def file_leaks(root: Path, secrets: set[str]) -> list[str]:
    leaks = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            leaks += [f"{path.relative_to(root)} holds {s[:4]}…" for s in secrets if s.encode() in data]
    return leaks


def text_leaks(where: str, text: str, secrets: set[str]) -> list[str]:
    return [f"{where} holds {s[:4]}…" for s in secrets if s in text]


def test_no_secret_is_written_or_said_anywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    state_file = tmp_path / "sandbox_state.jsonl"
    sandbox = SandboxProcess.start(scale="small", seed=31, state_file=state_file)
    home_root, dagster_home = tmp_path / "smartsync_home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    line = tmp_path / "sandbox_line.json"  # holds secrets by design; not part of any home
    line.write_text(json.dumps(sandbox.info) + "\n")
    env = {**os.environ, "SMARTSYNC_HOME": str(home_root), "DAGSTER_HOME": str(dagster_home)}
    env.update(SMARTSYNC_LOG_LEVEL="DEBUG", PYTHONPATH=str(REPO_ROOT))
    said: list[tuple[str, str]] = []  # (where, text)
    webhooks: subprocess.Popen | None = None
    try:
        # 1. The CLI: connect (verifies: one refresh), a full sync, the log.
        said.append(("connect output", run_cli(env, "connect", "--from-sandbox", str(line))))
        said.append(("sync output", run_cli(env, "sync", "--full", "--json")))
        said.append(("log output", run_cli(env, "log", "--json", "--limit", "5")))
        home = Home(home_root)

        # 2. In process, with the access token revoked (a 401, then a refresh) and with failures.
        sandbox.control("simulate", {"operations": 30, "seed": 3})
        sandbox.control("revoke", {})
        engine = SyncEngine(home)
        said.append(("in-process sync report", json.dumps(engine.sync().as_dict())))

        # The same client as the engine's, with short backoffs: the texts built after retries ran out
        # are what is scanned, the default waits between the attempts (~8 s) prove nothing here. Every
        # request fails until the faults are reset: a full listing pages concurrently, so a few
        # failures would be spread over several requests that each retry once and succeed.
        def quick_retries(realm_id: str) -> QBOClient:
            store = CompanyStore(home)
            return QBOClient(store.load(realm_id), store.tokens(realm_id), home=home, backoff_base=0.01)

        for status in (500, 401):
            sandbox.control("faults", {"fail_next": [{"status": status, "count": 1000}]})
            with pytest.raises(QBOError) as failed:
                SyncEngine(home, client_factory=quick_retries).sync(mode="full")
            said.append(("exception", f"{failed.value} {failed.value!r} {failed.value.args!r}"))
            sandbox.control("faults", {"reset": True})

        # 3. An on-demand read of stale data: refreshes, and records a materialization in Dagster.
        os.environ["DAGSTER_HOME"] = str(dagster_home)
        try:
            age_mirror(home, 7200)
            sandbox.control("revoke", {})
            reader = SmartReader(smartsync_home=str(home_root))
            result = reader.read("Bill", sandbox.realm_id)
            assert result.provenance.source == "api"
            said.append(("provenance", repr(result.provenance)))
        finally:
            del os.environ["DAGSTER_HOME"]

        # 4. A Dagster materialization of the mirror assets (its own process, DEBUG logs).
        materialize = subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m",
             "smartsync_pipeline.definitions", "--select", "group:mirrors", "--partition", sandbox.realm_id,
             "--config-json", json.dumps({"execution": {"config": {"in_process": {}}}})],
            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert materialize.returncode == 0, materialize.stderr[-2000:]
        said.append(("dagster materialize output", materialize.stdout + materialize.stderr))

        # 5. Webhooks through `smartsync webhooks serve` (verifier read from the encrypted file).
        webhooks = subprocess.Popen(
            [sys.executable, "-m", "smartsync_pipeline.cli.main", "webhooks", "serve", "--port", "0"],
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        url = webhooks.stdout.readline().split(" at ", 1)[1].split(" ", 1)[0]
        sandbox.control("webhooks", {"url": url, "format": "classic", "duplicate_rate": 0.5})
        changed = sandbox.control("simulate", {"operations": 10, "seed": 4})["changes"]
        deadline = time.monotonic() + 60
        with WebhookInbox(home.inbox_path) as inbox:
            while inbox.count() < 1 or sandbox.control("webhooks", method="GET")["pending"]:
                assert time.monotonic() < deadline, "no webhook arrived"
                time.sleep(0.05)  # poll interval; the deadline decides
        assert changed
        webhooks.send_signal(signal.SIGTERM)
        out, err = webhooks.communicate(timeout=30)
        said.append(("webhooks serve output", out + err))

        # -- the scan -------------------------------------------------------------------------------
        secrets = issued_secrets(state_file, sandbox.info)
        assert len(secrets) >= 8  # client secret, verifier, and several rotated token pairs
        said.append(("captured log records", caplog.text + "\n".join(r.getMessage() for r in caplog.records)))
        said.append(("sandbox log", sandbox.stderr))
        said.append(("change log and mirror", stored_text(home)))
        said.append(("dagster event log", dagster_event_text(dagster_home)))
        leaks = [leak for where, text in said for leak in text_leaks(where, text, secrets)]
        leaks += file_leaks(home_root, secrets) + file_leaks(dagster_home, secrets)
        assert leaks == []
        # The scan can see: the same search finds the secrets where they belong (the sandbox's journal
        # and the connection line it printed).
        assert all(s.encode() in state_file.read_bytes() for s in secrets)
        assert text_leaks("line", line.read_text(), secrets)
        assert "DEBUG" in said[1][1] and any(r.levelno == logging.DEBUG for r in caplog.records)
    finally:
        if webhooks is not None and webhooks.poll() is None:
            webhooks.kill()
        sandbox.stop()


def test_credential_files_are_private_and_sealed(tmp_path: Path) -> None:
    """0600 files, 0700 folders, and no secret in plain text in any of them (extends qbo/test_credentials)."""
    sandbox = SandboxProcess.start(scale="small", seed=32)
    try:
        home = tmp_path / "home"
        env = {**os.environ, "SMARTSYNC_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
        env.pop("DAGSTER_HOME", None)
        line = tmp_path / "line.json"
        line.write_text(json.dumps(sandbox.info) + "\n")
        run_cli(env, "connect", "--from-sandbox", str(line))
        info = sandbox.info
        secrets = {info["client_secret"], info["webhook_verifier"], info["refresh_token"]}
        sealed = [*sorted((home / "companies").iterdir()), home / "webhook_verifier", home / "secret.key"]
        assert len(sealed) == 4  # connection, tokens, verifier, key
        for path in sealed:
            assert path.stat().st_mode & 0o777 == 0o600, path
            assert not [s for s in secrets if s.encode() in path.read_bytes()], path
        for folder in (home, home / "companies", home / "locks"):
            assert folder.stat().st_mode & 0o077 == 0, folder
        tokens = json.loads(next(p for p in sealed if p.name.endswith(".tokens.json")).read_text())
        assert set(tokens) >= {"sealed", "realm_id"} and "refresh_token" not in tokens
    finally:
        sandbox.stop()
