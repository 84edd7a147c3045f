"""One small company for the digest's tests: synced, then changed in the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectedCompany]:
    """One small company, synced, then changed in the sandbox (the digest must refresh to see it)."""
    proc = SandboxProcess.start(scale="small", seed=7)
    try:
        home = tmp_path_factory.mktemp("digest") / "home"
        home.mkdir()
        c = ConnectedCompany(home, proc)
        c.engine().sync()
        c.simulate(80, seed=2)
        yield c
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def fresh_digest(company: ConnectedCompany) -> dict:
    """The digest read live (max_age=0), and today's date it was computed for."""
    return DigestDataOrchestrator(company.reader(), today=date.today()).get_digest_data(company.realm_id, max_age=0)
