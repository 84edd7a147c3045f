"""Shared fixtures: real sandbox processes on loopback and a throw-away SMARTSYNC_HOME.

The session never sees the user's homes: ``pytest_configure`` points SMARTSYNC_HOME and DAGSTER_HOME
into the session's temporary folder before any fixture (of any scope) or test module runs, and every
subprocess a test starts inherits them.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smartsync_pipeline.sandbox.process import SandboxProcess

SESSION_HOMES_DIR = "session_homes"
HOME_VARIABLES = ("SMARTSYNC_HOME", "DAGSTER_HOME")


def session_homes_root(config: pytest.Config) -> Path:
    """The session's own folder for the two homes: under pytest's base temp when it has one."""
    factory = getattr(config, "_tmp_path_factory", None)
    base = factory.getbasetemp() if factory is not None else Path(tempfile.mkdtemp(prefix="smartsync-tests-"))
    return base / SESSION_HOMES_DIR


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin has set up the session's base temp
def pytest_configure(config: pytest.Config) -> None:
    """`make test` exports the user's SMARTSYNC_HOME and DAGSTER_HOME (the demo's): replace both for the
    whole session, so a fixture of any scope that connects a company or records a run lands here."""
    root = session_homes_root(config)
    for variable in HOME_VARIABLES:
        path = root / variable.lower()
        path.mkdir(parents=True, exist_ok=True)
        os.environ[variable] = str(path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test needs a node id of its own: pytest-xdist schedules and reports by node id, so items
    sharing one would run and count once (schemathesis puts each API operation only in the item's
    ``name``). Such items get their name as id; a collection that still repeats an id is refused."""
    for item in items:
        last = item.nodeid.rpartition("::")[2]
        if item.name.endswith("]") and "[" in item.name and "[" not in last:
            params = item.name[item.name.index("[") + 1 : -1]
            node_id = getattr(item, "_id", None)
            if hasattr(node_id, "with_params"):  # pytest 9 keeps the id structured
                item._id = node_id.with_params(params)
            else:
                item._nodeid = f"{item.nodeid}[{params}]"
    repeated = sorted(node_id for node_id, n in Counter(item.nodeid for item in items).items() if n > 1)
    if repeated:
        raise pytest.UsageError(f"tests share node ids (xdist would run them once): {repeated[:5]}")


@pytest.fixture(autouse=True)
def _no_ambient_dagster_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test runs without a Dagster instance unless it sets its own DAGSTER_HOME (connecting a company
    then registers no partition anywhere). Fixtures of wider scope see the session's DAGSTER_HOME."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    """One small sandbox (seed 7) for the whole session. Read-mostly: tests that write data or change
    knobs (faults, limits, clock) use ``sandbox_factory`` instead."""
    proc = SandboxProcess.start(scale="small", seed=7)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxProcess]]:
    """``sandbox_factory(scale="small", seed=7, realms=1, **opts)`` starts a fresh sandbox process;
    all of them stop at teardown. ``opts`` go to ``SandboxProcess.start`` (``state_file``,
    ``extra_args``, or CLI flags such as ``per_window=100``)."""
    started: list[SandboxProcess] = []

    def make(scale: str = "small", seed: int = 7, realms: int = 1, **opts: Any) -> SandboxProcess:
        proc = SandboxProcess.start(scale=scale, seed=seed, realms=realms, **opts)
        started.append(proc)
        return proc

    try:
        yield make
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture
def smartsync_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SMARTSYNC_HOME for one test."""
    home = tmp_path / "smartsync_home"
    home.mkdir()
    monkeypatch.setenv("SMARTSYNC_HOME", str(home))
    return home


# -- a connected company: a SMARTSYNC_HOME whose one company is a sandbox realm ---------------------


class ConnectedCompany:
    """A home with a sandbox company connected; builds engines and readers on it."""

    def __init__(self, home_root: Path, sandbox: SandboxProcess, realm_index: int = 0) -> None:
        from smartsync_pipeline.cli.company_commands import connect_company
        from smartsync_pipeline.home import Home

        info = sandbox.info
        realm = info["realms"][realm_index] if info.get("realms") else info
        self.home = Home(home_root).ensure()
        self.sandbox = sandbox
        self.realm_id: str = realm["realm_id"]
        connect_company(
            self.home,
            realm_id=self.realm_id,
            api_base=info["api_base"],
            token_url=info["token_url"],
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            refresh_token=realm["refresh_token"],
            webhook_verifier=info.get("webhook_verifier"),
            verify=False,
        )

    def engine(self, **kwargs: Any):
        from smartsync_pipeline.sync.engine import SyncEngine

        return SyncEngine(self.home, **kwargs)

    def reader(self, **config: Any):
        from smartsync_pipeline.smart.reader import SmartReader

        # Tests asserting that a live read refreshed (source "api") must not answer stale because a
        # loaded machine took more than the default 3 s: tests of that bound set it themselves.
        config.setdefault("stale_answer_after_seconds", 30.0)
        return SmartReader(smartsync_home=str(self.home.root), **config)

    def simulate(self, operations: int, seed: int = 1) -> list[dict[str, Any]]:
        return self.sandbox.control("simulate", {"realm_id": self.realm_id, "operations": operations, "seed": seed})[
            "changes"
        ]

    def sandbox_objects(self, entity: str) -> dict[str, Any]:
        return self.sandbox.control(f"objects/{self.realm_id}/{entity}", method="GET")


@pytest.fixture
def connected_company(sandbox_factory: Callable[..., SandboxProcess], smartsync_home: Path) -> ConnectedCompany:
    """A fresh small sandbox with its company connected to a fresh SMARTSYNC_HOME."""
    return ConnectedCompany(smartsync_home, sandbox_factory())
