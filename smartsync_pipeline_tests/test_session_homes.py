"""No test touches the user's SMARTSYNC_HOME or DAGSTER_HOME, at any fixture scope (issue 14 item 1).

The root conftest points both homes into the session's temporary folder in ``pytest_configure``. These
tests check the homes each fixture scope sees, and run the pattern that used to leak (a module-scoped
fixture connecting a company while `make test` exported the demo's homes) as a child pytest against a
stand-in for the user's homes, which must come out byte-identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from smartsync_pipeline.home import Home
from smartsync_pipeline_tests.conftest import HOME_VARIABLES, SESSION_HOMES_DIR
from smartsync_pipeline_tests.reliability.home_snapshot import home_snapshot, snapshot_changes
from smartsync_pipeline_tests.session_homes_probe import REPORT_VARIABLE

REPO_ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("session_homes_probe.py")


@pytest.fixture(scope="module")
def module_scope_homes() -> dict[str, str | None]:
    return {variable: os.environ.get(variable) for variable in HOME_VARIABLES}


def test_every_fixture_scope_sees_the_session_homes(
    module_scope_homes: dict[str, str | None], tmp_path_factory: pytest.TempPathFactory
) -> None:
    session_root = tmp_path_factory.getbasetemp() / SESSION_HOMES_DIR
    for variable, value in module_scope_homes.items():
        assert value is not None, f"{variable} is unset at module scope"
        assert Path(value).resolve().is_relative_to(session_root.resolve()), f"{variable}={value}"
    # A test itself: the session's SMARTSYNC_HOME, and no Dagster instance unless it sets its own.
    assert Path(os.environ["SMARTSYNC_HOME"]).resolve().is_relative_to(session_root.resolve())
    assert Home.from_env().root.is_relative_to(session_root.resolve())
    assert "DAGSTER_HOME" not in os.environ


def _user_homes(root: Path) -> dict[str, Path]:
    """A stand-in for the demo's homes, as `make demo` leaves them: an initialised instance and a home."""
    dagster_home = root / ".dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_dynamic_partitions("realms", ["9130355000000700"])
    smartsync_home = Home(root / ".smartsync").ensure()
    (smartsync_home.root / "sandbox").mkdir()
    (smartsync_home.root / "sandbox" / "demo.json").write_text('{"port": 8765}')
    return {"DAGSTER_HOME": dagster_home, "SMARTSYNC_HOME": smartsync_home.root}


@pytest.mark.slow
def test_a_module_scoped_connect_leaves_the_users_homes_untouched(tmp_path: Path) -> None:
    user = _user_homes(tmp_path / "clone")
    before = {name: home_snapshot(path) for name, path in user.items()}
    report, basetemp = tmp_path / "probe.json", tmp_path / "child_basetemp"
    env = {**os.environ, **{name: str(path) for name, path in user.items()}, REPORT_VARIABLE: str(report)}
    child = subprocess.run(
        [sys.executable, "-m", "pytest", str(PROBE), "-q", "-x", "-p", "no:cacheprovider", f"--basetemp={basetemp}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-2000:]
    probe = json.loads(report.read_text())
    # The fixture did connect and register a company, and not one byte of it went into the user's homes ...
    assert probe["realm_id"] in probe["partitions"]
    for name, path in user.items():
        assert snapshot_changes(before[name], home_snapshot(path)) == [], f"the tests wrote into the user's {name}"
    # ... but into the session's.
    for variable in HOME_VARIABLES:
        assert Path(probe["homes"][variable]).resolve().is_relative_to(basetemp.resolve()), probe["homes"]
