"""Every bad value a person or a caller can pass: one clear line, a non-zero exit (or a typed
exception), no traceback, and nothing written under SMARTSYNC_HOME. Table-driven.

The CLI table runs in-process through click's runner (fast, and any exception escaping the command is
caught by the test); ``test_real_processes_print_one_line`` repeats a few rows as real processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline.entities import UnknownEntityError
from smartsync_pipeline.home import Home
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline.services import for_business
from smartsync_pipeline.smart.errors import SmartReadError
from smartsync_pipeline.smart.reader import SmartReader
from smartsync_pipeline.sync.engine import SyncEngine, SyncError
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.reliability.home_snapshot import home_snapshot, snapshot_changes

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class World:
    """A synced small company (``home``) and the sandbox it talks to."""

    company: ConnectedCompany
    sandbox: SandboxProcess
    files: Path

    @property
    def home(self) -> Path:
        return self.company.home.root

    @property
    def realm(self) -> str:
        return self.company.realm_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sandbox = SandboxProcess.start(scale="small", seed=23)
    try:
        company = ConnectedCompany(tmp_path_factory.mktemp("bad_args_home"), sandbox)
        company.engine().sync()
        files = tmp_path_factory.mktemp("bad_args_files")
        (files / "not-json.txt").write_text("this is not the sandbox's JSON line\n")
        (files / "partial.json").write_text(json.dumps({"api_base": sandbox.api_base}) + "\n")
        info = dict(sandbox.info)
        info["client_secret"] = "wrong-secret-" + "x" * 20
        (files / "wrong-secret.json").write_text(json.dumps(info) + "\n")
        unreachable = {**sandbox.info, "api_base": "http://127.0.0.1:9/v3", "token_url": "http://127.0.0.1:9/oauth2"}
        (files / "unreachable.json").write_text(json.dumps(unreachable) + "\n")
        other = {"t": "header", "seed": 1, "scale": "small", "realms": 1, "start_time": 0.0, "client_id": "c",
                 "client_secret": "s" * 12, "webhook_verifier": "v" * 12}  # fmt: skip
        (files / "other.jsonl").write_text(json.dumps(other) + "\n")
        yield World(company, sandbox, files)
    finally:
        sandbox.stop()


CONNECT = ["connect", "--realm", "123", "--client-id", "c", "--client-secret", "s" * 12, "--refresh-token", "r" * 12]

# (id, home: "synced" | "empty", argv). {realm} and {files} are filled in from the world.
CLI_CASES: list[tuple[str, str, list[str]]] = [
    ("connect: api base not a URL", "empty", [*CONNECT, "--api-base", "ftp://x/v3", "--token-url", "http://x/t"]),
    ("connect: token url not a URL", "empty", [*CONNECT, "--api-base", "http://x/v3", "--token-url", "x"]),
    ("connect: nothing given", "empty", ["connect"]),
    ("connect: realm escapes the folder", "empty",
     ["connect", "--realm", "../../etc", "--api-base", "http://x/v3", "--token-url", "http://x/t", "--client-id", "c",
      "--client-secret", "s" * 12, "--refresh-token", "r" * 12, "--no-verify"]),
    ("connect: sandbox JSON missing", "empty", ["connect", "--from-sandbox", "{files}/nope.json"]),
    ("connect: sandbox JSON not JSON", "empty", ["connect", "--from-sandbox", "{files}/not-json.txt"]),
    ("connect: sandbox JSON incomplete", "empty", ["connect", "--from-sandbox", "{files}/partial.json"]),
    ("connect: wrong client secret", "empty", ["connect", "--from-sandbox", "{files}/wrong-secret.json"]),
    ("connect: QBO unreachable", "empty", ["connect", "--from-sandbox", "{files}/unreachable.json"]),
    ("sync: unknown entity", "synced", ["sync", "--entity", "Bils"]),
    ("sync: unknown realm", "synced", ["sync", "--realm", "999"]),
    ("sync: malformed realm", "synced", ["sync", "--realm", "../x"]),
    ("sync: no company connected", "empty", ["sync"]),
    ("bills-due: negative days", "synced", ["bills-due", "--days", "-1"]),
    ("bills-due: huge days", "synced", ["bills-due", "--days", "99999999"]),
    ("bills-due: days not a number", "synced", ["bills-due", "--days", "soon"]),
    ("bills-due: negative max-age", "synced", ["bills-due", "--max-age", "-5"]),
    ("bills-due: max-age not a number", "synced", ["bills-due", "--max-age", "fresh"]),
    ("bills-due: max-age nan", "synced", ["bills-due", "--max-age", "nan"]),
    ("bills-due: max-age infinite", "synced", ["bills-due", "--max-age", "inf"]),
    ("bills-due: huge max-age", "synced", ["bills-due", "--max-age", "1e300"]),
    ("bills-due: unknown realm", "synced", ["bills-due", "--realm", "999"]),
    ("bills-due: zero limit", "synced", ["bills-due", "--limit", "0"]),
    ("bills-due: negative offset", "synced", ["bills-due", "--offset", "-1"]),
    ("digest: negative max-age", "synced", ["digest", "--max-age", "-1"]),
    ("digest: unknown realm", "synced", ["digest", "--realm", "999"]),
    ("digest: html into a missing folder", "synced", ["digest", "--max-age", "0", "--html", "{files}/no/dir/d.html"]),
    ("log: zero limit", "synced", ["log", "--limit", "0"]),
    ("log: unknown entity", "synced", ["log", "--entity", "Bils"]),
    ("log: unknown realm", "synced", ["log", "--realm", "999"]),
    ("reconcile: unknown entity", "synced", ["reconcile", "--entity", "Bils"]),
    ("reconcile: unknown realm", "synced", ["reconcile", "--realm", "999"]),
    ("audit: unknown option", "synced", ["audit", "verify", "--everything"]),
    ("unknown command", "synced", ["synchronise"]),
    ("sql: not SQL", "synced", ["sql", "SELEKT 1"]),
    ("sql: a write", "synced", ["sql", "DELETE FROM bill"]),
    ("sql: no analyst database yet", "empty", ["sql", "SELECT 1"]),
    ("sandbox: unknown scale", "empty", ["sandbox", "serve", "--scale", "huge"]),
    ("sandbox: zero realms", "empty", ["sandbox", "serve", "--realms", "0"]),
    ("sandbox: negative limit", "empty", ["sandbox", "serve", "--per-window", "-1"]),
    ("sandbox: port out of range", "empty", ["sandbox", "serve", "--port", "70000"]),
    ("sandbox start: port out of range", "empty", ["sandbox", "start", "--port", "70000"]),
    ("sandbox: start time not a time", "empty", ["sandbox", "serve", "--start-time", "yesterday-ish"]),
    ("sandbox: state file of another sandbox", "empty", ["sandbox", "serve", "--state-file", "{files}/other.jsonl"]),
    ("webhooks: port out of range", "synced", ["webhooks", "serve", "--port", "70000"]),
    ("webhooks: host that cannot be bound", "synced", ["webhooks", "serve", "--host", "203.0.113.7", "--port", "0"]),
    ("webhooks: no verifier anywhere", "empty", ["webhooks", "serve", "--verifier-env", "NO_SUCH_VARIABLE"]),
]  # fmt: skip


def _fill(argv: list[str], world: World) -> list[str]:
    return [a.replace("{realm}", world.realm).replace("{files}", str(world.files)) for a in argv]


def assert_one_line_error(output: str, exit_code: int) -> None:
    assert exit_code != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, output
    assert len(errors[0]) > len("Error: ") + 5, output


@pytest.mark.parametrize(("name", "which", "argv"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_bad_values_in_one_line_and_writes_nothing(
    world: World, tmp_path: Path, name: str, which: str, argv: list[str]
) -> None:
    home = world.home if which == "synced" else tmp_path / "never_created_home"
    before = home_snapshot(home)
    env = {"SMARTSYNC_HOME": str(home), "DAGSTER_HOME": None, "SMARTSYNC_DEBUG": None, "NO_SUCH_VARIABLE": None}
    result = CliRunner(env=env).invoke(cli, _fill(argv, world))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(result.output, result.exit_code)  # click 8.2+: output holds stdout and stderr
    assert snapshot_changes(before, home_snapshot(home)) == [], f"{name} wrote under SMARTSYNC_HOME"


@pytest.mark.parametrize(
    "argv",
    [
        ["bills-due", "--days", "-1"],
        ["sync", "--entity", "Bils"],
        ["sandbox", "serve", "--realms", "0"],
        ["sandbox", "serve", "--port", "{port}"],  # taken by the running sandbox
    ],
)
def test_real_processes_print_one_line(world: World, argv: list[str]) -> None:
    env = {**os.environ, "SMARTSYNC_HOME": str(world.home)}
    env.pop("SMARTSYNC_DEBUG", None)
    port = world.sandbox.base_url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", *[a.replace("{port}", port) for a in argv]],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_line_error(done.stderr, done.returncode)
    assert done.stdout == ""


# -- the same discipline for callers of the services and the engine ----------------------------------

ServiceCall = Callable[[World], Any]

SERVICE_CASES: list[Any] = [
    ("negative days", lambda w: _services(w).bills.get_bills_due_in_days(-1), ValueError),
    ("huge days", lambda w: _services(w).bills.get_bills_due_in_days(10**9), ValueError),
    ("days as text", lambda w: _services(w).bills.get_bills_due_in_days("30"), ValueError),
    ("days as a float", lambda w: _services(w).invoices.get_ar_due_in_days(1.5), ValueError),
    ("days as a bool", lambda w: _services(w).invoices.get_ar_due_in_days(True), ValueError),
    ("negative max_age", lambda w: _services(w).bills.get_bills_due_in_days(30, max_age=-1), ValueError),
    ("max_age as text", lambda w: _services(w).accounts.get_cash_position(max_age="5"), ValueError),
    ("max_age nan", lambda w: _services(w).accounts.get_cash_position(max_age=math.nan), ValueError),
    ("max_age infinite", lambda w: _services(w).accounts.get_cash_position(max_age=math.inf), ValueError),
    ("max_age of a million years", lambda w: _services(w).accounts.get_cash_position(max_age=3.2e13), ValueError),
    ("vendor empty", lambda w: _services(w).bills.get_bills_by_vendor("  "), ValueError),
    ("realm empty", lambda w: for_business(_reader(w), "").bills.get_bills_due_in_days(30), ValueError),
    ("realm not connected", lambda w: for_business(_reader(w), "999").bills.get_bills_due_in_days(30), SmartReadError),
    ("realm escapes the folder", lambda w: for_business(_reader(w), "../x").bills.get_overdue_bills(), SmartReadError),
    ("unknown entity", lambda w: _reader(w).read("Bils", w.realm), UnknownEntityError),
    ("engine: unknown mode", lambda w: SyncEngine(Home(w.home)).sync(w.realm, mode="sideways"), SyncError),
    ("engine: unknown trigger", lambda w: SyncEngine(Home(w.home)).sync(w.realm, trigger="cron"), SyncError),
    ("engine: unknown entity", lambda w: SyncEngine(Home(w.home)).sync(w.realm, ["Bils"]), UnknownEntityError),
    ("engine: unknown realm", lambda w: SyncEngine(Home(w.home)).sync("999"), SyncError),
]


def _case_id(case: Any) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]


def _reader(world: World) -> SmartReader:
    return SmartReader(smartsync_home=str(world.home), record_in_dagster=False)


def _services(world: World) -> Any:
    return for_business(_reader(world), world.realm)


@pytest.mark.parametrize(("name", "call", "expected"), SERVICE_CASES, ids=[_case_id(c) for c in SERVICE_CASES])
def test_services_and_engine_refuse_bad_values_and_write_nothing(
    world: World, name: str, call: ServiceCall, expected: type[Exception]
) -> None:
    before = home_snapshot(world.home)
    with pytest.raises(expected) as raised:
        call(world)
    message = str(raised.value)
    assert message.strip() and "\n" not in message.strip() and "Traceback" not in message, message
    assert snapshot_changes(before, home_snapshot(world.home)) == [], f"{name} wrote under SMARTSYNC_HOME"
