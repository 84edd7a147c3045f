"""After the demo the sandbox is stopped: commands that need QBO say so at once and say what to do.

A refused connection is not a 5xx to retry for 40 s (before: `sync` failed after 6 attempts with "no
answer from QBO (ConnectionError)", `bills-due --max-age 0` took 14 s and `digest --max-age 0` 46 s);
reads answer stale-if-error at once, and a digest's entities refresh together (one bounded wait).
Times are bounds (each command is a fresh Python process: ~2-4 s of imports here), never sleeps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany

SMARTSYNC = str(Path(sys.executable).with_name("smartsync"))
BOUND_SECONDS = 10.0  # process start and imports included; before: 14 s, 46 s and ~40 s
MESSAGE = "refused the connection"
HINT = "smartsync sandbox start"


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectedCompany]:
    root = tmp_path_factory.mktemp("sandbox_stopped") / "home"
    root.mkdir()
    sandbox = SandboxProcess.start(scale="small", seed=7)
    try:
        company = ConnectedCompany(root, sandbox)
        company.engine().sync(company.realm_id)
    finally:
        sandbox.stop()
    yield company


def _run(company: ConnectedCompany, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root)}
    env.pop("DAGSTER_HOME", None)
    started = time.monotonic()
    done = subprocess.run([SMARTSYNC, *args], env=env, capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - started


def test_sync_fails_at_once_saying_the_sandbox_is_not_running(stopped: ConnectedCompany) -> None:
    done, elapsed = _run(stopped, "sync")
    assert done.returncode != 0
    text = " ".join(done.stderr.split())
    assert MESSAGE in text and HINT in text, text[-600:]
    assert "Traceback" not in done.stderr
    assert elapsed < BOUND_SECONDS, elapsed


@pytest.mark.parametrize("command", [["bills-due", "--max-age", "0"], ["digest", "--max-age", "0"]])
def test_live_reads_answer_stale_at_once_and_say_why(stopped: ConnectedCompany, command: list[str]) -> None:
    done, elapsed = _run(stopped, *command)
    assert done.returncode == 0, done.stderr[-600:]
    assert "STALE" in done.stdout
    text = " ".join((done.stdout + done.stderr).split())
    assert MESSAGE in text and HINT in text, text[-600:]
    assert elapsed < BOUND_SECONDS, elapsed
