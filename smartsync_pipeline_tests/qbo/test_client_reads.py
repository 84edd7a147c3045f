"""The client reading from a real sandbox process: paging, filters, quoting, CDC, minorversion."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.errors import CDCWindowTooOldError, QueryError
from smartsync_pipeline.qbo.query import Query
from smartsync_pipeline.sandbox.process import SandboxProcess

CDC_ENTITIES = ["Bill", "Invoice", "Purchase", "BillPayment", "Payment", "Vendor", "Customer"]


def stats(sandbox: SandboxProcess) -> dict[str, Any]:
    return sandbox.control("stats", method="GET")


@pytest.fixture(scope="module")
def medium() -> Iterator[SandboxProcess]:
    proc = SandboxProcess.start(scale="medium", seed=7)
    try:
        yield proc
    finally:
        proc.stop()


def test_paging_across_1000_row_pages_matches_count(
    medium: SandboxProcess, client_for: Callable[..., QBOClient]
) -> None:
    client = client_for(medium)
    for entity in ("Customer", "Vendor"):
        expected = client.count(entity)
        assert expected >= 2000, "the medium company should need several pages"
        pages = list(client.iter_pages(entity))
        assert [len(p) for p in pages[:-1]] == [1000] * (len(pages) - 1)
        assert 0 < len(pages[-1]) <= 1000
        ids = [row["Id"] for page in pages for row in page]
        assert len(ids) == expected
        assert len(set(ids)) == expected
        assert [int(i) for i in ids] == sorted(int(i) for i in ids)  # ORDERBY Id keeps pages disjoint
    queries = [q for q in stats(medium)["recent_queries"] if q.startswith("SELECT * FROM Vendor")]
    starts = [int(q.split("STARTPOSITION ")[1].split()[0]) for q in queries]
    assert starts == [1 + 1000 * i for i in range(len(starts))]
    assert all("MAXRESULTS 1000" in q for q in queries)


def test_paging_stops_on_an_exact_multiple(sandbox: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(sandbox)
    total = client.count("Bill")
    page_size = next(n for n in range(7, 200) if total % n == 0)  # a page size that divides the count
    before = stats(sandbox)["requests"].get("query", 0)
    pages = list(client.iter_pages("Bill", page_size=page_size))
    assert sum(len(p) for p in pages) == total
    assert all(len(p) == page_size for p in pages)
    # full pages, then one empty page that ends the iteration
    assert stats(sandbox)["requests"]["query"] - before == total // page_size + 1


def test_include_inactive(sandbox: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(sandbox)
    everyone = client.query_all("Vendor")  # name lists default to including inactive rows
    active_only = client.query_all("Vendor", include_inactive=False)
    inactive = [v for v in everyone if v.get("Active") is False]
    assert inactive, "the seeded company has inactive vendors"
    assert all(v.get("Active") is True for v in active_only)
    assert len(everyone) == len(active_only) + len(inactive)
    assert client.count("Vendor") == len(everyone)
    assert client.count("Vendor", include_inactive=False) == len(active_only)
    # Filtering on Active yourself replaces the default.
    assert client.count("Vendor", where=[("Active", "=", False)]) == len(inactive)
    # Transactions have no Active flag: the option is harmless there.
    assert client.count("Bill", include_inactive=True) == client.count("Bill")


def test_filters_match_the_data(sandbox: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(sandbox)
    bills = client.query_all("Bill")
    vendor = bills[0]["VendorRef"]["value"]
    cutoff = date.fromisoformat(sorted(b["DueDate"] for b in bills)[len(bills) // 2])
    got = client.query_all("Bill", where=[("DueDate", "<=", cutoff), ("VendorRef", "=", vendor)])
    expected = [b for b in bills if b["DueDate"] <= cutoff.isoformat() and b["VendorRef"]["value"] == vendor]
    assert [b["Id"] for b in got] == [b["Id"] for b in expected]
    assert got, "the filter should match something"
    some = [b["Id"] for b in bills[:3]]
    assert [b["Id"] for b in client.query_all("Bill", where=[("Id", "IN", some)])] == some
    newest = client.query(Query.select("Bill").order_by("MetaData.LastUpdatedTime", desc=True).max_results(5))
    times = [b["MetaData"]["LastUpdatedTime"] for b in newest.items]
    assert len(times) == 5 and times == sorted(times, reverse=True)
    one = client.read("Bill", some[0])
    assert one["Id"] == some[0] and one == bills[0]


def test_quoted_names_cannot_inject(sandbox: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(sandbox)
    before = stats(sandbox)
    obrien = client.query(Query.select("Vendor").where("DisplayName", "=", "O'Brien")).items
    assert [v["DisplayName"] for v in obrien] == ["O'Brien"]
    attack = "x' OR Id > '0"
    hits = client.query(Query.select("Vendor").where("DisplayName", "=", attack)).items
    assert hits == []
    after = stats(sandbox)
    assert after["requests"]["query"] - before["requests"].get("query", 0) == 2
    assert after["statuses"].get("400", 0) == before["statuses"].get("400", 0)  # both well-formed
    assert after["recent_queries"][-1] == "SELECT * FROM Vendor WHERE DisplayName = 'x\\' OR Id > \\'0'"
    assert client.query(Query.select("Vendor").where("DisplayName", "LIKE", "O'B%")).items == obrien


def test_bad_queries_fail_before_any_request(sandbox: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(sandbox)
    before = stats(sandbox)["requests_total"]
    with pytest.raises(QueryError):
        client.count("NoSuchThing")
    with pytest.raises(QueryError):
        client.query_all("Bill", where=[("Secret", "=", "1")])
    with pytest.raises(QueryError):
        client.read("Bill", "1 OR 1")
    with pytest.raises(QueryError):
        client.read("Bill", "../vendor/1")
    with pytest.raises(QueryError):
        client.iter_pages("Bill", page_size=1001).__next__()
    assert stats(sandbox)["requests_total"] == before


def test_cdc_several_entities_with_deletes_apart(
    sandbox_factory: Callable[..., SandboxProcess], client_for: Callable[..., QBOClient]
) -> None:
    sandbox = sandbox_factory()
    client = client_for(sandbox)
    client.count("Bill")  # learn the server's time
    assert client.server_time is not None
    since = client.server_time - timedelta(seconds=1)
    changes = sandbox.control("simulate", {"realm_id": client.realm_id, "operations": 60, "seed": 3})["changes"]
    result = client.cdc(CDC_ENTITIES, since)
    assert stats(sandbox)["requests"]["cdc"] == 1  # one call for all entities
    assert set(CDC_ENTITIES) <= set(result.entities)
    deleted = {(c["entity"], c["id"]) for c in changes if c["op"] == "delete"}
    alive = {(c["entity"], c["id"]) for c in changes if c["op"] != "delete"} - deleted
    assert deleted, "the simulation should delete something"
    got_deleted = {(e, o["Id"]) for e, ch in result.entities.items() for o in ch.deleted}
    got_active = {(e, o["Id"]) for e, ch in result.entities.items() for o in ch.active}
    wanted = set(CDC_ENTITIES)
    assert {d for d in deleted if d[0] in wanted} <= got_deleted
    assert {a for a in alive if a[0] in wanted} <= got_active
    assert not got_active & got_deleted
    for changes_of in result.entities.values():
        for tomb in changes_of.deleted:
            assert tomb["status"] == "Deleted" and "MetaData" in tomb
    assert result.object_count == len(got_active) + len(got_deleted)
    assert not result.is_full
    assert result.server_time >= client.server_time - timedelta(seconds=5)
    # Entities QBO's CDC does not cover are refused before a request is made.
    sent = stats(sandbox)["requests"]["cdc"]
    with pytest.raises(QueryError, match="does not cover TimeActivity"):
        client.cdc(["Bill", "TimeActivity"], since)
    assert stats(sandbox)["requests"]["cdc"] == sent


def test_cdc_older_than_30_days_is_refused(
    sandbox_factory: Callable[..., SandboxProcess], client_for: Callable[..., QBOClient]
) -> None:
    sandbox = sandbox_factory()
    client = client_for(sandbox)
    client.count("Term")
    assert client.server_time is not None
    with pytest.raises(CDCWindowTooOldError, match="30 days") as local:
        client.cdc(["Bill"], client.server_time - timedelta(days=31))
    assert local.value.http_status is None  # refused client-side ...
    assert stats(sandbox)["requests"].get("cdc", 0) == 0  # ... without a request
    # The server's clock moves on behind the client's back: the server refuses, the client maps it.
    since = client.server_time - timedelta(days=20)
    sandbox.control("clock", {"advance_seconds": 15 * 86_400})
    with pytest.raises(CDCWindowTooOldError) as remote:
        client.cdc(["Bill", "Invoice"], since)
    assert remote.value.http_status == 400
    assert remote.value.code == "4000"
    assert "changedSince" in str(remote.value)
    # (the jump also expired the access token: one 401, one refresh, one retry that the server refused)
    sent = stats(sandbox)["requests"]["cdc"]
    assert sent == 2
    # Having seen the new time, the client now refuses it locally.
    with pytest.raises(CDCWindowTooOldError):
        client.cdc(["Bill"], since)
    assert stats(sandbox)["requests"]["cdc"] == sent


def test_minorversion_75_on_every_call(
    sandbox_factory: Callable[..., SandboxProcess], client_for: Callable[..., QBOClient]
) -> None:
    sandbox = sandbox_factory()
    client = client_for(sandbox)
    client.count("Bill")
    bill = client.query_all("Bill", page_size=100)[0]
    client.read("Bill", bill["Id"])
    client.cdc(["Bill"], client.server_time - timedelta(hours=1))
    client.update("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"], "PrivateNote": "mv check"})
    sandbox.control("revoke", {"realm_id": client.realm_id})
    client.count("Vendor")  # 401, refresh, retry: the retry carries minorversion too
    seen = stats(sandbox)
    api_requests = sum(v for k, v in seen["requests"].items() if k != "token")
    assert api_requests >= 8
    assert seen["minorversions"] == {"75": api_requests}
    assert seen["missing_minorversion"] == 0
