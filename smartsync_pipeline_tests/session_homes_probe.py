"""Run only by ``test_session_homes.py``, in a child pytest: the pattern that once leaked companies into
the demo's Dagster instance. A module-scoped fixture connects a sandbox company into whatever homes
the environment names (credentials to SMARTSYNC_HOME, the realm as a partition at DAGSTER_HOME) and
reports where that was. Not collected by default (its name does not start with ``test_``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartsync_pipeline.home import Home
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import HOME_VARIABLES, ConnectedCompany

REPORT_VARIABLE = "SMARTSYNC_PROBE_REPORT"


@pytest.fixture(scope="module")
def ambient_company() -> Iterator[dict[str, Any]]:
    import dagster as dg

    from smartsync_pipeline.defs.partitions import connected_realms

    homes = {variable: os.environ.get(variable) for variable in HOME_VARIABLES}
    sandbox = SandboxProcess.start(scale="small", seed=29)
    try:
        company = ConnectedCompany(Home.from_env().root, sandbox)
        with dg.DagsterInstance.get() as instance:
            partitions = connected_realms(instance)
        yield {"homes": homes, "realm_id": company.realm_id, "partitions": partitions}
    finally:
        sandbox.stop()


def test_connect_into_the_ambient_homes(ambient_company: dict[str, Any]) -> None:
    Path(os.environ[REPORT_VARIABLE]).write_text(json.dumps(ambient_company))
    assert ambient_company["realm_id"] in ambient_company["partitions"]
