"""A damaged credential store gets one clear line naming what is damaged and how to recover, and is
left exactly as it was (issue 15, finding 8).

Before: a deleted ``secret.key`` was silently replaced by a new one (the next command then failed with
"not the key they were written with", and the sealed refresh tokens were unreadable for good); a
connection file without ``api_base`` printed ``Error: KeyError: 'api_base'``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline_tests.reliability.home_snapshot import home_snapshot, snapshot_changes

REPO_ROOT = Path(__file__).resolve().parents[2]
REALM = "4620816365"


def _connect_argv(realm: str) -> list[str]:
    return [
        "connect", "--realm", realm, "--api-base", "http://127.0.0.1:9/v3", "--token-url", "http://127.0.0.1:9/t",
        "--client-id", "client-1", "--client-secret", "s" * 24, "--refresh-token", "r" * 24,
        "--webhook-verifier", "v" * 16, "--no-verify",
    ]  # fmt: skip


def _run(home: Path, argv: list[str]) -> tuple[int, str]:
    env = {"SMARTSYNC_HOME": str(home), "DAGSTER_HOME": None, "SMARTSYNC_DEBUG": None, "SMARTSYNC_SECRET_KEY": None}
    result = CliRunner(env=env).invoke(cli, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    code, output = _run(root, _connect_argv(REALM))
    assert code == 0, output
    return root


def _credentials(home: Path) -> dict[str, str]:
    """The credential files (what must never change when a command is refused)."""
    snap = home_snapshot(home)
    return {k: v for k, v in snap.items() if k.startswith("companies") or k in ("secret.key", "webhook_verifier")}


def _one_error_line(code: int, output: str) -> str:
    assert code != 0, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, output
    return errors[0]


def _drop_key(home: Path) -> None:
    (home / "secret.key").unlink()


def _drop_field(field: str) -> Callable[[Path], None]:
    def damage(home: Path) -> None:
        path = home / "companies" / f"{REALM}.json"
        doc = json.loads(path.read_text())
        del doc[field]
        path.write_text(json.dumps(doc))

    return damage


def _garble(name: str) -> Callable[[Path], None]:
    def damage(home: Path) -> None:
        (home / "companies" / name).write_text("{ not json")

    return damage


# (id, damage, argv, words the one line must contain)
CASES = [
    ("key deleted: sync", _drop_key, ["sync"], ["encryption key", "is missing", "restore the key", "secret.key"]),
    ("key deleted: companies", _drop_key, ["companies"], ["encryption key", "is missing", "restore the key"]),
    ("key deleted: connect another company", _drop_key, _connect_argv("777"), ["encryption key", "is missing"]),
    ("key deleted: reconnect the company", _drop_key, _connect_argv(REALM), ["encryption key", "is missing"]),
    ("api_base missing: sync", _drop_field("api_base"), ["sync"], [f"company {REALM}", "damaged", "api_base"]),
    ("client_secret missing: companies", _drop_field("client_secret"), ["companies"],
     [f"company {REALM}", "damaged", "client_secret", "smartsync connect"]),
    ("connection file not JSON: sync", _garble(f"{REALM}.json"), ["sync"], [f"company {REALM}", "damaged", "not JSON"]),
    ("token file not JSON: sync", _garble(f"{REALM}.tokens.json"), ["sync"],
     [f"token file of company {REALM}", "damaged"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "damage", "argv", "words"), CASES, ids=[c[0] for c in CASES])
def test_damaged_store_is_named_and_left_alone(
    home: Path, name: str, damage: Callable[[Path], None], argv: list[str], words: list[str]
) -> None:
    damage(home)
    before = _credentials(home)
    code, output = _run(home, argv)
    line = _one_error_line(code, output)
    for word in words:
        assert word in line, line
    assert "KeyError" not in line
    assert snapshot_changes(before, _credentials(home)) == [], f"{name} changed the credential files"
    if damage is _drop_key:
        assert not (home / "secret.key").exists(), "a new key was made while sealed credentials exist"


def test_a_first_connect_still_makes_a_key(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    code, output = _run(root, _connect_argv("1"))
    assert code == 0, output
    assert (root / "secret.key").stat().st_size > 0
    code, output = _run(root, ["companies"])
    assert code == 0 and "http://127.0.0.1:9/v3" in output


def test_real_process_key_deleted(home: Path) -> None:
    _drop_key(home)
    env = {**os.environ, "SMARTSYNC_HOME": str(home)}
    for name in ("SMARTSYNC_DEBUG", "SMARTSYNC_SECRET_KEY", "DAGSTER_HOME"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "sync"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "encryption key" in done.stderr and "missing" in done.stderr, done.stderr
    assert not (home / "secret.key").exists()
