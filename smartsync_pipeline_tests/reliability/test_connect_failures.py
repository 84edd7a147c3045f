"""A failed ``smartsync connect`` must never cost the user a working connection.

Before the fix, any verification failure removed the company: after QBO had already rotated the
refresh token (the user's token is dead from then on), and also when re-connecting a company that
was working (its stored credentials were overwritten, then deleted)."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline.home import Home
from smartsync_pipeline.sync.engine import SyncEngine
from smartsync_pipeline_tests.reliability.home_snapshot import home_snapshot, snapshot_changes


def _connect(home: Path, *args: str) -> tuple[int, str]:
    env = {"SMARTSYNC_HOME": str(home), "DAGSTER_HOME": None, "SMARTSYNC_DEBUG": None}
    result = CliRunner(env=env).invoke(cli, ["connect", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def _refresh_works(info: dict, refresh_token: str) -> bool:
    answer = requests.post(
        info["token_url"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(info["client_id"], info["client_secret"]),
        timeout=30,
    )
    return answer.status_code == 200


def test_verification_failing_after_the_token_rotated_keeps_the_connection(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory()
    line = tmp_path / "sandbox.json"
    line.write_text(json.dumps(sandbox.info) + "\n")
    # The token endpoint works (the refresh token rotates); the API then refuses twice: 401, refresh, 401.
    sandbox.control("faults", {"fail_next": [{"status": 401, "count": 2}]})
    home = tmp_path / "home"

    code, output = _connect(home, "--from-sandbox", str(line))

    assert code != 0 and "Traceback" not in output
    assert "rotated" in output and "kept" in output, output
    assert not _refresh_works(sandbox.info, sandbox.info["refresh_token"])  # the user's token is dead now...
    report = SyncEngine(Home(home)).sync()  # ...but the kept one works
    assert report.total("created") > 0


def test_a_failed_reconnect_leaves_the_working_connection_as_it_was(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory()
    line = tmp_path / "sandbox.json"
    line.write_text(json.dumps(sandbox.info) + "\n")
    home = tmp_path / "home"
    code, output = _connect(home, "--from-sandbox", str(line))
    assert code == 0, output
    before = home_snapshot(home)

    code, output = _connect(home, "--from-sandbox", str(line), "--refresh-token", "not-a-refresh-token-at-all")

    assert code != 0 and "invalid_grant" in output and "Traceback" not in output, output
    assert snapshot_changes(before, home_snapshot(home)) == []
    assert SyncEngine(Home(home)).sync().total("created") > 0
