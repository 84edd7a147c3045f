"""One small sandbox company for the services tests, and its data read straight from the sandbox.

The independent side of every comparison is ``SandboxTruth``: the sandbox's own objects (its
control API's full dump, numbers read as the Decimals they spell) put through plain Python. Nothing
of smartsync's mirror, reader or services is involved in it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany

SEED = 7
ZERO = Decimal("0.00")


def sandbox_objects_exact(company: ConnectedCompany, entity: str) -> dict[str, Any]:
    """The sandbox's live objects of ``entity`` with every JSON number read as the Decimal it spells."""
    url = f"{company.sandbox.control_url}/objects/{company.realm_id}/{entity}"
    with urllib.request.urlopen(url, timeout=120) as response:
        return json.loads(response.read(), parse_float=Decimal)


@dataclass(frozen=True)
class OpenDocument:
    """An open bill or invoice as the sandbox holds it."""

    id: str
    party_id: str
    party_name: str
    due: date
    balance: Decimal

    def days_late(self, today: date) -> int:
        return (today - self.due).days


class SandboxTruth:
    """Open bills and invoices of the sandbox company, straight from the sandbox."""

    def __init__(self, company: ConnectedCompany) -> None:
        self.bills = self._open(sandbox_objects_exact(company, "Bill")["active"], "VendorRef")
        self.invoices = self._open(sandbox_objects_exact(company, "Invoice")["active"], "CustomerRef")

    @staticmethod
    def _open(objects: list[dict[str, Any]], ref: str) -> list[OpenDocument]:
        return [
            OpenDocument(str(o["Id"]), str(o[ref]["value"]), o[ref].get("name"), date.fromisoformat(o["DueDate"]),
                         Decimal(o["Balance"]))
            for o in objects
            if Decimal(o["Balance"]) > 0
        ]  # fmt: skip

    def documents(self, kind: str) -> list[OpenDocument]:
        return {"Bill": self.bills, "Invoice": self.invoices}[kind]


@pytest.fixture(scope="package")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectedCompany]:
    """A small sandbox company, fully synced once; tests here only read it."""
    sandbox = SandboxProcess.start(scale="small", seed=SEED)
    try:
        connected = ConnectedCompany(tmp_path_factory.mktemp("services_home"), sandbox)
        connected.engine().sync(connected.realm_id, mode="full")
        yield connected
    finally:
        sandbox.stop()


@pytest.fixture(scope="package")
def truth(company: ConnectedCompany) -> SandboxTruth:
    return SandboxTruth(company)


@pytest.fixture(scope="package")
def reader(company: ConnectedCompany):
    """A reader that answers from the fresh mirror (nothing is recorded in Dagster)."""
    smart_reader = company.reader(record_in_dagster=False)
    yield smart_reader
    close = getattr(smart_reader, "close", None)
    if close is not None:
        close()
