"""``smartsync webhooks serve|status`` as a real process: verifier sources, durability, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.webhook_commands import webhooks
from smartsync_pipeline.inbox import WebhookInbox
from smartsync_pipeline.qbo.webhooks import sign_body

REPO = Path(__file__).resolve().parents[2]
VERIFIER = "cli-verifier-5e6f7a8b"


def classic(entity_id: str) -> bytes:
    entity = {"name": "Bill", "id": entity_id, "operation": "Update", "lastUpdated": "2026-11-26T10:00:00Z"}
    return json.dumps({"eventNotifications": [{"realmId": "111", "dataChangeEvent": {"entities": [entity]}}]}).encode()


def deliver(url: str, body: bytes, verifier: str = VERIFIER) -> int:
    request = urllib.request.Request(url, data=body, headers={"intuit-signature": sign_body(verifier, body)})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


GROUP_ONLY = "from smartsync_pipeline.cli.webhook_commands import webhooks; webhooks(prog_name='smartsync webhooks')"


class Served:
    """A running ``smartsync webhooks serve`` process and the URL from its first line."""

    def __init__(self, home: Path, env: dict[str, str], *args: str, full_cli: bool = False) -> None:
        # The full `smartsync` CLI imports every command (Dagster included, seconds); most tests start
        # just the `webhooks` group, the first test goes through the real entry point.
        entry = ["-m", "smartsync_pipeline.cli.main", "webhooks"] if full_cli else ["-c", GROUP_ONLY]
        self.proc = subprocess.Popen(
            [sys.executable, *entry, "serve", "--port", "0", *args],
            cwd=REPO,
            env={**os.environ, "SMARTSYNC_HOME": str(home), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"serve exited: {self.proc.wait(10)} {self.proc.stderr.read()}")
        self.line = line.strip()
        self.url = next(word for word in self.line.split() if word.startswith("http://"))

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


@pytest.fixture
def served() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


def test_serve_prints_its_url_stores_durably_and_survives_kill_9(smartsync_home: Path, served: list[Served]) -> None:
    server = Served(smartsync_home, {"SMARTSYNC_WEBHOOK_VERIFIER": VERIFIER}, full_cli=True)
    served.append(server)
    assert server.url.endswith("/webhooks/qbo")
    assert VERIFIER not in server.line
    assert deliver(server.url, classic("145")) == 200
    server.proc.kill()  # no chance to flush anything after the 200
    server.proc.wait(10)
    with WebhookInbox(smartsync_home / "inbox.sqlite") as inbox:
        assert [r.entity_id for r in inbox.read_after(0)] == ["145"]


def test_serve_stops_cleanly_on_ctrl_c_and_sigterm(smartsync_home: Path, served: list[Served]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        server = Served(smartsync_home, {"SMARTSYNC_WEBHOOK_VERIFIER": VERIFIER})
        served.append(server)
        assert deliver(server.url, classic("1")) == 200
        assert deliver(server.url, classic("2"), verifier="wrong") == 401
        code, err = server.stop(sig)
        assert code == 0, err
        assert "1 bad signatures" in err
        assert VERIFIER not in err


def test_verifier_from_the_encrypted_file(
    smartsync_home: Path, served: list[Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    from smartsync_pipeline.qbo.secrets import encrypt

    monkeypatch.delenv("SMARTSYNC_WEBHOOK_VERIFIER", raising=False)
    monkeypatch.delenv("SMARTSYNC_SECRET_KEY", raising=False)
    (smartsync_home / "webhook_verifier").write_text(encrypt("from-the-file-1234"))
    assert "from-the-file-1234" not in (smartsync_home / "webhook_verifier").read_text()
    env = {"SMARTSYNC_WEBHOOK_VERIFIER": ""}
    server = Served(smartsync_home, env)
    served.append(server)
    assert deliver(server.url, classic("1"), verifier="from-the-file-1234") == 200
    assert deliver(server.url, classic("2")) == 401


def test_custom_verifier_env_wins_over_the_file(smartsync_home: Path, served: list[Served]) -> None:
    (smartsync_home / "webhook_verifier").write_text("not even encrypted")
    server = Served(smartsync_home, {"MY_VERIFIER": VERIFIER}, "--verifier-env", "MY_VERIFIER")
    served.append(server)
    assert deliver(server.url, classic("1")) == 200


def test_missing_or_unreadable_verifier_is_a_clear_error(smartsync_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTSYNC_WEBHOOK_VERIFIER", raising=False)
    result = CliRunner().invoke(webhooks, ["serve", "--port", "0"])
    assert result.exit_code != 0
    assert "SMARTSYNC_WEBHOOK_VERIFIER" in result.output and "smartsync connect" in result.output
    (smartsync_home / "webhook_verifier").write_text("garbage-not-fernet")
    result = CliRunner().invoke(webhooks, ["serve", "--port", "0"])
    assert result.exit_code != 0
    assert "cannot decrypt the webhook verifier" in result.output
    assert "garbage-not-fernet" not in result.output


def test_status_reports_count_and_latest_seq(smartsync_home: Path) -> None:
    result = CliRunner().invoke(webhooks, ["status"])
    assert result.exit_code == 0
    assert "0 events, latest seq 0" in result.output
    assert not (smartsync_home / "inbox.sqlite").exists()  # status does not create the inbox
    from smartsync_pipeline.qbo.webhooks import parse_webhook

    with WebhookInbox(smartsync_home / "inbox.sqlite") as inbox:
        inbox.add(parse_webhook(classic("1")) + parse_webhook(classic("2")))
    result = CliRunner().invoke(webhooks, ["status"])
    assert result.exit_code == 0
    assert "2 events, latest seq 2" in result.output
