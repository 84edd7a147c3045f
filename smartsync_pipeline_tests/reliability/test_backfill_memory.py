"""The first (full) sync of a medium company fits the mirror's memory limit.

Regression test for a bug the soak hit: at commit c09a66c a full sync of the medium sandbox's 25 000
invoices failed with DuckDB ``OutOfMemoryException`` under ``MirrorDatabase.memory_limit`` 256 MB,
whatever ``rows_per_transaction`` was (5 000 failed too; 512 MB passed), so the soak could not even
start on a medium company."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany


@pytest.mark.slow
def test_a_medium_invoice_backfill_fits_the_memory_limit(tmp_path: Path) -> None:
    with SandboxProcess.start(scale="medium", seed=7, startup_timeout=600) as sandbox:
        company = ConnectedCompany(tmp_path / "home", sandbox)
        report = company.engine().sync(entities=["Invoice"], mode="full")
        assert report.entities["Invoice"].created == 25_000
