"""Writes through the client against a real sandbox: SyncToken discipline, delete, void, refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.errors import QueryError, StaleObjectError, ValidationFault
from smartsync_pipeline.qbo.query import Query
from smartsync_pipeline.sandbox.process import SandboxProcess


def stats(sandbox: SandboxProcess) -> dict[str, Any]:
    return sandbox.control("stats", method="GET")


@pytest.fixture
def fresh(sandbox_factory: Callable[..., SandboxProcess]) -> SandboxProcess:
    return sandbox_factory()


def _new_bill(client: QBOClient, amount: float = 125.5) -> dict[str, Any]:
    vendor = client.query(Query.select("Vendor").where("DisplayName", "=", "O'Brien")).items[0]
    expense = client.query(Query.select("Account").where("AccountType", "=", "Expense").max_results(1)).items[0]
    return client.create(
        "Bill",
        {
            "VendorRef": {"value": vendor["Id"]},
            "Line": [
                {
                    "Amount": amount,
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": expense["Id"]}},
                }
            ],
        },
    )


def test_create_update_and_stale_sync_token(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(fresh)
    bill = _new_bill(client)
    assert bill["SyncToken"] == "0" and bill["Id"].isdigit()
    assert bill["TotalAmt"] == 125.5
    assert client.read("Bill", bill["Id"]) == bill

    updated = client.update("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"], "PrivateNote": "checked"})
    assert updated["SyncToken"] == "1"
    assert updated["PrivateNote"] == "checked"
    assert updated["TotalAmt"] == 125.5  # sparse: the rest is untouched

    writes = stats(fresh)["requests"]["write"]
    with pytest.raises(StaleObjectError) as info:
        client.update("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"], "PrivateNote": "lost edit"})
    assert info.value.code == "5010"
    assert info.value.http_status == 400
    assert info.value.element == "SyncToken"
    assert info.value.attempts == 1
    assert stats(fresh)["requests"]["write"] == writes + 1  # a stale write is not retried
    assert client.read("Bill", bill["Id"])["PrivateNote"] == "checked"


def test_delete_and_void(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(fresh)
    client.count("Term")
    since = client.server_time - timedelta(seconds=1)
    bill = _new_bill(client)
    gone = client.delete("Bill", bill["Id"], bill["SyncToken"])
    assert gone["Id"] == bill["Id"] and gone["status"] == "Deleted"
    with pytest.raises(ValidationFault) as missing:
        client.read("Bill", bill["Id"])
    assert missing.value.code == "610"
    changes = client.cdc(["Bill"], since).entities["Bill"]
    assert [t["Id"] for t in changes.deleted] == [bill["Id"]]
    assert bill["Id"] not in {b["Id"] for b in changes.active}

    invoice = next(
        i for i in client.query_all("Invoice", page_size=100) if i["Balance"] == i["TotalAmt"] and i["TotalAmt"] > 0
    )
    voided = client.void("Invoice", invoice["Id"], invoice["SyncToken"])
    assert voided["TotalAmt"] == 0 and voided["Balance"] == 0
    assert int(voided["SyncToken"]) == int(invoice["SyncToken"]) + 1


def test_refused_before_any_request(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(fresh)
    before = stats(fresh)["requests_total"]
    with pytest.raises(QueryError, match="cannot be voided"):
        client.void("Bill", "1", "0")
    with pytest.raises(QueryError, match="name list"):
        client.delete("Vendor", "1", "0")
    with pytest.raises(QueryError, match="cannot carry an Id"):
        client.create("Bill", {"Id": "5"})
    with pytest.raises(QueryError, match="Id and SyncToken"):
        client.update("Bill", {"Id": "5"})
    with pytest.raises(QueryError):
        client.delete("Bill", "5; DROP", "0")
    assert stats(fresh)["requests_total"] == before


def test_write_retried_after_a_server_error_lands_once(
    fresh: SandboxProcess, client_for: Callable[..., QBOClient]
) -> None:
    client = client_for(fresh, backoff_base=0.02)
    before = client.count("Bill")
    fresh.control("faults", {"fail_next": [{"status": 503, "count": 1}]})
    bill = _new_bill(client, 10.0)
    assert client.count("Bill") == before + 1
    assert client.read("Bill", bill["Id"])["TotalAmt"] == 10.0
    assert client.stats.retries == 1


def test_deactivating_a_name_list_entry(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(fresh)
    vendor = client.query(Query.select("Vendor").where("DisplayName", "=", "O'Brien")).items[0]
    client.update("Vendor", {"Id": vendor["Id"], "SyncToken": vendor["SyncToken"], "Active": False})
    assert vendor["Id"] in {v["Id"] for v in client.query_all("Vendor")}  # full syncs still see it
    assert vendor["Id"] not in {v["Id"] for v in client.query_all("Vendor", include_inactive=False)}
